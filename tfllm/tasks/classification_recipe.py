"""What the classification task trains with, beyond the model: optimizers, class weights,
vocabulary sampling, and word vectors pre-trained on unlabeled text."""

# The Adam learning rate each kind was tuned with (docs/sentiment.md, "Benchmarks").
LEARNING_RATES = {"fasttext": 3e-3, "lstm": 1e-3, "bilstm": 1e-3, "transformer": 5e-4}
# Word-piece counts settle long before this many characters (about 2M words);
# counting more costs minutes on large corpora and changes little.
VOCABULARY_SAMPLE_CHARS = 10_000_000


def make_optimizer(kind, learning_rate=None):
    """The optimizer each kind was tuned with: Adam, or `SparseAdam` for "fasttext".

    `fasttext`'s embedding table is large and each batch touches a sliver of
    it, so a sparse ("lazy") Adam update is several times faster per step.
    """
    import keras

    from tfllm.training.optimizers import SparseAdam

    learning_rate = learning_rate or LEARNING_RATES[kind]
    return SparseAdam(learning_rate) if kind == "fasttext" else keras.optimizers.Adam(learning_rate)


def class_weight_table(label_ids, num_classes):
    """Inverse-frequency ("balanced") weights: n / (classes * count), 1.0 for absent classes."""
    import numpy as np

    counts = np.bincount(label_ids, minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, len(label_ids) / (num_classes * np.maximum(counts, 1)), 1.0)
    return weights.astype(np.float32)


def vocabulary_sample(texts, seed=0, max_chars=VOCABULARY_SAMPLE_CHARS):
    """A seeded random subset of `texts` (a Series) of at most `max_chars` characters (at least one text)."""
    shuffled = texts.sample(frac=1.0, random_state=seed)
    keep = shuffled.str.len().cumsum() <= max_chars
    keep.iloc[0] = True
    return shuffled[keep]


def pretraining_corpus(train_texts, val_texts, unlabeled):
    """Training texts plus the unlabeled ones that are neither training nor validation texts.

    Pre-training on the data set being classified (`--pretrain-dataset imdb`
    on IMDB) would otherwise learn vectors from the validation texts and
    count every training text twice.
    """
    import pandas as pd

    known = set(train_texts) | set(val_texts)
    return pd.concat([train_texts, unlabeled[~unlabeled.isin(known)]], ignore_index=True)


def pretrain_token_vectors(config, tokenizer, vocabulary, texts, log=print):
    """Skip-gram word vectors for `vocabulary` learned on `texts`, sized for the model."""
    import tensorflow as tf

    from tfllm.models.classifier import DEFAULTS
    from tfllm.text import RESERVED_TOKENS
    from tfllm.training.word_vectors import train_word_vectors

    dim = config.model_options.get("embedding_dim", DEFAULTS[config.model]["embedding_dim"])
    ids = []
    for start in range(0, len(texts), 1024):
        batch = tokenizer(tf.constant(list(texts[start : start + 1024])))
        ids.extend(batch.to_list() if hasattr(batch, "to_list") else batch)
    log(f"pre-training {dim}-d word vectors on {len(texts)} texts ({sum(map(len, ids))} tokens)")
    return train_word_vectors(
        ids, len(vocabulary), dim, epochs=config.pretrain_epochs, seed=config.seed, log=log,
        skip_ids=[vocabulary.index(token) for token in RESERVED_TOKENS if token in vocabulary],
    )


def with_class_weights(dataset, weights):
    import tensorflow as tf

    table = tf.constant(weights)

    @tf.autograph.experimental.do_not_convert
    def add_weight(ids, label):
        return ids, label, tf.gather(table, label)

    return dataset.map(add_weight)

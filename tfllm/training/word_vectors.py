"""Word vectors from unlabeled text: skip-gram with negative sampling (word2vec).

The pre-training half of "pre-train, then fine-tune" for models that start
from an embedding table. Vectors are learned for the ids of an existing
vocabulary (the WordPiece ids a classifier will see), so they drop straight
into its `Embedding` layer:

    ids = [tokenizer(t) for t in unlabeled_texts]             # lists of ints
    vectors = train_word_vectors(ids, vocabulary_size, 64)   # (vocab, 64)
    model.get_layer("token_embedding").embeddings.assign(vectors)

Training pairs are generated in NumPy per epoch (frequent-token subsampling,
a random window per centre token, pairs never cross a text boundary) and
trained in a compiled TensorFlow step with sparse ("lazy") Adam, so a step
costs the rows it touches, not the whole table.
"""

import logging
import time

import numpy as np

logger = logging.getLogger(__name__)


def skipgram_pairs(ids, text_index, window, rng):
    """(centre, context) id pairs: for each token, a window of 1..`window` each side.

    Args:
        ids: int array of the corpus' token ids, texts one after another.
        text_index: int array, same length: which text each token is from.
        window: largest distance between centre and context.
        rng: a `numpy.random.Generator`.
    """
    reach = rng.integers(1, window + 1, size=len(ids))
    centres, contexts = [], []
    for offset in range(1, window + 1):
        for a, b in ((slice(None, -offset), slice(offset, None)), (slice(offset, None), slice(None, -offset))):
            keep = (reach[a] >= offset) & (text_index[a] == text_index[b])
            centres.append(ids[a][keep])
            contexts.append(ids[b][keep])
    return np.concatenate(centres), np.concatenate(contexts)


def train_word_vectors(
    token_ids,
    vocabulary_size,
    dim,
    *,
    window=5,
    negatives=5,
    epochs=2,
    batch_size=8192,
    learning_rate=3e-3,
    subsample=1e-4,
    skip_ids=(0,),
    seed=0,
    time_budget=None,
    log=logger.info,
):
    """Learns a `(vocabulary_size, dim)` float32 table of word vectors.

    Args:
        token_ids: iterable of token id lists (one per text).
        vocabulary_size: number of ids; rows of the returned table.
        dim: vector size (the embedding size of the model they will
            initialise).
        window: largest centre-context distance (sampled per token, as in
            word2vec).
        negatives: negative samples per pair, drawn from unigram^0.75.
        epochs: passes over the corpus.
        batch_size: pairs per step.
        learning_rate: Adam learning rate.
        subsample: frequent-token subsampling threshold (word2vec's `t`);
            0 keeps every token.
        skip_ids: ids never trained (padding, special tokens); their rows
            stay at their small random initial values.
        seed: seeds sampling and initialisation.
        time_budget: stop after this many seconds (between steps).
        log: progress messages.

    Returns:
        The input-side vectors, float32 `(vocabulary_size, dim)`.

    Raises:
        ValueError: no token ids, or ids outside the vocabulary.
    """
    import tensorflow as tf

    from tfllm.training.optimizers import SparseAdam

    lists = [np.asarray(t, dtype=np.int64).ravel() for t in token_ids]
    lengths = np.array([len(t) for t in lists])
    if lengths.sum() == 0:
        raise ValueError("train_word_vectors needs at least one token")
    ids = np.concatenate(lists)
    if ids.min() < 0 or ids.max() >= vocabulary_size:
        raise ValueError(f"token ids must lie in [0, {vocabulary_size}); found {ids.min()}..{ids.max()}")
    text_index = np.repeat(np.arange(len(lists)), lengths)
    keep = ~np.isin(ids, np.asarray(skip_ids, dtype=np.int64))
    ids, text_index = ids[keep], text_index[keep]

    counts = np.bincount(ids, minlength=vocabulary_size).astype(np.float64)
    frequency = counts / counts.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        keep_probability = np.where(
            frequency > 0, np.sqrt(subsample / frequency) + subsample / frequency, 0.0
        ) if subsample else np.ones_like(frequency)
    noise = counts**0.75
    noise_logits = tf.constant(np.log(np.maximum(noise / noise.sum(), 1e-30))[None, :], tf.float32)

    rng = np.random.default_rng(seed)
    tf_seed = int(rng.integers(2**31))
    scale = 0.5 / dim
    inputs = tf.Variable(
        rng.uniform(-scale, scale, (vocabulary_size, dim)).astype(np.float32), name="word_vectors"
    )
    outputs = tf.Variable(tf.zeros((vocabulary_size, dim)), name="context_vectors")
    optimizer = SparseAdam(learning_rate)
    optimizer.build([inputs, outputs])
    generator = tf.random.Generator.from_seed(tf_seed)

    pairs = tf.TensorSpec([None], tf.int64)

    @tf.function(jit_compile=False, input_signature=[pairs, pairs])  # One trace for every batch size.
    def step(centre, context):
        negative = tf.reshape(
            tf.random.stateless_categorical(
                noise_logits, tf.shape(centre)[0] * negatives, generator.make_seeds(1)[:, 0]
            ),
            [-1, negatives],
        )
        with tf.GradientTape() as tape:
            w = tf.gather(inputs, centre)  # (b, d)
            c = tf.gather(outputs, tf.concat([context[:, None], negative], axis=1))  # (b, 1+k, d)
            logits = tf.einsum("bd,bkd->bk", w, c)
            labels = tf.concat([tf.ones_like(logits[:, :1]), tf.zeros_like(logits[:, 1:])], axis=1)
            loss = tf.reduce_mean(
                tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels, logits), axis=1)
            )
        gradients = tape.gradient(loss, [inputs, outputs])
        optimizer.apply(gradients, [inputs, outputs])
        return loss

    started = time.perf_counter()
    for epoch in range(epochs):
        kept = rng.random(len(ids)) < keep_probability[ids]
        centre, context = skipgram_pairs(ids[kept], text_index[kept], window, rng)
        order = rng.permutation(len(centre))
        centre, context = centre[order], context[order]
        losses = []
        for start in range(0, len(centre), batch_size):
            losses.append(step(centre[start : start + batch_size], context[start : start + batch_size]))
            if time_budget is not None and time.perf_counter() - started > time_budget:
                break
        log(
            f"word vectors: epoch {epoch + 1}/{epochs}, {len(centre)} pairs, "
            f"loss {float(tf.reduce_mean(losses)):.4f}, {time.perf_counter() - started:.0f} s"
        )
        if time_budget is not None and time.perf_counter() - started > time_budget:
            log(f"word vectors: time budget of {time_budget:.0f} s reached")
            break
    return inputs.numpy()

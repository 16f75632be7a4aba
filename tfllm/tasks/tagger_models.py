"""The taggers a token-classification run trains, with their featurizers, and reloading a finished run."""

import os

LEARNING_RATE = 2e-3  # Adam, BiLSTM tagger
# On CoNLL-2003 valid: 88.96 entity F1 with 10% of known words read as unknown, 88.49 without (docs/ner.md).
WORD_DROPOUT = 0.1


def build_tagger(config, run_dir, train, num_tags, steps_per_epoch):
    """`(model, featurizer, optimizer, callbacks, metadata)` for `config`: a BiLSTM tagger or a backbone.

    Build it inside the strategy's scope.
    """
    import keras

    if config.backbone:
        from tfllm.tasks.backbone_tagging import build_backbone_tagger

        return build_backbone_tagger(config, num_tags, steps_per_epoch)
    from tfllm.models import LSTMTagger
    from tfllm.text import load_vocabulary, save_vocabulary
    from tfllm.text.words import NUM_CASES, WordFeaturizer, build_word_vocabularies

    if run_dir.resuming and os.path.exists(run_dir.file("words.txt")):
        words, chars = load_vocabulary(run_dir.file("words.txt")), load_vocabulary(run_dir.file("chars.txt"))
    else:
        words, chars = build_word_vocabularies(train.words, min_count=config.min_word_count)
        save_vocabulary(words, run_dir.file("words.txt"))
        save_vocabulary(chars, run_dir.file("chars.txt"))
    featurizer = WordFeaturizer(words, chars, max_chars=config.max_chars)
    options = {"word_dropout": WORD_DROPOUT, **config.model_options}
    model = LSTMTagger(len(words), len(chars), num_tags, num_cases=NUM_CASES, **options)
    # Clipping keeps the LSTM's early steps on unscaled character features stable.
    optimizer = keras.optimizers.Adam(config.learning_rate or LEARNING_RATE, clipnorm=5.0)
    metadata = {"model": config.model, "max_chars": config.max_chars, "words": len(words), "chars": len(chars),
                "backbone": None}
    return model, featurizer, optimizer, [], metadata


def load_run_export(run_dir):
    """The `TaggerExport` of the tagger a finished `train` left in `run_dir` (not written anywhere).

    Raises:
        FileNotFoundError: the run directory holds no trained model.
    """
    import tfllm.models  # noqa: F401  (registers the model classes)
    from tfllm.tasks.tagger_export import TaggerExport
    from tfllm.text import load_vocabulary
    from tfllm.training.runs import load_trained_model, read_run_metadata

    model = load_trained_model(run_dir)
    run_dir = os.fspath(run_dir)
    metadata = read_run_metadata(run_dir)
    tags = load_vocabulary(os.path.join(run_dir, "tags.txt"))
    if metadata.get("backbone"):
        from tfllm.tasks.backbone_tagging import backbone_featurizer

        featurizer = backbone_featurizer(metadata["backbone"], metadata["max_length"])
    else:
        from tfllm.text.words import WordFeaturizer

        featurizer = WordFeaturizer(load_vocabulary(os.path.join(run_dir, "words.txt")),
                                    load_vocabulary(os.path.join(run_dir, "chars.txt")), metadata["max_chars"])
    return TaggerExport(featurizer, model, tags, metadata=metadata)

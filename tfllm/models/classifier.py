"""Text classifiers by name.

`build_classifier("lstm" | "bilstm" | "transformer" | "fasttext", ...)` returns
a plain, uncompiled Keras model from int token ids to class probabilities:
compile and fit it like any other (`tfllm.tasks.classification` trains and
exports them).
"""

KINDS = ("fasttext", "lstm", "bilstm", "transformer")

# Per-kind architecture defaults and the training settings they were tuned
# with (see docs/sentiment.md, "Benchmarks"). Any key can be overridden
# through `build_classifier(**options)`.
DEFAULTS = {
    "fasttext": {"embedding_dim": 32, "ngram_order": 2, "num_buckets": 2**18, "feature_dropout": 0.5, "dropout": 0.3},
    "lstm": {"embedding_dim": 64, "units": 64, "dropout": 0.2},
    "bilstm": {"embedding_dim": 64, "units": 64, "dropout": 0.2},
    "transformer": {"embedding_dim": 64, "num_layers": 1, "num_heads": 2, "intermediate_dim": 128, "dropout": 0.1},
}


def build_classifier(kind, vocabulary_size, num_classes, sequence_length, **options):
    """Builds an uncompiled text classifier from int token ids to probabilities.

    Args:
        kind: "fasttext" (averaged token + hashed bigram embeddings,
            `NGramClassifier`), "lstm" (Embedding + LSTM + Dense, the
            reference material's model), "bilstm" (bidirectional LSTM) or
            "transformer" (`TokenAndPositionEmbedding` + encoder blocks +
            mean pooling).
        vocabulary_size: number of token ids, padding (0) included.
        num_classes: number of classes.
        sequence_length: the longest input the model will see (the
            transformer's position table; others accept any length).
        **options: architecture options of that kind's class, overriding
            `DEFAULTS[kind]` (e.g. `embedding_dim=128`, `num_layers=2`).

    Returns:
        A `keras.Model` mapping int ids `(batch, length)` to float32
        probabilities `(batch, num_classes)`.

    Raises:
        ValueError: unknown kind or invalid options.

    Example:
        >>> model = build_classifier("transformer", 8000, 3, sequence_length=128)
        >>> model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    """
    if kind not in KINDS:
        raise ValueError(f"Unknown model kind {kind!r}; expected one of {', '.join(KINDS)}")
    config = {**DEFAULTS[kind], **options}
    name = config.pop("name", f"{kind}_classifier")
    if kind == "fasttext":
        from tfllm.models.ngram_classifier import NGramClassifier

        return NGramClassifier(vocabulary_size, num_classes, name=name, **config)
    if kind in ("lstm", "bilstm"):
        from tfllm.models.lstm_classifier import LSTMClassifier

        config.setdefault("bidirectional", kind == "bilstm")
        return LSTMClassifier(vocabulary_size, num_classes, name=name, **config)
    from tfllm.models.transformer_classifier import TransformerClassifier

    return TransformerClassifier(vocabulary_size, num_classes, sequence_length, name=name, **config)


def set_token_vectors(model, vectors):
    """Copies pre-trained token vectors into a `build_classifier` model's embedding.

    Args:
        model: a built model from `build_classifier` (any kind).
        vectors: float array `(vocabulary_size, embedding_dim)`; row i is
            token id i. The fasttext kind's hashed n-gram rows keep their
            initial values.

    Raises:
        ValueError: the shape does not match the model's token embedding.
    """
    import numpy as np

    layer = model.embedding
    if not layer.built:
        model(np.ones((1, 2), "int32"))  # Builds every layer.
    layer = getattr(layer, "token_embedding", layer)  # TokenAndPositionEmbedding
    table = layer.embeddings
    vectors = np.asarray(vectors, dtype="float32")
    rows, dim = int(table.shape[0]), int(table.shape[1])
    if vectors.ndim != 2 or vectors.shape[1] != dim or vectors.shape[0] > rows:
        raise ValueError(
            f"token vectors of shape {list(vectors.shape)} do not fit the embedding "
            f"of shape {[rows, dim]}"
        )
    values = np.asarray(table.numpy() if hasattr(table, "numpy") else table, dtype="float32")
    values[: vectors.shape[0]] = vectors
    table.assign(values)

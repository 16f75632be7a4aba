"""Text classifiers by name, and their export: tokenizer + model + labels as one SavedModel.

`build_classifier("lstm" | "bilstm" | "transformer" | "fasttext", ...)` returns
a plain, uncompiled Keras model from int token ids to class probabilities:
compile and fit it like any other. `ClassifierExport` wraps a trained model
with its tokenizer and label names in a `tf.Module` whose `serving_default`
signature takes raw strings, so TF Serving (and `tf.saved_model.load`) answer
with probabilities, label names and label ids.
"""

import json

import tensorflow as tf

from tfllm.serving import signatures

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
LEARNING_RATES = {"fasttext": 3e-3, "lstm": 1e-3, "bilstm": 1e-3, "transformer": 5e-4}


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


def make_optimizer(kind, learning_rate=None):
    """The optimizer each kind was tuned with: Adam, or `SparseAdam` for "fasttext".

    `fasttext`'s embedding table is large and each batch touches a sliver of
    it, so a sparse ("lazy") Adam update is several times faster per step.
    """
    import keras

    learning_rate = learning_rate or LEARNING_RATES[kind]
    if kind == "fasttext":
        from tfllm.models.ngram_classifier import SparseAdam

        return SparseAdam(learning_rate)
    return keras.optimizers.Adam(learning_rate)


def pad_token_ids(ids, max_length=None):
    """Truncates ragged (or dense) ids to `max_length` and pads them to a dense int32 batch.

    The result has at least one column, so a batch of empty texts still runs
    through recurrent layers.
    """
    if not isinstance(ids, tf.RaggedTensor):
        ids = tf.RaggedTensor.from_tensor(ids, padding=tf.cast(0, ids.dtype))
    if max_length is not None:
        ids = ids[:, :max_length]
    dense = tf.cast(ids.to_tensor(default_value=0), tf.int32)
    missing = tf.maximum(1 - tf.shape(dense)[1], 0)
    return tf.pad(dense, [[0, 0], [0, missing]])


class ClassifierExport(tf.Module):
    """Tokenizer + classifier + label names, exportable with raw strings as input.

    Its `serving_default` signature (`signature()`) takes `text` (tf.string
    `[None]`) and returns `probabilities` (float32 `[None, classes]`), `label`
    (tf.string `[None]`) and `label_id` (int64 `[None]`), keys from
    `tfllm.serving.signatures`. The label names and a JSON metadata string
    are saved as variables, readable after `tf.saved_model.load` as
    `loaded.label_names` and `loaded.metadata`.

    Args:
        tokenizer: a callable (Keras layer) mapping a batch of strings to int
            ids, ragged or dense right-padded with 0 (e.g. the keras_hub
            WordPiece tokenizer from `tfllm.text.make_wordpiece_tokenizer`).
        model: the trained classifier (int ids -> probabilities).
        labels: class names in id order (e.g. `LabelVocabulary.labels`).
        max_length: truncate token sequences to this length, as in training.
        metadata: optional JSON-ready dict saved with the model.

    Example:
        >>> module = ClassifierExport(tokenizer, model, vocab.labels, max_length=256)
        >>> export_saved_model(module, "saved_models/sentiment",
        ...                    {SERVING_DEFAULT: module.signature()})
    """

    def __init__(self, tokenizer, model, labels, max_length=None, metadata=None):
        super().__init__(name="classifier_export")
        labels = [str(label) for label in labels]
        if not labels:
            raise ValueError("`labels` must name at least one class. Received: []")
        self.tokenizer = tokenizer
        self.model = model
        # Keras' LSTM keeps its dropout seed state where tf.Module tracking does
        # not look; listing every model variable here tracks it for export.
        self.model_variables = [getattr(variable, "value", variable) for variable in model.variables]
        self.max_length = max_length
        self.label_names = tf.Variable(labels, dtype=tf.string, trainable=False, name="label_names")
        self.metadata = tf.Variable(
            json.dumps(metadata or {}, sort_keys=True), dtype=tf.string, trainable=False, name="metadata"
        )
        self._serve = tf.function(
            self._predict,
            input_signature=[tf.TensorSpec([None], tf.string, name=signatures.TEXT)],
        )

    def _predict(self, text):
        ids = pad_token_ids(self.tokenizer(text), self.max_length)
        probabilities = tf.cast(self.model(ids, training=False), tf.float32)
        label_id = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        return {
            signatures.PROBABILITIES: probabilities,
            signatures.LABEL: tf.gather(self.label_names, label_id),
            signatures.LABEL_ID: label_id,
        }

    def __call__(self, text):
        """Runs the serving computation eagerly on a list/array/tensor of strings."""
        return self._serve(tf.convert_to_tensor(text, dtype=tf.string))

    def signature(self):
        """The concrete `serving_default` function, for `signatures={...}`."""
        return self._serve.get_concrete_function()

    def signatures(self):
        """`{serving_default: ...}`, ready for `export_saved_model`."""
        return {signatures.SERVING_DEFAULT: self.signature()}


def read_export_metadata(loaded):
    """Returns `(labels, metadata dict)` of a loaded `ClassifierExport` SavedModel.

    Raises:
        ValueError: the SavedModel was not written by `ClassifierExport`.
    """
    if not hasattr(loaded, "label_names"):
        raise ValueError("this SavedModel is not a tfllm text classifier (it has no label_names)")
    labels = [label.decode("utf-8") for label in loaded.label_names.numpy().tolist()]
    metadata = json.loads(loaded.metadata.numpy().decode("utf-8")) if hasattr(loaded, "metadata") else {}
    return labels, metadata

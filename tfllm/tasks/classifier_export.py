"""The classifier export: tokenizer + model + label names as one string-in SavedModel.

`ClassifierExport` wraps a trained classifier with its tokenizer and label
names in a `tf.Module` whose `serving_default` signature takes raw strings,
so TF Serving (and `tf.saved_model.load`) answer with probabilities, label
names and label ids. `load_classifier_export` reads one back.
"""

import json

import tensorflow as tf

from tfllm.serving import signatures


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
        # not look; tracking the variables the model's weights leave out saves
        # it (tracking every variable would write each weight twice).
        weights = {id(getattr(weight, "value", weight)) for weight in model.weights}
        self.model_variables = [
            value for value in (getattr(variable, "value", variable) for variable in model.variables)
            if id(value) not in weights
        ]
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


def load_classifier_export(model_dir):
    """Loads an exported classifier: `(serving signature, labels, metadata, path)`.

    Raises:
        ExportError: no SavedModel at `model_dir`, or not a tfllm classifier.
    """
    from tfllm.serving.export import ExportError, load_export_module

    path, loaded = load_export_module(model_dir)
    try:
        labels, metadata = read_export_metadata(loaded)
    except ValueError as error:
        raise ExportError(f"{path}: {error}") from None
    if signatures.SERVING_DEFAULT not in loaded.signatures:
        raise ExportError(f"{path}: no {signatures.SERVING_DEFAULT!r} signature")
    signature = loaded.signatures[signatures.SERVING_DEFAULT]
    # Keep the loaded object alive as long as its signature is used.
    signature._tfllm_owner = loaded  # noqa: SLF001
    return signature, labels, metadata, path


def predict_outputs(predictor, texts, batch_size=256):
    """Runs a `ClassifierExport` or a loaded signature over texts.

    Returns:
        `(probabilities (n, classes), label_ids (n,))` as NumPy arrays.
    """
    import numpy as np

    probabilities, label_ids = [], []
    is_signature = hasattr(predictor, "structured_input_signature")
    for start in range(0, len(texts), batch_size):
        batch = tf.constant(texts[start : start + batch_size], dtype=tf.string)
        outputs = predictor(**{signatures.TEXT: batch}) if is_signature else predictor(batch)
        probabilities.append(outputs[signatures.PROBABILITIES].numpy())
        label_ids.append(outputs[signatures.LABEL_ID].numpy())
    if not probabilities:
        return np.zeros((0, 0), np.float32), np.zeros((0,), np.int64)
    return np.concatenate(probabilities), np.concatenate(label_ids)

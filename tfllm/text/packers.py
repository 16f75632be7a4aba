"""Packers: turn token id sequences into fixed-length model inputs."""

import keras
import keras_hub
import tensorflow as tf


def _to_ragged(ids, pad_value):
    """Dense right-padded (batch, length) ids -> ragged; other inputs unchanged."""
    if isinstance(ids, tf.Tensor) and ids.shape.rank == 2:
        return tf.RaggedTensor.from_tensor(ids, padding=tf.cast(pad_value, ids.dtype))
    return ids


@keras.saving.register_keras_serializable(package="tfllm")
class ClassifierPacker(keras_hub.layers.StartEndPacker):
    """Truncates, adds optional start/end ids and pads to `sequence_length`.

    A `keras_hub.layers.StartEndPacker` that also accepts dense right-padded
    ids (as `TextVectorization` or a fixed-length tokenizer produce): trailing
    `pad_value`s are dropped before packing, so the end id lands right after
    the last real token.

    Args:
        sequence_length: output length.
        start_value: id put first (e.g. "[CLS]"), or None.
        end_value: id put last (e.g. "[SEP]"), or None.
        pad_value: padding id.

    Call arguments:
        inputs: ragged `(batch, None)`, dense right-padded `(batch, length)`
            or a single 1-D sequence of ids.

    Returns:
        Dense `(batch, sequence_length)` ids.

    Example:
        >>> packer = ClassifierPacker(128, start_value=cls_id, end_value=sep_id)
        >>> packed = packer(tokenizer(texts))
    """

    def __init__(self, sequence_length, start_value=None, end_value=None, pad_value=0, **kwargs):
        if sequence_length is None or int(sequence_length) < 1:
            raise ValueError(
                f"`sequence_length` must be >= 1. Received: sequence_length={sequence_length}"
            )
        specials = (start_value is not None) + (end_value is not None)
        if int(sequence_length) <= specials:
            raise ValueError(
                "`sequence_length` must leave room for a token after start/end. "
                f"Received: sequence_length={sequence_length}"
            )
        super().__init__(
            sequence_length=int(sequence_length),
            start_value=start_value,
            end_value=end_value,
            pad_value=pad_value,
            **kwargs,
        )

    def call(self, inputs, sequence_length=None, add_start_value=True, add_end_value=True):
        return super().call(
            _to_ragged(inputs, self.pad_value),
            sequence_length=sequence_length,
            add_start_value=add_start_value,
            add_end_value=add_end_value,
        )


@keras.saving.register_keras_serializable(package="tfllm")
class Seq2SeqPacker(keras.layers.Layer):
    """Packs encoder and decoder ids for teacher-forced seq2seq models.

    With `s` the source ids and `t` the target ids:

        encoder_token_ids = s[:encoder_sequence_length], padded
        decoder_token_ids = [start_value] + t[:decoder_sequence_length - 1], padded
        target_ids        = t[:decoder_sequence_length - 1] + [end_value], padded

    exactly as `tfllm.data.make_seq2seq_dataset` builds batches, so a model
    trained on that dataset can pack its inputs in-graph with this layer.

    Args:
        encoder_sequence_length: encoder input length.
        decoder_sequence_length: decoder input and label length (>= 2).
        start_value: id of the decoder start token ("[START]").
        end_value: id of the end token ("[END]").
        pad_value: padding id.

    Call arguments:
        encoder_ids: source ids, ragged or dense right-padded `(batch, length)`.
        decoder_ids: optional target ids, same forms.

    Returns:
        `{"encoder_token_ids"}` when `decoder_ids` is None (inference), else
        `({"encoder_token_ids", "decoder_token_ids"}, target_ids)`.
    """

    def __init__(
        self,
        encoder_sequence_length,
        decoder_sequence_length,
        start_value,
        end_value,
        pad_value=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(encoder_sequence_length) < 1:
            raise ValueError(
                "`encoder_sequence_length` must be >= 1. "
                f"Received: encoder_sequence_length={encoder_sequence_length}"
            )
        if int(decoder_sequence_length) < 2:
            raise ValueError(
                "`decoder_sequence_length` must be >= 2 (start/end token plus one). "
                f"Received: decoder_sequence_length={decoder_sequence_length}"
            )
        self.encoder_sequence_length = int(encoder_sequence_length)
        self.decoder_sequence_length = int(decoder_sequence_length)
        self.start_value = int(start_value)
        self.end_value = int(end_value)
        self.pad_value = int(pad_value)
        # Ids stay TF tensors (ragged ones included); Keras must not convert them.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

    def _ragged(self, ids):
        if isinstance(ids, (list, tuple)):
            ids = tf.ragged.constant(ids)
        ids = _to_ragged(ids, self.pad_value)
        if not isinstance(ids, tf.RaggedTensor):
            raise ValueError(
                f"Expected batched ids (batch, length). Received shape: {ids.shape}"
            )
        return tf.cast(ids, tf.int32)

    def _pad(self, ids, length):
        # (batch, length)
        return ids.to_tensor(default_value=self.pad_value, shape=[None, length])

    def call(self, encoder_ids, decoder_ids=None):
        encoder = self._ragged(encoder_ids)[:, : self.encoder_sequence_length]
        inputs = {"encoder_token_ids": self._pad(encoder, self.encoder_sequence_length)}
        if decoder_ids is None:
            return inputs
        target = self._ragged(decoder_ids)[:, : self.decoder_sequence_length - 1]
        rows = target.nrows()
        start = tf.fill([rows, 1], tf.constant(self.start_value, tf.int32))
        end = tf.fill([rows, 1], tf.constant(self.end_value, tf.int32))
        inputs["decoder_token_ids"] = self._pad(
            tf.concat([start, target], axis=1), self.decoder_sequence_length
        )
        labels = self._pad(tf.concat([target, end], axis=1), self.decoder_sequence_length)
        return inputs, labels

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder_sequence_length": self.encoder_sequence_length,
                "decoder_sequence_length": self.decoder_sequence_length,
                "start_value": self.start_value,
                "end_value": self.end_value,
                "pad_value": self.pad_value,
            }
        )
        return config

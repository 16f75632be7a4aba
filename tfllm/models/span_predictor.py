"""A span head on an encoder backbone: start and end logits over the context tokens (BERT on SQuAD)."""

import keras
from keras import ops

from tfllm.models.backbone_heads import _check_backbone, _deserialize_backbone, _serialize_backbone
from tfllm.models.encoder_backbone import EncoderBackbone, truncated_normal

# Logit of positions that cannot start or end an answer (the question, padding).
_MASKED = -1e4


def mask_span_logits(logits, segment_ids, padding_mask):
    """float32 `logits` `(batch, length, 2)` with -1e4 where no answer starts or ends: outside
    the context (segment 0, padding), except the first position ([CLS])."""
    context = ops.logical_and(ops.greater_equal(segment_ids, 1), ops.not_equal(padding_mask, 0))
    first = ops.equal(ops.arange(ops.shape(context)[1]), 0)[None, :]
    allowed = ops.logical_or(context, first)[:, :, None]  # (batch, length, 1)
    return ops.where(allowed, ops.cast(logits, "float32"), _MASKED)


@keras.saving.register_keras_serializable(package="tfllm")
class SpanPredictor(keras.Model):
    """Start and end logits of an answer span, one dense layer on an encoder's sequence output.

    Positions outside the context (segment 0, padding) get a logit of -1e4,
    context positions are those of a segment id of 1 or more,
    except the first ([CLS]) position, the target of windows that do not hold
    the answer. The logits are float32.

    Args:
        backbone: an `EncoderBackbone`.
        dropout: dropout rate before the output layer.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: dict of `token_ids`, `segment_ids` (1 for the context) and
            `padding_mask`, int `(batch, length)`.
        training: whether dropout is active.

    Returns:
        float32 `(batch, length, 2)`: start logits `[..., 0]`, end logits `[..., 1]`.

    Example:

    ```python
    model = SpanPredictor(backbone)
    model.compile("adam", loss=span_loss)
    model.fit(windows, positions)  # positions: int (batch, 2), start and end token
    ```
    """

    def __init__(self, backbone, dropout=0.1, **kwargs):
        _check_backbone(backbone, (EncoderBackbone,))
        super().__init__(**kwargs)
        self.backbone = backbone
        # Spans read the sequence output only; a frozen pooler has no missing gradients to warn about.
        backbone.pooled_dense.trainable = False
        self.dropout = float(dropout)
        self.output_dropout = keras.layers.Dropout(self.dropout, name="output_dropout")
        self.span_dense = keras.layers.Dense(2, kernel_initializer=truncated_normal(), dtype="float32",
                                             name="span_dense")
        self.span_dense.build((None, None, backbone.hidden_dim))

    def build(self, input_shape=None):
        self.built = True

    def call(self, inputs, training=None):
        features = {name: inputs[name] for name in ("token_ids", "segment_ids", "padding_mask")}
        sequence = self.backbone(features, training=training)["sequence_output"]
        logits = self.span_dense(self.output_dropout(sequence, training=training))  # (batch, length, 2)
        return mask_span_logits(logits, inputs["segment_ids"], inputs["padding_mask"])

    def compile_from_config(self, config):
        """Leaves a copy or a loaded model uncompiled: fine-tuning optimizers (`ScaledAdam`, which
        holds the backbone's variables) do not rebuild from a config; compile it again to train."""

    def get_config(self):
        config = super().get_config()
        config.update({"dropout": self.dropout})
        return _serialize_backbone(config, self.backbone)

    @classmethod
    def from_config(cls, config):
        return cls(**_deserialize_backbone(config))


def with_segments(backbone, num_segments):
    """`backbone`, or a copy of it with a segment embedding of `num_segments` rows.

    New rows start as copies of the last one: a tfllm MLM backbone has trained
    only segment 0, a BERT checkpoint segments 0 and 1.
    """
    import numpy as np

    if backbone.num_segments >= num_segments:
        return backbone
    config = {**backbone.get_config(), "num_segments": num_segments}
    config.pop("name", None)
    wider = EncoderBackbone.from_config(config)
    old = backbone.embedding.segment_embedding.embeddings
    values = []
    for weight in backbone.weights:
        value = weight.numpy()
        if weight is old:
            value = np.concatenate([value, np.repeat(value[-1:], num_segments - len(value), axis=0)])
        values.append(value)
    for weight, value in zip(wider.weights, values):
        weight.assign(value)
    return wider


@keras.saving.register_keras_serializable(package="tfllm")
def span_loss(y_true, y_pred):
    """Mean cross-entropy of the start and end positions: `(batch, 2)` ids, `(batch, length, 2)` logits."""
    positions = ops.cast(y_true, "int32")
    logits = ops.cast(y_pred, "float32")
    start = ops.sparse_categorical_crossentropy(positions[:, 0], logits[..., 0], from_logits=True)
    end = ops.sparse_categorical_crossentropy(positions[:, 1], logits[..., 1], from_logits=True)
    return (start + end) / 2.0

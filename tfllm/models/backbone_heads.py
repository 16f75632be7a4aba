"""Heads for fine-tuning and pre-training the backbones: masked language model, classifier."""

import keras
import keras_hub
from keras import ops

from tfllm._validation import check_positive_ints, check_rates
from tfllm.layers.activations import gelu_approximate
from tfllm.models.decoder_backbone import DecoderBackbone
from tfllm.models.encoder_backbone import EncoderBackbone, truncated_normal
from tfllm.models.language_model import LanguageModelMixin

_POOLINGS = ("pooled", "last", "mean")


def _check_backbone(backbone, classes):
    if not isinstance(backbone, classes):
        names = " or ".join(c.__name__ for c in classes)
        raise ValueError(f"`backbone` must be a tfllm {names}. Received: backbone={type(backbone).__name__}")


def _serialize_backbone(config, backbone):
    config["backbone"] = keras.saving.serialize_keras_object(backbone)
    return config


def _deserialize_backbone(config):
    config = dict(config)
    config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
    return config


@keras.saving.register_keras_serializable(package="tfllm")
class MaskedLanguageModel(LanguageModelMixin, keras.Model):
    """BERT's masked-language-model head on an `EncoderBackbone`, tied to its token embedding.

    The hidden states at `mask_positions` go through a dense transform (tanh
    GELU) and a layer norm, then are projected on the token embedding matrix
    plus a bias (`keras_hub.layers.MaskedLMHead`). `compile()` defaults to a
    cross-entropy that ignores label `pad_token_id` (padded mask positions).

    Args:
        backbone: an `EncoderBackbone`.
        pad_token_id: label of padded mask positions (ignored by the loss).
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: the backbone's inputs (`token_ids`, `segment_ids`,
            `padding_mask`) plus `mask_positions`, int `(batch, k)`.
        training: whether dropout is active.

    Returns:
        float32 logits `(batch, k, vocabulary_size)`.

    Example:

    ```python
    mlm = MaskedLanguageModel(backbone)
    mlm.compile("adam")
    mlm.fit({**backbone_inputs, "mask_positions": positions}, masked_ids)
    ```
    """

    def __init__(self, backbone, pad_token_id=0, **kwargs):
        _check_backbone(backbone, (EncoderBackbone,))
        super().__init__(**kwargs)
        self.backbone = backbone
        self.pad_token_id = int(pad_token_id)
        self.mlm_head = keras_hub.layers.MaskedLMHead(
            token_embedding=backbone.token_embedding,
            intermediate_activation=gelu_approximate,
            layer_norm_epsilon=backbone.layer_norm_epsilon,
            kernel_initializer=truncated_normal(),
            dtype=backbone.dtype_policy,
            name="mlm_head",
        )
        self.mlm_head.build((None, None, backbone.hidden_dim))

    def build(self, input_shape=None):
        self.built = True

    def call(self, inputs, training=None):
        features = {name: inputs[name] for name in ("token_ids", "segment_ids", "padding_mask")}
        sequence = self.backbone(features, training=training)["sequence_output"]
        logits = self.mlm_head(sequence, mask_positions=ops.cast(inputs["mask_positions"], "int32"))
        return ops.cast(logits, "float32")

    def get_config(self):
        config = super().get_config()
        config.update({"pad_token_id": self.pad_token_id})
        return _serialize_backbone(config, self.backbone)

    @classmethod
    def from_config(cls, config):
        return cls(**_deserialize_backbone(config))


@keras.saving.register_keras_serializable(package="tfllm")
class BackboneClassifier(keras.Model):
    """A softmax classifier on a backbone, for fine-tuning.

    Encoders classify their pooled output; decoders the hidden state of the
    last real token (`pooling="last"`) or the masked mean of the sequence
    (`pooling="mean"`). The output layer runs in float32.

    Args:
        backbone: an `EncoderBackbone` or a `DecoderBackbone`.
        num_classes: number of classes.
        dropout: dropout rate before the output layer.
        pooling: `"pooled"`, `"last"` or `"mean"`; None picks `"pooled"` for
            encoders and `"last"` for decoders.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: the backbone's inputs (a dict with `padding_mask`).
        training: whether dropout is active.

    Returns:
        float32 class probabilities `(batch, num_classes)`.

    Example:

    ```python
    classifier = BackboneClassifier(backbone, num_classes=2)
    classifier.compile(keras.optimizers.Adam(2e-5))
    classifier.fit(backbone_inputs, labels)
    ```
    """

    def __init__(self, backbone, num_classes, dropout=0.1, pooling=None, **kwargs):
        _check_backbone(backbone, (EncoderBackbone, DecoderBackbone))
        check_positive_ints(num_classes=num_classes)
        check_rates(dropout=dropout)
        is_encoder = isinstance(backbone, EncoderBackbone)
        if pooling is None:
            pooling = "pooled" if is_encoder else "last"
        if pooling not in _POOLINGS or (pooling == "pooled" and not is_encoder):
            allowed = _POOLINGS if is_encoder else _POOLINGS[1:]
            raise ValueError(f"`pooling` must be one of {allowed} for this backbone. Received: pooling={pooling!r}")
        super().__init__(**kwargs)
        self.backbone = backbone
        self.num_classes = int(num_classes)
        self.dropout = float(dropout)
        self.pooling = pooling
        self.output_dropout = keras.layers.Dropout(self.dropout, name="output_dropout")
        self.output_dense = keras.layers.Dense(
            self.num_classes,
            activation="softmax",
            kernel_initializer=truncated_normal(),
            dtype="float32",
            name="output_dense",
        )
        self.output_dense.build((None, backbone.hidden_dim))

    def build(self, input_shape=None):
        self.built = True

    def _pool(self, outputs, padding_mask):
        if self.pooling == "pooled":
            return outputs["pooled_output"]
        sequence = outputs["sequence_output"] if isinstance(outputs, dict) else outputs
        mask = ops.cast(padding_mask, sequence.dtype)  # (batch, length)
        if self.pooling == "mean":
            total = ops.sum(sequence * mask[:, :, None], axis=1)  # (batch, hidden)
            return total / ops.maximum(ops.sum(mask, axis=1, keepdims=True), 1.0)
        # Padding is on the right, so the last real token is at sum(mask) - 1.
        last = ops.maximum(ops.sum(ops.cast(padding_mask, "int32"), axis=1) - 1, 0)  # (batch,)
        return ops.take_along_axis(sequence, last[:, None, None], axis=1)[:, 0, :]  # (batch, hidden)

    def call(self, inputs, training=None):
        outputs = self.backbone(inputs, training=training)
        x = self.output_dropout(self._pool(outputs, inputs["padding_mask"]), training=training)
        return self.output_dense(x)

    def compile(self, optimizer="adam", loss="auto", metrics="auto", **kwargs):
        """`keras.Model.compile` with sparse cross-entropy and accuracy by default."""
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy()
        if metrics == "auto":
            metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def compile_from_config(self, config):
        """Restores `compile()` on load (Keras skips custom `compile` methods otherwise)."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "dropout": self.dropout, "pooling": self.pooling})
        return _serialize_backbone(config, self.backbone)

    @classmethod
    def from_config(cls, config):
        return cls(**_deserialize_backbone(config))


@keras.saving.register_keras_serializable(package="tfllm")
class BackboneTagger(keras.Model):
    """A softmax tag per word on an `EncoderBackbone`, read at each word's first sub-word.

    Args:
        backbone: an `EncoderBackbone`.
        num_tags: tags per word.
        dropout: dropout rate before the output layer.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: the backbone's inputs plus `word_starts`, int `(batch, words)`:
            the position of each word's first sub-word (0 for padding words).
        training: whether dropout is active.

    Returns:
        float32 tag probabilities `(batch, words, num_tags)`.
    """

    def __init__(self, backbone, num_tags, dropout=0.1, **kwargs):
        _check_backbone(backbone, (EncoderBackbone,))
        check_positive_ints(num_tags=num_tags)
        check_rates(dropout=dropout)
        super().__init__(**kwargs)
        self.backbone = backbone
        self.num_tags = int(num_tags)
        self.dropout = float(dropout)
        self.output_dropout = keras.layers.Dropout(self.dropout, name="output_dropout")
        self.output_dense = keras.layers.Dense(
            self.num_tags, activation="softmax", kernel_initializer=truncated_normal(), dtype="float32",
            name="output_dense",
        )
        self.output_dense.build((None, None, backbone.hidden_dim))

    def build(self, input_shape=None):
        self.built = True

    def call(self, inputs, training=None):
        features = {name: inputs[name] for name in ("token_ids", "segment_ids", "padding_mask")}
        sequence = self.backbone(features, training=training)["sequence_output"]  # (batch, length, hidden)
        starts = ops.cast(inputs["word_starts"], "int32")[:, :, None]  # (batch, words, 1)
        words = ops.take_along_axis(sequence, starts, axis=1)  # (batch, words, hidden)
        return self.output_dense(self.output_dropout(words, training=training))

    def get_config(self):
        config = super().get_config()
        config.update({"num_tags": self.num_tags, "dropout": self.dropout})
        return _serialize_backbone(config, self.backbone)

    @classmethod
    def from_config(cls, config):
        return cls(**_deserialize_backbone(config))

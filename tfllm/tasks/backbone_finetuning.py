"""Fine-tuning a pre-trained backbone for classification: its tokenizer, a head, a gentler learning rate.

`tfllm.tasks.classification` uses this when `ClassificationConfig.backbone`
names a backbone directory or preset (`tfllm.models.load_backbone`): texts
are tokenized with the backbone's own tokenizer (in `tf.data` and inside the
export), wrapped in its start/end tokens, and the model is the backbone with
a classification head, trained with a warm-up + linear decay schedule, a
lower learning rate for the backbone than for the head, and optionally the
backbone frozen for the first epochs.
"""

import keras


@keras.saving.register_keras_serializable(package="tfllm")
class BackboneTokenizer(keras.layers.Layer):
    """Strings -> ragged ids of a backbone's tokenizer, truncated, between its start and end ids.

    Args:
        tokenizer: a keras-hub tokenizer (as `load_backbone` returns).
        max_length: the most ids per text, start and end included.
        start_id, end_id: ids put first and last (e.g. [CLS], [SEP]), or None.
    """

    def __init__(self, tokenizer, max_length, start_id=None, end_id=None, **kwargs):
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.start_id, self.end_id = start_id, end_id

    def call(self, texts):
        import tensorflow as tf

        ids = self.tokenizer(texts)
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(ids, padding=0)
        ids = tf.cast(ids, tf.int32)
        room = self.max_length - (self.start_id is not None) - (self.end_id is not None)
        ids = ids[:, :room]
        rows = ids.nrows()
        if self.start_id is not None:
            ids = tf.concat([tf.fill([rows, 1], self.start_id), ids], axis=1)
        if self.end_id is not None:
            ids = tf.concat([ids, tf.fill([rows, 1], self.end_id)], axis=1)
        return ids


@keras.saving.register_keras_serializable(package="tfllm")
class BackboneInputs(keras.layers.Layer):
    """Right-padded ids (0 = padding) -> the backbone's input dict (padding mask, segment 0)."""

    def __init__(self, segments=True, **kwargs):
        super().__init__(**kwargs)
        self.segments = segments

    def call(self, token_ids):
        from keras import ops

        inputs = {"token_ids": token_ids, "padding_mask": ops.not_equal(token_ids, 0)}
        if self.segments:
            inputs["segment_ids"] = ops.zeros_like(token_ids)
        return inputs

    def get_config(self):
        return {**super().get_config(), "segments": self.segments}


def special_ids(tokenizer):
    """`(start id, end id)` a backbone's tokenizer wraps texts in: [CLS]/[SEP] for BERT-style, none else."""
    vocabulary = tokenizer.get_vocabulary() if hasattr(tokenizer, "get_vocabulary") else []
    index = {token: i for i, token in enumerate(vocabulary)}
    return index.get("[CLS]"), index.get("[SEP]")


def resolve_backbone(path_or_preset):
    """A pre-training run directory means the backbone it saved (`<run dir>/backbone`)."""
    import os

    import tfllm.text.characters  # noqa: F401  (registers the character tokenizer a backbone may hold)

    inner = os.path.join(os.fspath(path_or_preset), "backbone")
    return inner if os.path.isdir(inner) else path_or_preset


def backbone_tokenizer(path_or_preset, max_length):
    """The `BackboneTokenizer` a run fine-tuned from `path_or_preset` tokenized with."""
    from tfllm.models import EncoderBackbone, load_backbone

    backbone, tokenizer = load_backbone(resolve_backbone(path_or_preset))
    start_id, end_id = special_ids(tokenizer) if isinstance(backbone, EncoderBackbone) else (None, None)
    return BackboneTokenizer(tokenizer, max_length, start_id, end_id)


def load_for_classification(config, num_classes):
    """`(model from padded ids to probabilities, tokenizer layer)` for `config.backbone`.

    Build it inside the strategy's scope.
    """
    from tfllm.models import BackboneClassifier, EncoderBackbone, load_backbone

    backbone, tokenizer = load_backbone(resolve_backbone(config.backbone))
    encoder = isinstance(backbone, EncoderBackbone)
    start_id, end_id = special_ids(tokenizer) if encoder else (None, None)
    ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    head = BackboneClassifier(backbone, num_classes, dropout=config.model_options.get("dropout", 0.1))
    model = keras.Model(ids, head(BackboneInputs(segments=encoder)(ids)), name="backbone_classifier")
    model.backbone = backbone
    max_length = min(config.resolved_max_length(), int(backbone.max_sequence_length))
    return model, BackboneTokenizer(tokenizer, max_length, start_id, end_id), max_length


def finetuning_optimizer(config, model, steps_per_epoch):
    """`ScaledAdam` on a warm-up + linear decay schedule, and the callbacks its freezing needs.

    The scale applies to `model.backbone`'s variables; a model without a backbone trains with plain Adam.
    """
    from tfllm.training.optimizers import FreezeFor, ScaledAdam, WarmupLinearDecay

    total = max(1, steps_per_epoch * config.epochs)
    schedule = WarmupLinearDecay(config.learning_rate or 5e-4, total, int(total * config.warmup_fraction))
    backbone = getattr(model, "backbone", None)
    scaled = backbone.trainable_variables if backbone is not None else []
    optimizer = ScaledAdam(scaled, scale=config.backbone_lr_factor, learning_rate=schedule, clipnorm=1.0)
    callbacks = [FreezeFor(config.freeze_epochs, config.backbone_lr_factor)] if config.freeze_epochs else []
    return optimizer, callbacks

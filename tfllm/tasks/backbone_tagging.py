"""Fine-tuning an encoder backbone for tagging: each word's sub-words, a tag read at its first one."""

import tensorflow as tf


class SubwordFeaturizer(tf.Module):
    """Words (ragged tf.string `[batch, (words)]`) -> a backbone's inputs plus `word_starts`.

    Each word is split into sub-words by the backbone's tokenizer (a word it
    cannot split becomes one unknown sub-word); a sentence is its words'
    sub-words between [CLS] and [SEP], truncated to `max_length`; words cut
    off read their tag at [CLS] (position 0).

    Args:
        tokenizer: a keras-hub tokenizer (as `load_backbone` returns).
        max_length: the most sub-words per sentence, [CLS] and [SEP] included.
        start_id, end_id, unknown_id: the ids of [CLS], [SEP] and [UNK].
    """

    def __init__(self, tokenizer, max_length, start_id, end_id, unknown_id):
        super().__init__(name="subword_featurizer")
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.start_id, self.end_id, self.unknown_id = int(start_id), int(end_id), int(unknown_id)

    def __call__(self, words):
        if not isinstance(words, tf.RaggedTensor):
            words = tf.RaggedTensor.from_tensor(words, padding="")
        words = words.with_row_splits_dtype(tf.int64)
        pieces = self.tokenizer(words.flat_values)
        if isinstance(pieces, list):  # keras-hub hands eager results back as Python lists.
            pieces = tf.ragged.constant(pieces, tf.int32, ragged_rank=1, inner_shape=()) if pieces else (
                tf.RaggedTensor.from_row_lengths(tf.zeros([0], tf.int32), tf.zeros([0], tf.int64)))
        if not isinstance(pieces, tf.RaggedTensor):
            pieces = tf.RaggedTensor.from_tensor(pieces, padding=0)
        pieces = tf.cast(pieces, tf.int32).with_row_splits_dtype(tf.int64)
        empty = tf.equal(pieces.row_lengths(), 0)
        unknown = tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.reduce_sum(tf.cast(empty, tf.int32))], self.unknown_id), tf.cast(empty, tf.int64)
        )
        pieces = tf.concat([pieces, unknown], axis=1)
        lengths = pieces.row_lengths()
        ends = tf.cumsum(lengths)
        splits = tf.gather(tf.concat([[0], ends], 0), words.row_splits)  # sub-word row splits per sentence
        rows = words.value_rowids()
        room = self.max_length - 2
        starts = ends - lengths - tf.gather(splits[:-1], rows)  # (words,) first sub-word within its sentence
        starts = tf.where(starts < room, starts + 1, tf.zeros_like(starts))
        sentence = tf.RaggedTensor.from_row_splits(pieces.flat_values, splits)[:, :room]
        count = sentence.nrows()
        token_ids = tf.concat(
            [tf.fill([count, 1], self.start_id), sentence, tf.fill([count, 1], self.end_id)], axis=1
        ).to_tensor(0)
        word_starts = tf.cast(words.with_flat_values(starts).to_tensor(0), tf.int32)
        word_starts = tf.pad(word_starts, [[0, 0], [0, tf.maximum(1 - tf.shape(word_starts)[1], 0)]])
        return {"token_ids": token_ids, "padding_mask": tf.not_equal(token_ids, 0),
                "segment_ids": tf.zeros_like(token_ids), "word_starts": word_starts}


def _featurizer(backbone, tokenizer, max_length):
    from tfllm.models import EncoderBackbone
    from tfllm.models.checkpoints import BackboneError

    if not isinstance(backbone, EncoderBackbone):
        raise BackboneError(f"tagging needs an encoder backbone, not a {type(backbone).__name__}")
    index = {token: i for i, token in enumerate(tokenizer.get_vocabulary())}
    missing = [token for token in ("[CLS]", "[SEP]", "[UNK]") if token not in index]
    if missing:
        raise BackboneError(f"the backbone's vocabulary has no {', '.join(missing)}")
    length = min(int(max_length), int(backbone.max_sequence_length))
    return SubwordFeaturizer(tokenizer, length, index["[CLS]"], index["[SEP]"], index["[UNK]"])


def backbone_featurizer(path_or_preset, max_length):
    """The `SubwordFeaturizer` a run fine-tuned from `path_or_preset` used."""
    from tfllm.models import load_backbone
    from tfllm.tasks.backbone_finetuning import resolve_backbone

    return _featurizer(*load_backbone(resolve_backbone(path_or_preset)), max_length)


def build_backbone_tagger(config, num_tags, steps_per_epoch):
    """`(model, featurizer, optimizer, callbacks, metadata)` for `config.backbone`; build it in the strategy's scope."""
    from tfllm.models import BackboneTagger, load_backbone
    from tfllm.tasks.backbone_finetuning import finetuning_optimizer, resolve_backbone

    backbone, tokenizer = load_backbone(resolve_backbone(config.backbone))
    featurizer = _featurizer(backbone, tokenizer, config.max_length)
    model = BackboneTagger(backbone, num_tags, dropout=config.model_options.get("dropout", 0.1))
    optimizer, callbacks = finetuning_optimizer(config, model, steps_per_epoch)
    metadata = {"model": "backbone", "backbone": config.backbone, "max_length": featurizer.max_length}
    return model, featurizer, optimizer, callbacks, metadata

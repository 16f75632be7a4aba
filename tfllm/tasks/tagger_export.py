"""The tagger export: word splitting + features + tagger + entity decoding as one string-in SavedModel.

`TaggerExport`'s `serving_default` takes raw texts and returns, per text, its
entities (text, type, character start/end, score) padded to the batch's most
entities, plus `entity_count` (keys in `tfllm.serving.signatures`).
Tags are decoded as the most probable valid IOB2 sequence (`constrained_decode`).
`tag_words` (a plain `tf.function`, not a serving signature) tags given words,
which evaluation on pre-split CoNLL sentences uses. `load_tagger_export`
reads one back.
"""

import json

import tensorflow as tf

from tfllm.serving import signatures
from tfllm.text.words import char_offsets, split_words


def entity_types(tags):
    """The entity types of IOB2 tags, sorted (`["LOC", "PER"]` for `O, B-PER, I-PER, B-LOC`)."""
    return sorted({tag[2:] for tag in tags if tag != "O"})


def decode_entities(texts, starts, ends, tag_ids, scores, tags):
    """Entities of tagged words as the signature's padded outputs.

    An entity starts at `B-X`, or at `I-X` after a word that is not of type
    X (as conlleval reads tags), and runs over the following `I-X` words.

    Args:
        texts: tf.string `[batch]`.
        starts, ends: ragged int64 byte offsets of the words `[batch, (words)]`.
        tag_ids, scores: ragged tag ids and their probabilities, same rows.
        tags: the tag names in id order (Python strings).
    """
    types = entity_types(tags)
    type_of = tf.constant([0 if tag == "O" else types.index(tag[2:]) + 1 for tag in tags], tf.int64)
    is_b = tf.constant([tag.startswith("B-") for tag in tags])
    flat_ids = tag_ids.flat_values
    word_type = tf.gather(type_of, flat_ids)
    rows = tag_ids.value_rowids()
    position = tf.range(tf.size(flat_ids, out_type=tf.int64))
    first = tf.equal(position, tf.gather(tag_ids.row_splits[:-1], rows))
    previous = tf.where(first, tf.zeros_like(word_type), tf.concat([[0], word_type[:-1]], 0))
    inside = word_type > 0
    begins = inside & (tf.gather(is_b, flat_ids) | tf.not_equal(previous, word_type))
    entity = tf.cumsum(tf.cast(begins, tf.int64)) - 1
    count = tf.reduce_sum(tf.cast(begins, tf.int64))
    entity_in = tf.boolean_mask(entity, inside)
    start = tf.math.unsorted_segment_min(tf.boolean_mask(starts.flat_values, inside), entity_in, count)
    end = tf.math.unsorted_segment_max(tf.boolean_mask(ends.flat_values, inside), entity_in, count)
    score = tf.math.unsorted_segment_mean(tf.boolean_mask(scores.flat_values, inside), entity_in, count)
    entity_rows = tf.boolean_mask(rows, begins)
    entity_texts = tf.gather(texts, entity_rows)
    kind = tf.gather(tf.constant(["", *types]), tf.boolean_mask(word_type, begins))
    char_start = char_offsets(entity_texts, start)
    char_end = char_offsets(entity_texts, end)

    def padded(values, default):
        ragged = tf.RaggedTensor.from_value_rowids(values, entity_rows, nrows=tf.shape(texts, tf.int64)[0])
        return ragged.to_tensor(default)

    return {
        signatures.ENTITY_TEXT: padded(tf.strings.substr(entity_texts, start, end - start), ""),
        signatures.ENTITY_TYPE: padded(kind, ""),
        signatures.ENTITY_START: padded(char_start, tf.constant(-1, tf.int64)),
        signatures.ENTITY_END: padded(char_end, tf.constant(-1, tf.int64)),
        signatures.ENTITY_SCORE: padded(tf.cast(score, tf.float32), 0.0),
        signatures.ENTITY_COUNT: tf.math.unsorted_segment_sum(
            tf.ones_like(entity_rows), entity_rows, tf.shape(texts, tf.int64)[0]
        ),
    }


def allowed_transitions(tags):
    """`(start, transitions)` log-weights of IOB2: 0 where allowed, -1e9 where not.

    An `I-X` may only follow `B-X` or `I-X`, and may not start a sentence.
    """
    import numpy as np

    inside = [tag[2:] if tag.startswith("I-") else None for tag in tags]
    start = np.array([-1e9 if kind else 0.0 for kind in inside], np.float32)
    transitions = np.zeros((len(tags), len(tags)), np.float32)  # (previous, next)
    for j, kind in enumerate(inside):
        if kind:
            for i, previous in enumerate(tags):
                if previous[2:] != kind or previous == "O":
                    transitions[i, j] = -1e9
    return start, transitions


def constrained_decode(probabilities, lengths, tags):
    """The most probable IOB2-valid tag sequence of each row (Viterbi over the per-word probabilities).

    Args:
        probabilities: float32 `(batch, words, tags)`, at least one word column.
        lengths: int64 `(batch,)` real words per row.
        tags: the tag names in id order.

    Returns:
        int64 tag ids `(batch, words)` (padding positions hold any tag).
    """
    start, transitions = (tf.constant(value) for value in allowed_transitions(tags))
    emissions = tf.transpose(tf.math.log(probabilities + 1e-9), [1, 0, 2])  # (words, batch, tags)
    real = tf.transpose(tf.sequence_mask(lengths, tf.shape(probabilities)[1]))  # (words, batch)
    first = emissions[0] + start
    keep = tf.broadcast_to(tf.range(len(tags), dtype=tf.int64), tf.shape(first))

    def forward(carry, inputs):
        score, _ = carry
        emission, mask = inputs
        candidates = score[:, :, None] + transitions  # (batch, previous, next)
        best = tf.where(mask[:, None], tf.argmax(candidates, axis=1), keep)
        return tf.where(mask[:, None], tf.reduce_max(candidates, axis=1) + emission, score), best

    scores, pointers = tf.scan(forward, (emissions[1:], real[1:]), initializer=(first, tf.zeros_like(keep)))
    last = tf.argmax(tf.concat([first[None], scores], 0)[-1], axis=-1)  # (batch,)
    path = tf.scan(lambda tag, pointer: tf.gather(pointer, tag, batch_dims=1), pointers, initializer=last,
                   reverse=True)  # (words - 1, batch): the tag of each word but the last
    return tf.transpose(tf.concat([path, last[None]], 0))


class TaggerExport(tf.Module):
    """Words featurizer + tagger + tag names, exportable with raw strings as input.

    Args:
        featurizer: maps ragged words `[batch, (words)]` to the model's inputs
            (`tfllm.text.words.WordFeaturizer`, or a backbone's sub-word one).
        model: the trained tagger (inputs -> `(batch, words, tags)` probabilities).
        tags: tag names in id order.
        metadata: optional JSON-ready dict saved with the model.
        constrained: decode the most probable valid IOB2 sequence (Viterbi)
            instead of each word's most probable tag.
    """

    def __init__(self, featurizer, model, tags, metadata=None, constrained=True):
        super().__init__(name="tagger_export")
        self.featurizer = featurizer
        self.model = model
        self.tags = [str(tag) for tag in tags]
        self.constrained = bool(constrained)
        weights = {id(getattr(weight, "value", weight)) for weight in model.weights}
        self.model_variables = [
            value for value in (getattr(variable, "value", variable) for variable in model.variables)
            if id(value) not in weights
        ]
        self.tag_names = tf.Variable(self.tags, dtype=tf.string, trainable=False, name="tag_names")
        self.metadata = tf.Variable(
            json.dumps(metadata or {}, sort_keys=True), dtype=tf.string, trainable=False, name="metadata"
        )
        self._serve = tf.function(
            self._entities, input_signature=[tf.TensorSpec([None], tf.string, name=signatures.TEXT)]
        )
        self.tag_words = tf.function(
            self._tag_words, input_signature=[tf.RaggedTensorSpec([None, None], tf.string, row_splits_dtype=tf.int64)]
        )

    def _probabilities(self, words):
        """`(tag ids, their probabilities)`, ragged like `words`."""
        probabilities = tf.cast(self.model(self.featurizer(words), training=False), tf.float32)
        lengths = words.row_lengths()
        if self.constrained:
            best = constrained_decode(probabilities, lengths, self.tags)
        else:
            best = tf.argmax(probabilities, -1)
        tag_ids = tf.RaggedTensor.from_tensor(best, lengths=lengths)
        scores = tf.RaggedTensor.from_tensor(tf.gather(probabilities, best, batch_dims=2), lengths=lengths)
        return tag_ids, scores

    def _tag_words(self, words):
        return self._probabilities(words)[0]

    def _entities(self, text):
        words, starts, ends = split_words(text)
        tag_ids, scores = self._probabilities(words)
        return decode_entities(text, starts, ends, tag_ids, scores, self.tags)

    def __call__(self, text):
        """Runs the serving computation eagerly on a list/array/tensor of strings."""
        return self._serve(tf.convert_to_tensor(text, dtype=tf.string))

    def signatures(self):
        """`{serving_default: ...}`, ready for `export_saved_model`."""
        return {signatures.SERVING_DEFAULT: self._serve.get_concrete_function()}


class LoadedTagger:
    """An exported tagger read back: `entities(texts)`, `tag(sentences)`, its tags and metadata.

    Raises:
        ExportError: no SavedModel at `model_dir`, or not a tfllm tagger.
    """

    def __init__(self, model_dir):
        from tfllm.serving.export import ExportError, load_saved_model

        self.module, self.path = load_saved_model(model_dir)
        if not hasattr(self.module, "tag_names") or not hasattr(self.module, "tag_words"):
            raise ExportError(f"{self.path}: this SavedModel is not a tfllm tagger (it has no tag_names)")
        self.tags = [tag.decode("utf-8") for tag in self.module.tag_names.numpy().tolist()]
        self.metadata = json.loads(self.module.metadata.numpy().decode("utf-8"))
        self.signature = self.module.signatures[signatures.SERVING_DEFAULT]


def tag_sentences(tagger, sentences, batch_size=128):
    """IOB2 tags of pre-split sentences (lists of words) by a `TaggerExport` or `LoadedTagger`."""
    module = getattr(tagger, "module", tagger)
    tags = getattr(tagger, "tags", None) or module.tags
    out = []
    for begin in range(0, len(sentences), batch_size):
        batch = sentences[begin : begin + batch_size]
        words = tf.RaggedTensor.from_row_lengths(
            tf.constant([word for words in batch for word in words], tf.string, shape=[sum(map(len, batch))]),
            tf.constant([len(words) for words in batch], tf.int64),
        )
        out.extend([tags[i] for i in row] for row in module.tag_words(words).to_list())
    return out


def entity_records(tagger, texts, batch_size=128):
    """Per text, a list of `{"text", "type", "start", "end", "score"}` from the serving signature."""
    call = tagger.signature if hasattr(tagger, "signature") else tagger
    records = []
    for begin in range(0, len(texts), batch_size):
        batch = tf.constant(texts[begin : begin + batch_size], tf.string)
        outputs = call(**{signatures.TEXT: batch}) if hasattr(tagger, "signature") else call(batch)
        outputs = {key: value.numpy() for key, value in outputs.items()}
        for row, count in enumerate(outputs[signatures.ENTITY_COUNT]):
            records.append([
                {
                    "text": outputs[signatures.ENTITY_TEXT][row, i].decode("utf-8"),
                    "type": outputs[signatures.ENTITY_TYPE][row, i].decode("utf-8"),
                    "start": int(outputs[signatures.ENTITY_START][row, i]),
                    "end": int(outputs[signatures.ENTITY_END][row, i]),
                    "score": round(float(outputs[signatures.ENTITY_SCORE][row, i]), 4),
                }
                for i in range(int(count))
            ])
    return records

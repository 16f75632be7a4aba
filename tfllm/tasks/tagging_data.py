"""Tagged sentences from CoNLL files or entity tables, and their bucketed `tf.data` batches."""

import bisect

import numpy as np

# Sentence lengths (words) the batches are padded to; longer ones form the last bucket.
BUCKETS = (8, 16, 24, 32, 48, 64)


def sentences_from_spans(texts, spans, source):
    """`TaggedSentences` of texts with character entity spans, split into words as the export splits them.

    A word is in an entity when its characters overlap the span.

    Raises:
        DataError: an entity that covers no word (only spaces), naming the row.
    """
    import tensorflow as tf

    from tfllm.data.conll import TaggedSentences
    from tfllm.data.errors import DataError
    from tfllm.text.words import split_words

    all_words, all_tags = [], []
    for begin in range(0, len(texts), 512):
        batch = texts[begin : begin + 512]
        words, starts, ends = split_words(tf.constant(batch, tf.string))
        for offset, (text, row_words, row_starts, row_ends) in enumerate(
            zip(batch, words.to_list(), starts.to_list(), ends.to_list())
        ):
            row = begin + offset + 1
            encoded = text.encode("utf-8")
            # Byte offsets -> character offsets.
            char_starts = [len(encoded[:b].decode("utf-8", "ignore")) for b in row_starts]
            char_ends = [len(encoded[:b].decode("utf-8", "ignore")) for b in row_ends]
            tags = ["O"] * len(row_words)
            for index, (start, end, kind) in enumerate(spans[begin + offset], start=1):
                covered = [i for i, (s, e) in enumerate(zip(char_starts, char_ends)) if s < end and e > start]
                if not covered:
                    raise DataError(f"entity {index} [{start}, {end}) covers no word", path=source, row=row)
                for position, i in enumerate(covered):
                    tags[i] = ("B-" if position == 0 else "I-") + kind
            all_words.append([word.decode("utf-8") for word in row_words])
            all_tags.append(tags)
    return TaggedSentences(all_words, all_tags, "IOB2", source)


def load_sentences(path, *, text_column="text", entities_column="entities", encoding="utf-8"):
    """`TaggedSentences` of a CoNLL file, or of a table (`.csv`, `.jsonl`, ...) of texts and entity spans."""
    from tfllm.data import conll

    if conll.is_table(path):
        texts, spans = conll.read_entity_table(path, text_column, entities_column, encoding=encoding)
        return sentences_from_spans(texts, spans, str(path))
    return conll.read_conll(path, encoding=encoding)


def split_sentences(sentences, val_fraction, seed):
    """A seeded random `(train, validation)` split of `TaggedSentences`."""
    if len(sentences) < 2:
        raise ValueError(f"Need at least 2 sentences to split. Received: {len(sentences)}")
    order = np.random.default_rng(seed).permutation(len(sentences))
    count = min(len(sentences) - 1, max(1, int(round(len(sentences) * val_fraction))))
    return sentences.subset(sorted(order[count:])), sentences.subset(sorted(order[:count]))


def tag_vocabulary(tag_lists):
    """`O` first, then `B-`/`I-` of every entity type seen, sorted by type."""
    types = sorted({tag[2:] for tags in tag_lists for tag in tags if tag != "O"})
    return ["O", *(f"{prefix}-{kind}" for kind in types for prefix in ("B", "I"))]


def encode_tags(sentences, tags, source):
    """Tag ids per sentence; a tag training never saw is a `DataError`."""
    from tfllm.data.errors import DataError

    index = {tag: i for i, tag in enumerate(tags)}
    encoded = []
    for number, sentence in enumerate(sentences.tags, start=1):
        try:
            encoded.append([index[tag] for tag in sentence])
        except KeyError as error:
            raise DataError(
                f"sentence {number}: tag {error.args[0]!r} is not one the model was trained on ({', '.join(tags)})",
                path=source,
            ) from None
    return encoded


def make_tagging_dataset(sentences, tag_ids, featurizer, *, batch_size, shuffle=True, seed=0):
    """Batches of `(featurizer(words), tag ids, weights)`, sentences bucketed by length.

    Padding words carry tag 0 and weight 0, so they add nothing to the loss.
    """
    import tensorflow as tf

    lengths = [len(words) for words in sentences.words]
    buckets = [bisect.bisect_left(BUCKETS, length) for length in lengths]
    order = np.argsort(buckets, kind="stable")
    batches = []
    for bucket in sorted(set(buckets)):
        rows = order[np.asarray(buckets)[order] == bucket]
        if shuffle:
            rows = np.random.default_rng(seed + bucket).permutation(rows)
        batches.extend(rows[i : i + batch_size] for i in range(0, len(rows), batch_size))
    if shuffle:
        batches = [batches[i] for i in np.random.default_rng(seed).permutation(len(batches))]

    def ragged(values, rows, dtype):
        flat = [value for row in rows for value in values[row]]
        return tf.RaggedTensor.from_row_lengths(
            tf.constant(flat, dtype, shape=[len(flat)]), [len(values[row]) for row in rows]
        )

    def batch_tensors(rows):
        words = ragged(sentences.words, rows, tf.string)
        features = featurizer(words)
        width = tf.maximum(tf.cast(tf.reduce_max(words.row_lengths()), tf.int32), 1)  # As featurizers pad.
        tags = ragged(tag_ids, rows, tf.int32).to_tensor(0, shape=[len(rows), None])
        tags = tf.pad(tags, [[0, 0], [0, width - tf.shape(tags)[1]]])
        weights = tf.cast(tf.sequence_mask(words.row_lengths(), width), tf.float32)
        return features, tags, weights

    prepared = [batch_tensors(rows) for rows in batches]
    signature = tuple(tf.nest.map_structure(lambda t: tf.TensorSpec([None] * t.shape.rank, t.dtype), prepared[0]))
    dataset = tf.data.Dataset.from_generator(lambda: iter(prepared), output_signature=signature)
    if shuffle:
        dataset = dataset.shuffle(len(prepared), seed=seed, reshuffle_each_iteration=True)
    return dataset.apply(tf.data.experimental.assert_cardinality(len(prepared))).prefetch(2)


def entity_f1_callback(val_data, tags):
    """A callback that adds `val_entity_f1` (seqeval micro F1 on `val_data`, tags decoded as the
    export decodes them) to each epoch's logs.

    Early stopping and the best checkpoint follow it (`runs.run_callbacks(monitor=...)`):
    validation loss keeps falling for a while after entity F1 stops rising,
    and rises while F1 still climbs.
    """
    import keras
    import numpy as np

    from tfllm.metrics.entities import entity_report
    from tfllm.tasks.tagger_export import constrained_decode

    class EntityF1(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            truth, predicted = [], []
            for features, tag_ids, weights in val_data:
                lengths = weights.numpy().sum(axis=1).astype(np.int64)
                best = constrained_decode(self.model(features, training=False), lengths, tags).numpy()
                gold = tag_ids.numpy()
                for row, length in enumerate(lengths):
                    truth.append([tags[i] for i in gold[row, :length]])
                    predicted.append([tags[i] for i in best[row, :length]])
            if logs is not None:
                logs["val_entity_f1"] = entity_report(truth, predicted)["f1"]

    return EntityF1()

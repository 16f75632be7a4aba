"""tf.data pipelines: in-graph tokenization, truncation, length bucketing.

Padding every batch to a fixed length wastes most of the compute on short
texts; padding every batch to its own longest text gives a new shape per
batch, which retraces `tf.function`s and recompiles XLA. Bucketing by length
and padding to a few fixed bucket lengths gets both: little padding and a
handful of shapes.
"""

import logging

import numpy as np
import pandas as pd
import tensorflow as tf

logger = logging.getLogger("tfllm.data")

_TOKENIZE_BATCH = 512
AUTO_BUCKETS = 8
AUTO_SEQ2SEQ_BUCKETS = 4
BUCKET_MULTIPLE = 8


def _as_texts(texts, name):
    if isinstance(texts, (pd.Series, pd.Index)):
        texts = texts.to_numpy()
    if isinstance(texts, (str, bytes)):
        raise ValueError(f"`{name}` must be a sequence of strings, not a single string")
    texts = list(texts)
    if not texts:
        raise ValueError(f"`{name}` is empty")
    for index, text in enumerate(texts):
        if not isinstance(text, (str, bytes)):
            raise ValueError(
                f"`{name}` must hold strings; item {index} is "
                f"{type(text).__name__}: {text!r}"
            )
    return tf.constant(texts, dtype=tf.string)


def _as_labels(labels, count):
    if isinstance(labels, (pd.Series, pd.Index)):
        labels = labels.to_numpy()
    labels = np.asarray(labels)
    if len(labels) != count:
        raise ValueError(f"Got {count} texts but {len(labels)} labels")
    if labels.dtype.kind in "iub":
        return labels.astype(np.int32)
    if labels.dtype.kind == "f":
        return labels.astype(np.float32)
    raise ValueError(
        f"Labels must be numeric class ids (encode string labels with "
        f"tfllm.data.LabelVocabulary first). Received dtype: {labels.dtype}"
    )


def _tokenize(tokenizer, texts):
    """Tokenizes a batch of strings into a ragged int32 tensor (batch, None)."""
    ids = tokenizer(texts)
    if not isinstance(ids, tf.RaggedTensor):
        ids = tf.convert_to_tensor(ids)
        if ids.shape.rank != 2:
            raise ValueError(
                "The tokenizer must map a batch of strings to a (batch, length) "
                f"tensor. Received shape: {ids.shape}"
            )
        # Dense tokenizer output (TextVectorization) is right-padded with 0.
        ids = tf.RaggedTensor.from_tensor(ids, padding=tf.cast(0, ids.dtype))
    if ids.ragged_rank != 1 or ids.shape.rank != 2:
        raise ValueError(
            f"The tokenizer must give one id sequence per string. Received shape: {ids.shape}"
        )
    return tf.cast(ids, tf.int32)


def sequence_lengths(texts, tokenizer):
    """Returns the token count of every text (int64 array), tokenizing in tf.data."""
    texts = texts if isinstance(texts, tf.Tensor) else _as_texts(texts, "texts")
    lengths = (
        tf.data.Dataset.from_tensor_slices(texts)
        .batch(_TOKENIZE_BATCH)
        .map(
            lambda batch: _tokenize(tokenizer, batch).row_lengths(),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    )
    return np.concatenate([chunk.numpy() for chunk in lengths]).astype(np.int64)


def _round_up(value, multiple):
    return int(-(-int(value) // multiple) * multiple)


def auto_bucket_boundaries(lengths, max_length=None, num_buckets=AUTO_BUCKETS, multiple=BUCKET_MULTIPLE):
    """Picks bucket lengths that minimise padding for a length distribution.

    Bucket lengths are multiples of `multiple` (plus `max_length` itself), and
    at most `num_buckets` of them are chosen by dynamic programming to give
    the fewest padded tokens when each sequence is padded to the smallest
    bucket length that holds it.

    Args:
        lengths: token counts of the sequences (before truncation).
        max_length: truncation length; the largest bucket never exceeds it.
        num_buckets: the most buckets (distinct padded shapes) to use.
        multiple: bucket lengths are rounded to this (hardware-friendly tiles).

    Returns:
        Ascending list of padded lengths; the last one holds every sequence.
    """
    if num_buckets < 1:
        raise ValueError(f"`num_buckets` must be >= 1. Received: num_buckets={num_buckets}")
    lengths = np.asarray(lengths, dtype=np.int64)
    if max_length is not None:
        lengths = np.minimum(lengths, max_length)
    longest = max(int(lengths.max()) if len(lengths) else 1, 1)
    top = _round_up(longest, multiple)
    if max_length is not None:
        top = min(top, int(max_length))
    candidates = np.array(sorted(set(range(multiple, top, multiple)) | {top}), dtype=np.int64)
    # cumulative[j]: sequences that fit in candidates[j - 1] (length <= it).
    cumulative = np.concatenate([[0], np.searchsorted(np.sort(lengths), candidates, side="right")])
    m = len(candidates)
    # cost[i, j]: padded tokens of one bucket taking the sequences that fit in
    # candidates[j - 1] but not in candidates[i - 1] (i < j).
    i = np.arange(m + 1)[:, None]
    j = np.arange(m + 1)[None, :]
    top_of = candidates[np.maximum(j - 1, 0)]
    cost = np.where(i < j, (cumulative[j] - cumulative[i]) * top_of, np.inf)
    levels = min(int(num_buckets), m)
    best = np.full((levels + 1, m + 1), np.inf)
    best[0, 0] = 0.0
    parent = np.zeros((levels + 1, m + 1), dtype=np.int64)
    for k in range(1, levels + 1):
        total = best[k - 1][:, None] + cost
        parent[k] = np.argmin(total, axis=0)
        best[k] = total[parent[k], np.arange(m + 1)]
    k = int(np.argmin(best[1:, m])) + 1  # fewest buckets reaching the least padding
    tops, end = [], m
    while k > 0:
        start = int(parent[k, end])
        if cumulative[end] > cumulative[start] or end == m:
            tops.append(int(candidates[end - 1]))
        end, k = start, k - 1
    return sorted(tops)


def _resolve_boundaries(bucket_boundaries, lengths, max_length, num_auto):
    if bucket_boundaries is None:
        return None
    if isinstance(bucket_boundaries, str):
        if bucket_boundaries != "auto":
            raise ValueError(
                "`bucket_boundaries` must be 'auto', an int, a list of lengths or None. "
                f"Received: bucket_boundaries={bucket_boundaries!r}"
            )
        return auto_bucket_boundaries(lengths, max_length, num_auto)
    if isinstance(bucket_boundaries, (int, np.integer)):
        return auto_bucket_boundaries(lengths, max_length, int(bucket_boundaries))
    boundaries = sorted({int(b) for b in bucket_boundaries})
    if not boundaries or boundaries[0] < 1:
        raise ValueError(
            f"Bucket lengths must be positive. Received: bucket_boundaries={bucket_boundaries}"
        )
    longest = int(lengths.max()) if len(lengths) else 1
    cap = max_length if max_length is not None else _round_up(longest, BUCKET_MULTIPLE)
    boundaries = [b for b in boundaries if b < cap]
    if max_length is not None or longest > (boundaries[-1] if boundaries else 0):
        boundaries.append(cap)
    return boundaries


def _report_truncation(lengths, max_length, what):
    if max_length is None:
        return
    truncated = int(np.sum(lengths > max_length))
    share = 100.0 * truncated / max(len(lengths), 1)
    log = logger.warning if truncated else logger.info
    log(
        "%d of %d %s (%.1f%%) are longer than %d tokens and were truncated",
        truncated,
        len(lengths),
        what,
        share,
        max_length,
    )


def _batch_count(bucket_ids, batch_size, drop_remainder):
    """Batches an epoch yields when examples are batched per bucket id."""
    counts = np.bincount(np.asarray(bucket_ids, dtype=np.int64)) if len(bucket_ids) else []
    rounding = np.floor if drop_remainder else np.ceil
    return int(sum(rounding(count / batch_size) for count in counts))


def _with_cardinality(dataset, batches):
    # Bucketing hides the epoch length from tf.data; stating it lets Keras show
    # a complete progress bar and know its steps per epoch from the first epoch.
    return dataset.apply(tf.data.experimental.assert_cardinality(batches))


def _check_common(batch_size, max_length, name="max_length"):
    if int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be >= 1. Received: batch_size={batch_size}")
    if max_length is not None and int(max_length) < 1:
        raise ValueError(f"`{name}` must be >= 1 or None. Received: {name}={max_length}")


def _finish(dataset, cache, shuffle, count, seed):
    if cache:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    return dataset


def make_dataset(
    texts,
    labels=None,
    *,
    tokenizer,
    batch_size=32,
    max_length=256,
    bucket_boundaries="auto",
    shuffle=True,
    seed=0,
    cache=True,
    drop_remainder=False,
):
    """Builds a bucketed `tf.data.Dataset` of token ids from raw texts.

    Texts are tokenized inside the pipeline (in batches, in parallel),
    truncated to `max_length` tokens (the number of truncated texts is logged
    once), cached, shuffled with `seed`, grouped by length with
    `Dataset.bucket_by_sequence_length` and right-padded with 0 to their
    bucket's length, so batches take only a few shapes.

    Args:
        texts: a sequence of strings (list, array, pandas Series).
        labels: numeric labels (class ids from `LabelVocabulary.encode`, or
            floats), one per text; None for unlabelled data.
        tokenizer: a callable mapping a batch of strings to int ids, ragged or
            dense right-padded with 0: a keras_hub `WordPieceTokenizer`,
            `keras.layers.TextVectorization`, or tfllm's tokenizers.
        batch_size: examples per batch.
        max_length: truncate token sequences to this length (None: never).
        bucket_boundaries: "auto" (up to 8 bucket lengths chosen to minimise
            padding on these texts), an int (that many auto buckets), a list
            of padded lengths (`max_length` is added as the last), or None (no
            bucketing: each batch is padded to its longest sequence).
        shuffle: shuffle examples every epoch (seeded).
        seed: shuffle seed.
        cache: keep tokenized examples in memory after the first epoch.
        drop_remainder: drop each bucket's last partial batch.

    Returns:
        A dataset of `(token_ids, labels)` with token_ids int32
        `(batch, bucket_length)`, or of `token_ids` alone when labels is None.
        `token_ids` equal to 0 are padding.

    Example:
        >>> ds = make_dataset(frame.text, vocab.encode(frame.label),
        ...                   tokenizer=make_wordpiece_tokenizer(wordpieces))
        >>> model.fit(ds, epochs=3)
    """
    _check_common(batch_size, max_length)
    text_tensor = _as_texts(texts, "texts")
    count = int(text_tensor.shape[0])
    lengths = sequence_lengths(text_tensor, tokenizer)
    _report_truncation(lengths, max_length, "texts")
    boundaries = _resolve_boundaries(bucket_boundaries, lengths, max_length, AUTO_BUCKETS)

    def tokenize(batch, *rest):
        ids = _tokenize(tokenizer, batch)
        if max_length is not None:
            ids = ids[:, :max_length]
        return (ids, *rest)

    if labels is None:
        dataset = tf.data.Dataset.from_tensor_slices((text_tensor,))
    else:
        dataset = tf.data.Dataset.from_tensor_slices((text_tensor, _as_labels(labels, count)))
    dataset = dataset.batch(_TOKENIZE_BATCH).map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)
    # Unbatched ragged rows have a rank-0 RaggedTensorSpec; identity makes them
    # plain tensors, which padded batching requires.
    if labels is None:
        dataset = dataset.unbatch().map(lambda ids: tf.identity(ids))
    else:
        dataset = dataset.unbatch().map(lambda ids, label: (tf.identity(ids), label))
    dataset = _finish(dataset, cache, shuffle, count, seed)
    clipped = lengths if max_length is None else np.minimum(lengths, max_length)
    if boundaries is None:
        dataset = dataset.padded_batch(batch_size, drop_remainder=drop_remainder)
        bucket_ids = np.zeros(count, dtype=np.int64)
    else:
        bucket_ids = np.searchsorted(boundaries, clipped, side="left")
        # bucket_by_sequence_length pads to (boundary - 1): pass lengths + 1 so
        # batches are padded to exactly the chosen lengths; the extra last
        # bucket stays empty because sequences are at most boundaries[-1] long.
        dataset = dataset.bucket_by_sequence_length(
            element_length_func=lambda ids, *rest: tf.shape(ids)[0],
            bucket_boundaries=[b + 1 for b in boundaries],
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
            pad_to_bucket_boundary=True,
            drop_remainder=drop_remainder,
        )
    dataset = _with_cardinality(dataset, _batch_count(bucket_ids, batch_size, drop_remainder))
    return dataset.prefetch(tf.data.AUTOTUNE)


def _token_id(tokenizer, token, given, name):
    if given is not None:
        return int(given)
    to_id = getattr(tokenizer, "token_to_id", None)
    if to_id is None:
        raise ValueError(
            f"Pass `{name}`: the target tokenizer has no token_to_id() to look up {token!r}"
        )
    try:
        return int(to_id(token))
    except (KeyError, ValueError):
        raise ValueError(
            f"The target vocabulary has no {token!r} token; pass `{name}` explicitly"
        ) from None


def make_seq2seq_dataset(
    sources,
    targets,
    *,
    tokenizer,
    target_tokenizer=None,
    batch_size=32,
    max_source_length=256,
    max_target_length=128,
    start_id=None,
    end_id=None,
    bucket_boundaries="auto",
    shuffle=True,
    seed=0,
    cache=True,
    drop_remainder=False,
):
    """Builds a bucketed dataset for teacher-forced sequence-to-sequence training.

    Each example becomes, with `s` the source ids (truncated to
    `max_source_length`) and `t` the target ids (truncated to
    `max_target_length - 1` to leave room for the start/end token):

        encoder_token_ids = s
        decoder_token_ids = [start_id] + t
        target_ids        = t + [end_id]

    so `target_ids[i]` is the token the decoder must predict after reading
    `decoder_token_ids[: i + 1]`. Examples are grouped by (source bucket,
    target bucket) and right-padded with 0 to the bucket lengths, so a batch
    has one of at most 4 x 4 shapes with "auto". Padding is 0 in all three
    tensors: mask the loss with
    `keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)`.

    Args:
        sources: source strings (dialogue context, document, English text).
        targets: target strings (response, summary, translation).
        tokenizer: tokenizer for the sources, and for the targets unless
            `target_tokenizer` is given (shared vocabulary).
        target_tokenizer: a separate tokenizer for the targets (translation).
        batch_size: examples per batch.
        max_source_length: source truncation length (None: never).
        max_target_length: length of decoder inputs and labels, start/end
            token included (>= 2).
        start_id: id of the start token; default: the target tokenizer's
            `token_to_id("[START]")`.
        end_id: id of the end token; default: `token_to_id("[END]")`.
        bucket_boundaries: "auto" (up to 4 lengths per side), a pair
            `(source_lengths, target_lengths)` of padded-length lists, or None
            (each batch padded to its longest sequences).
        shuffle, seed, cache, drop_remainder: as in `make_dataset`.

    Returns:
        A dataset of `({"encoder_token_ids": int32 (batch, source_len),
        "decoder_token_ids": int32 (batch, target_len)}, target_ids int32
        (batch, target_len))`.
    """
    _check_common(batch_size, max_source_length, "max_source_length")
    if max_target_length is None or int(max_target_length) < 2:
        raise ValueError(
            f"`max_target_length` must be >= 2. Received: max_target_length={max_target_length}"
        )
    target_tokenizer = target_tokenizer or tokenizer
    start_id = _token_id(target_tokenizer, "[START]", start_id, "start_id")
    end_id = _token_id(target_tokenizer, "[END]", end_id, "end_id")
    source_tensor = _as_texts(sources, "sources")
    target_tensor = _as_texts(targets, "targets")
    count = int(source_tensor.shape[0])
    if int(target_tensor.shape[0]) != count:
        raise ValueError(f"Got {count} sources but {int(target_tensor.shape[0])} targets")
    target_room = int(max_target_length) - 1

    source_lengths = sequence_lengths(source_tensor, tokenizer)
    target_lengths = sequence_lengths(target_tensor, target_tokenizer)
    _report_truncation(source_lengths, max_source_length, "sources")
    _report_truncation(target_lengths, target_room, "targets")
    if bucket_boundaries is None:
        source_bounds = target_bounds = None
    elif isinstance(bucket_boundaries, str):
        source_bounds = _resolve_boundaries(
            bucket_boundaries, source_lengths, max_source_length, AUTO_SEQ2SEQ_BUCKETS
        )
        target_bounds = _resolve_boundaries(
            bucket_boundaries, np.minimum(target_lengths, target_room) + 1,
            int(max_target_length), AUTO_SEQ2SEQ_BUCKETS,
        )
    else:
        if not (
            isinstance(bucket_boundaries, (list, tuple))
            and len(bucket_boundaries) == 2
            and all(isinstance(side, (list, tuple)) for side in bucket_boundaries)
        ):
            raise ValueError(
                "`bucket_boundaries` must be 'auto', None or a pair (source_lengths, "
                f"target_lengths) of lists. Received: bucket_boundaries={bucket_boundaries!r}"
            )
        source_given, target_given = bucket_boundaries
        source_bounds = _resolve_boundaries(
            source_given, source_lengths, max_source_length, AUTO_SEQ2SEQ_BUCKETS
        )
        target_bounds = _resolve_boundaries(
            target_given, np.minimum(target_lengths, target_room) + 1,
            int(max_target_length), AUTO_SEQ2SEQ_BUCKETS,
        )

    def tokenize(source, target):
        source_ids = _tokenize(tokenizer, source)
        if max_source_length is not None:
            source_ids = source_ids[:, :max_source_length]
        target_ids = _tokenize(target_tokenizer, target)[:, :target_room]
        rows = target_ids.nrows()
        start = tf.fill([rows, 1], tf.constant(start_id, tf.int32))
        end = tf.fill([rows, 1], tf.constant(end_id, tf.int32))
        decoder = tf.concat([start, target_ids], axis=1)
        labels = tf.concat([target_ids, end], axis=1)
        return source_ids, decoder, labels

    dataset = (
        tf.data.Dataset.from_tensor_slices((source_tensor, target_tensor))
        .batch(_TOKENIZE_BATCH)
        .map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
        .map(lambda *ids: tuple(tf.identity(part) for part in ids))
    )
    dataset = _finish(dataset, cache, shuffle, count, seed)

    def structure(source_ids, decoder, labels):
        return {"encoder_token_ids": source_ids, "decoder_token_ids": decoder}, labels

    if source_bounds is None:
        dataset = dataset.padded_batch(batch_size, drop_remainder=drop_remainder)
        dataset = _with_cardinality(
            dataset, _batch_count(np.zeros(count, np.int64), batch_size, drop_remainder)
        )
        return dataset.map(structure).prefetch(tf.data.AUTOTUNE)

    source_table = tf.constant(source_bounds, tf.int64)
    target_table = tf.constant(target_bounds, tf.int64)
    target_buckets = len(target_bounds)

    def key(source_ids, decoder, labels):
        # Index of the smallest bucket length that holds the sequence.
        source_bucket = tf.reduce_sum(
            tf.cast(tf.cast(tf.shape(source_ids)[0], tf.int64) > source_table, tf.int64)
        )
        target_bucket = tf.reduce_sum(
            tf.cast(tf.cast(tf.shape(decoder)[0], tf.int64) > target_table, tf.int64)
        )
        return source_bucket * target_buckets + target_bucket

    def reduce(bucket, window):
        source_len = tf.gather(source_table, bucket // target_buckets)
        target_len = tf.gather(target_table, bucket % target_buckets)
        return window.padded_batch(
            batch_size,
            padded_shapes=(
                tf.reshape(source_len, [1]),
                tf.reshape(target_len, [1]),
                tf.reshape(target_len, [1]),
            ),
            drop_remainder=drop_remainder,
        )

    dataset = dataset.group_by_window(key, reduce, window_size=batch_size)
    clipped_source = source_lengths if max_source_length is None else np.minimum(
        source_lengths, max_source_length
    )
    bucket_ids = (
        np.searchsorted(source_bounds, clipped_source, side="left") * target_buckets
        + np.searchsorted(target_bounds, np.minimum(target_lengths, target_room) + 1, side="left")
    )
    dataset = _with_cardinality(dataset, _batch_count(bucket_ids, batch_size, drop_remainder))
    return dataset.map(structure).prefetch(tf.data.AUTOTUNE)

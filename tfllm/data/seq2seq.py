"""Sequence-to-sequence pipelines: source/target pairs to teacher-forced, bucketed batches."""

import numpy as np
import tensorflow as tf

from tfllm.data.buckets import (
    AUTO_SEQ2SEQ_BUCKETS,
    batch_count,
    resolve_boundaries,
    with_cardinality,
)
from tfllm.data.pipeline import (
    TOKENIZE_BATCH,
    as_texts,
    cache_and_shuffle,
    check_common,
    report_truncation,
    sequence_lengths,
    tokenize_ids,
)


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
    check_common(batch_size, max_source_length, "max_source_length")
    if max_target_length is None or int(max_target_length) < 2:
        raise ValueError(
            f"`max_target_length` must be >= 2. Received: max_target_length={max_target_length}"
        )
    target_tokenizer = target_tokenizer or tokenizer
    start_id = _token_id(target_tokenizer, "[START]", start_id, "start_id")
    end_id = _token_id(target_tokenizer, "[END]", end_id, "end_id")
    source_tensor = as_texts(sources, "sources")
    target_tensor = as_texts(targets, "targets")
    count = int(source_tensor.shape[0])
    if int(target_tensor.shape[0]) != count:
        raise ValueError(f"Got {count} sources but {int(target_tensor.shape[0])} targets")
    target_room = int(max_target_length) - 1

    source_lengths = sequence_lengths(source_tensor, tokenizer)
    target_lengths = sequence_lengths(target_tensor, target_tokenizer)
    report_truncation(source_lengths, max_source_length, "sources")
    report_truncation(target_lengths, target_room, "targets")
    if bucket_boundaries is None:
        source_bounds = target_bounds = None
    elif isinstance(bucket_boundaries, str):
        source_bounds = resolve_boundaries(
            bucket_boundaries, source_lengths, max_source_length, AUTO_SEQ2SEQ_BUCKETS
        )
        target_bounds = resolve_boundaries(
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
        source_bounds = resolve_boundaries(
            source_given, source_lengths, max_source_length, AUTO_SEQ2SEQ_BUCKETS
        )
        target_bounds = resolve_boundaries(
            target_given, np.minimum(target_lengths, target_room) + 1,
            int(max_target_length), AUTO_SEQ2SEQ_BUCKETS,
        )

    def tokenize(source, target):
        source_ids = tokenize_ids(tokenizer, source)
        if max_source_length is not None:
            source_ids = source_ids[:, :max_source_length]
        target_ids = tokenize_ids(target_tokenizer, target)[:, :target_room]
        rows = target_ids.nrows()
        start = tf.fill([rows, 1], tf.constant(start_id, tf.int32))
        end = tf.fill([rows, 1], tf.constant(end_id, tf.int32))
        decoder = tf.concat([start, target_ids], axis=1)
        labels = tf.concat([target_ids, end], axis=1)
        return source_ids, decoder, labels

    dataset = (
        tf.data.Dataset.from_tensor_slices((source_tensor, target_tensor))
        .batch(TOKENIZE_BATCH)
        .map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
        .map(lambda *ids: tuple(tf.identity(part) for part in ids))
    )
    dataset = cache_and_shuffle(dataset, cache, shuffle, count, seed)

    def structure(source_ids, decoder, labels):
        return {"encoder_token_ids": source_ids, "decoder_token_ids": decoder}, labels

    if source_bounds is None:
        dataset = dataset.padded_batch(batch_size, drop_remainder=drop_remainder)
        dataset = with_cardinality(
            dataset, batch_count(np.zeros(count, np.int64), batch_size, drop_remainder)
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
    dataset = with_cardinality(dataset, batch_count(bucket_ids, batch_size, drop_remainder))
    return dataset.map(structure).prefetch(tf.data.AUTOTUNE)

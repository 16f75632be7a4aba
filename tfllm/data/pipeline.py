"""Classification pipelines: raw texts to bucketed, padded batches of token ids.

Texts are tokenized inside tf.data, so the same tokenizer layer can later sit
inside the exported model; see `buckets.py` for why batches are bucketed.
"""

import logging

import numpy as np
import pandas as pd
import tensorflow as tf

from tfllm.data.buckets import (
    AUTO_BUCKETS,
    batch_count,
    resolve_boundaries,
    with_cardinality,
)

logger = logging.getLogger("tfllm.data")

TOKENIZE_BATCH = 512


def as_texts(texts, name):
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


def tokenize_ids(tokenizer, texts):
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
    texts = texts if isinstance(texts, tf.Tensor) else as_texts(texts, "texts")
    lengths = (
        tf.data.Dataset.from_tensor_slices(texts)
        .batch(TOKENIZE_BATCH)
        .map(
            lambda batch: tokenize_ids(tokenizer, batch).row_lengths(),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    )
    return np.concatenate([chunk.numpy() for chunk in lengths]).astype(np.int64)


def report_truncation(lengths, max_length, what):
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


def check_common(batch_size, max_length, name="max_length"):
    if int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be >= 1. Received: batch_size={batch_size}")
    if max_length is not None and int(max_length) < 1:
        raise ValueError(f"`{name}` must be >= 1 or None. Received: {name}={max_length}")


def cache_and_shuffle(dataset, cache, shuffle, count, seed):
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
    check_common(batch_size, max_length)
    text_tensor = as_texts(texts, "texts")
    count = int(text_tensor.shape[0])
    lengths = sequence_lengths(text_tensor, tokenizer)
    report_truncation(lengths, max_length, "texts")
    boundaries = resolve_boundaries(bucket_boundaries, lengths, max_length, AUTO_BUCKETS)

    def tokenize(batch, *rest):
        ids = tokenize_ids(tokenizer, batch)
        if max_length is not None:
            ids = ids[:, :max_length]
        return (ids, *rest)

    if labels is None:
        dataset = tf.data.Dataset.from_tensor_slices((text_tensor,))
    else:
        dataset = tf.data.Dataset.from_tensor_slices((text_tensor, _as_labels(labels, count)))
    dataset = dataset.batch(TOKENIZE_BATCH).map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)
    # Unbatched ragged rows have a rank-0 RaggedTensorSpec; identity makes them
    # plain tensors, which padded batching requires.
    if labels is None:
        dataset = dataset.unbatch().map(lambda ids: tf.identity(ids))
    else:
        dataset = dataset.unbatch().map(lambda ids, label: (tf.identity(ids), label))
    dataset = cache_and_shuffle(dataset, cache, shuffle, count, seed)
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
    dataset = with_cardinality(dataset, batch_count(bucket_ids, batch_size, drop_remainder))
    return dataset.prefetch(tf.data.AUTOTUNE)

"""Length bucketing: which padded lengths to use, and how many batches they give.

Padding every batch to a fixed length wastes most of the compute on short
texts; padding every batch to its own longest text gives a new shape per
batch, which retraces `tf.function`s and recompiles XLA. Bucketing by length
and padding to a few fixed bucket lengths gets both: little padding and a
handful of shapes.
"""

import numpy as np
import tensorflow as tf

AUTO_BUCKETS = 8
AUTO_SEQ2SEQ_BUCKETS = 4
BUCKET_MULTIPLE = 8


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


def resolve_boundaries(bucket_boundaries, lengths, max_length, num_auto):
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


def batch_count(bucket_ids, batch_size, drop_remainder):
    """Batches an epoch yields when examples are batched per bucket id."""
    counts = np.bincount(np.asarray(bucket_ids, dtype=np.int64)) if len(bucket_ids) else []
    rounding = np.floor if drop_remainder else np.ceil
    return int(sum(rounding(count / batch_size) for count in counts))


def with_cardinality(dataset, batches):
    # Bucketing hides the epoch length from tf.data; stating it lets Keras show
    # a complete progress bar and know its steps per epoch from the first epoch.
    return dataset.apply(tf.data.experimental.assert_cardinality(batches))

"""Padding prompts to a few fixed shapes, so compiled decoders are reused.

An XLA-compiled function is specialised to its input shapes. Padding the
batch and length axes up to powers of two bounds the number of compilations
by log2 of the largest shape instead of compiling once per distinct input.
"""

import numpy as np


def bucket(n, limit=None, minimum=8):
    """Returns the smallest power of two >= `n` (at least `minimum`), capped at `limit`."""
    size = max(int(minimum), 1)
    while size < n:
        size *= 2
    if limit is not None:
        size = min(size, int(limit))
    return size


def as_token_lists(token_ids, pad_token_id=0):
    """Converts prompts to a list of lists of ints.

    Accepts a list of lists, a ragged tensor, or a dense array/tensor whose
    trailing `pad_token_id` entries are padding.
    """
    if hasattr(token_ids, "to_list"):  # tf.RaggedTensor
        return [list(map(int, row)) for row in token_ids.to_list()]
    if hasattr(token_ids, "numpy"):
        token_ids = token_ids.numpy()
    if isinstance(token_ids, np.ndarray):
        if token_ids.ndim == 1:
            token_ids = token_ids[None, :]
        rows = []
        for row in token_ids.tolist():
            while row and row[-1] == pad_token_id:
                row.pop()
            rows.append(row)
        return rows
    rows = [list(map(int, row)) for row in token_ids]
    return rows


def pad_prompts(rows, length, pad_token_id=0, batch_minimum=1):
    """Right-pads `rows` into a (bucketed batch, `length`) int32 array.

    Extra batch rows repeat the first prompt, so they never shorten the
    shortest prompt the decoder starts from; callers drop them afterwards.

    Returns:
        (tokens, lengths): int32 arrays (padded_batch, length) and (padded_batch,).
    """
    batch = bucket(len(rows), minimum=batch_minimum)
    rows = list(rows) + [rows[0]] * (batch - len(rows))
    tokens = np.full((batch, length), pad_token_id, dtype="int32")
    lengths = np.zeros((batch,), dtype="int32")
    for i, row in enumerate(rows):
        row = row[:length]
        tokens[i, : len(row)] = row
        lengths[i] = len(row)
    return tokens, lengths


def trim(tokens, lengths, batch_size, stop_token_ids=(), pad_token_id=0, skip_prompt=True):
    """Turns decoded (batch, length) tokens into lists, without padding or stop tokens."""
    out = []
    stops = set(stop_token_ids or ())
    for row, n in zip(np.asarray(tokens)[:batch_size].tolist(), lengths[:batch_size]):
        body = row[int(n):] if skip_prompt else row
        kept = []
        for i, token in enumerate(body):
            if token in stops and (skip_prompt or i >= n):
                break
            kept.append(token)
        while kept and kept[-1] == pad_token_id:
            kept.pop()
        out.append(kept)
    return out

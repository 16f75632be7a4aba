"""Repetition control on next-token logits: a repetition penalty and n-gram blocking.

Both read the tokens before `index` (prompt and generated tokens) row by row,
so in beam search they act per beam. They use gathers and `ops.scatter`
(`ScatterNd`), core ops that run in any TensorFlow runtime and under XLA.
"""

from keras import ops

# As decoding's impossible-logit value: finite so sums stay finite.
NEG_INF = -1e9


def token_counts(token_ids, weights, vocabulary_size):
    """(batch, vocabulary_size) float32: per row, the summed `weights` of each token id.

    Args:
        token_ids: int (batch, n) ids.
        weights: float (batch, n); 0 leaves an id uncounted.
        vocabulary_size: the number of columns.
    """
    batch_size, n = ops.shape(token_ids)[0], ops.shape(token_ids)[1]
    rows = ops.broadcast_to(ops.arange(batch_size, dtype="int32")[:, None], (batch_size, n))
    indices = ops.stack([rows, ops.cast(token_ids, "int32")], axis=-1)  # (batch, n, 2)
    return ops.scatter(
        ops.reshape(indices, (-1, 2)),
        ops.reshape(ops.cast(weights, "float32"), (-1,)),
        (batch_size, vocabulary_size),
    )


def penalize_repetitions(logits, tokens, index, penalty):
    """Divides (positive) or multiplies (negative) by `penalty` the logits of tokens before `index`.

    The repetition penalty of Keskar et al. (2019, CTRL) as in Hugging Face
    `generate`: every token already in the sequence counts once.
    """
    known = ops.arange(ops.shape(tokens)[1], dtype="int32")[None, :] < index
    known = ops.broadcast_to(known, ops.shape(tokens))
    seen = token_counts(tokens, ops.cast(known, "float32"), ops.shape(logits)[-1]) > 0
    penalized = ops.where(logits > 0, logits / penalty, logits * penalty)
    return ops.where(seen, ops.cast(penalized, logits.dtype), logits)


def block_repeated_ngrams(logits, tokens, index, n):
    """Sets to `NEG_INF` the logits of tokens that would complete an n-gram already before `index`.

    The n-gram's first n - 1 tokens are the last n - 1 before `index`; every
    earlier occurrence of them bans the token that followed it.
    """
    length = ops.shape(tokens)[1]
    # Window j covers tokens[:, j : j + n]; its last token sits at j + n - 1.
    windows = max(length - n + 1, 0) if isinstance(length, int) else ops.maximum(length - n + 1, 0)
    banned_tokens = tokens[:, n - 1 : n - 1 + windows]  # (batch, windows)
    starts = ops.arange(windows, dtype="int32")[None, :]
    match = starts + n - 1 < index  # The whole window was generated before index.
    for m in range(n - 1):
        # The token m places into the current (n - 1)-token prefix; index >= n
        # whenever some window is complete, so the clamp only guards the gather.
        current = ops.take(tokens, ops.maximum(index - n + 1 + m, 0), axis=1)
        match = ops.logical_and(match, ops.equal(tokens[:, m : m + windows], current[:, None]))
    banned = token_counts(banned_tokens, ops.cast(match, "float32"), ops.shape(logits)[-1]) > 0
    return ops.where(banned, ops.cast(NEG_INF, logits.dtype), logits)


def controlling_repetition(next, no_repeat_ngram_size=0, repetition_penalty=1.0):
    """`next` whose logits are penalized and n-gram blocked (or `next` itself when both are off)."""
    if not no_repeat_ngram_size and repetition_penalty == 1.0:
        return next

    def wrapped(tokens, cache, index, *context):
        logits, cache = next(tokens, cache, index, *context)
        if repetition_penalty != 1.0:
            logits = penalize_repetitions(logits, tokens, index, repetition_penalty)
        if no_repeat_ngram_size:
            logits = block_repeated_ngrams(logits, tokens, index, no_repeat_ngram_size)
        return logits, cache

    return wrapped

"""Autoregressive decoding loops over a `next(tokens, cache, index)` callable.

`next(tokens, cache, index)` returns `(logits, cache)`: the logits (batch,
vocab) for position `index` given `tokens[:, :index]`, and the updated cache.
`cache` is any nest of tensors whose leading axis is the batch (key/value
caches, recurrent states); beam search repeats and reorders it along that
axis. What `next` only reads (encoder outputs, cross-attention caches) goes in
`context` instead: `next(tokens, cache, index, context)`; beam search repeats
it once and never reorders it, as a beam's rows only ever come from its own
example. The loops are plain `keras.ops`, so they run eagerly, in a
`tf.function` and under XLA, and export into a SavedModel.
"""

import keras
import keras_hub
from keras import ops

from tfllm._ops import slice_update
from tfllm.generation.repetition import NEG_INF as _NEG_INF
from tfllm.generation.repetition import controlling_repetition
from tfllm.generation.samplers import ResolvedSampler, make_token_sampler, sampler_config


def decode(
    next,
    tokens,
    *,
    index,
    cache=(),
    context=None,
    mask=None,
    sampler="greedy",
    stop_token_ids=None,
    pad_token_id=0,
    max_length=None,
    suppress_token_ids=(),
):
    """Fills `tokens[:, index:]` autoregressively and returns the tokens.

    Args:
        next: callable `next(tokens, cache, index) -> (logits, cache)`.
        tokens: int tensor (batch, max_length): prompts, right padded.
        index: first position to generate (usually the shortest prompt's
            length). Positions where `mask` is True are kept, so prompts of
            different lengths decode in one batch exactly as one at a time.
        cache: nest of tensors with a leading batch axis, passed to `next`.
        context: optional nest of tensors with a leading batch axis that
            `next` reads but never changes; given, `next` is called as
            `next(tokens, cache, index, context)`.
        mask: bool tensor (batch, max_length), True on prompt tokens.
            Defaults to positions before `index`.
        sampler: a `SamplerConfig`, a strategy name, a config dict, a
            `ResolvedSampler`, or a `keras_hub.samplers.Sampler` (only its
            token choice is used; no repetition control). Random samplers
            hold a seed variable, so inside a `tf.function` pass one made
            outside it (`resolve_sampler`). The config's
            `no_repeat_ngram_size` and `repetition_penalty` act on the
            logits before any strategy (per beam in beam search).
        stop_token_ids: ids that end a sequence; later positions become
            `pad_token_id` and decoding stops once every sequence has ended.
        pad_token_id: id written after a sequence ends.
        max_length: optional int or scalar tensor; positions from it on stay
            `pad_token_id`. Lets one compiled loop over a padded length
            bucket serve every shorter `max_length`.
        suppress_token_ids: ids never generated (padding, the start id).

    Returns:
        int tensor (batch, max_length): prompts followed by generated tokens.
    """
    if isinstance(sampler, keras_hub.samplers.Sampler):
        config, token_sampler = None, sampler
    elif isinstance(sampler, ResolvedSampler):
        config, token_sampler = sampler.config, sampler.token_sampler
    else:
        config = sampler_config(sampler)
        token_sampler = None if config.strategy == "beam" else make_token_sampler(config)
    tokens = ops.convert_to_tensor(tokens)
    length = ops.shape(tokens)[1]
    max_length = length if max_length is None else ops.minimum(ops.cast(max_length, "int32"), length)
    index = ops.cast(index, "int32")
    positions = ops.arange(length, dtype="int32")[None, :]
    if mask is None:
        mask = ops.broadcast_to(positions < index, ops.shape(tokens))
    mask = ops.cast(mask, "bool")
    tokens = ops.where(mask, tokens, ops.cast(pad_token_id, tokens.dtype))
    stop_token_ids = tuple(stop_token_ids or ())
    suppress_token_ids = tuple(suppress_token_ids or ())
    if suppress_token_ids:
        next = _suppressing(next, suppress_token_ids)
    if config is not None:
        next = controlling_repetition(next, config.no_repeat_ngram_size, config.repetition_penalty)
    if token_sampler is None:
        return _beam_search(
            next, tokens, cache, context, index, mask, config, stop_token_ids, pad_token_id, max_length
        )
    return _sample(
        _with_context(next, context), tokens, cache, index, mask, token_sampler,
        stop_token_ids, pad_token_id, max_length,
    )


def _with_context(next, context):
    """`next` as a `(tokens, cache, index)` callable, `context` bound (a loop invariant)."""
    if context is None:
        return next
    return lambda tokens, cache, index: next(tokens, cache, index, context)


def _suppressing(next, token_ids):
    def wrapped(*args):
        logits, cache = next(*args)
        banned = ops.zeros((ops.shape(logits)[-1],), dtype="bool")
        for token_id in token_ids:
            banned = ops.logical_or(banned, ops.equal(ops.arange(ops.shape(logits)[-1]), token_id))
        return ops.where(banned[None, :], _NEG_INF, logits), cache

    return wrapped


def is_one_of(tokens, token_ids):
    """Boolean tensor: where `tokens` equals any of the (Python) `token_ids`."""
    hit = ops.zeros_like(tokens, dtype="bool")
    for token_id in token_ids:
        hit = ops.logical_or(hit, ops.equal(tokens, token_id))
    return hit


def _sample(
    next, tokens, cache, index, mask, token_sampler, stop_token_ids, pad_token_id, max_length
):
    batch_size = ops.shape(tokens)[0]
    finished = ops.zeros((batch_size,), dtype="bool")

    def cond(tokens, cache, index, finished):
        return ops.logical_not(ops.all(finished))

    def body(tokens, cache, index, finished):
        logits, cache = next(tokens, cache, index)
        probabilities = token_sampler.compute_probabilities(logits)
        token = ops.cast(token_sampler.get_next_token(probabilities), tokens.dtype)
        forced = mask[:, index]
        token = ops.where(finished, ops.cast(pad_token_id, tokens.dtype), token)
        token = ops.where(forced, tokens[:, index], token)
        finished = ops.logical_or(
            finished, ops.logical_and(ops.logical_not(forced), is_one_of(token, stop_token_ids))
        )
        tokens = slice_update(tokens, [0, index], token[:, None])
        return tokens, cache, index + 1, finished

    tokens, _, _, _ = ops.while_loop(
        cond,
        body,
        (tokens, cache, index, finished),
        maximum_iterations=ops.maximum(max_length - index, 0),
    )
    return tokens


def _beam_search(
    next, tokens, cache, context, index, mask, config, stop_token_ids, pad_token_id, max_length
):
    num_beams = config.num_beams
    batch_size = ops.shape(tokens)[0]

    def repeat(x):
        return ops.repeat(x, num_beams, axis=0)

    tokens, mask = repeat(tokens), repeat(mask)
    cache = keras.tree.map_structure(repeat, cache)
    if context is not None:
        next = _with_context(next, keras.tree.map_structure(repeat, context))
    # Only the first copy of each prompt is live at the start, so the first
    # step does not pick the same token num_beams times.
    scores = ops.convert_to_tensor([[0.0] + [_NEG_INF] * (num_beams - 1)], "float32")
    scores = ops.reshape(ops.broadcast_to(scores, (batch_size, num_beams)), (-1,))
    finished = ops.zeros((batch_size * num_beams,), dtype="bool")
    lengths = ops.zeros((batch_size * num_beams,), dtype="int32")
    # Row offsets that turn per-example beam indices into flat row indices.
    offsets = ops.arange(batch_size, dtype="int32")[:, None] * num_beams

    def cond(tokens, cache, index, scores, finished, lengths):
        return ops.logical_not(ops.all(finished))

    def body(tokens, cache, index, scores, finished, lengths):
        logits, cache = next(tokens, cache, index)
        vocab_size = ops.shape(logits)[-1]
        log_probs = ops.log_softmax(ops.cast(logits, "float32") / config.temperature, axis=-1)
        forced = mask[:, index]
        # A forced (prompt) position or a finished beam has exactly one
        # continuation, costing nothing: the prompt token or padding.
        only = ops.where(forced, ops.cast(tokens[:, index], "int32"), pad_token_id)
        one_hot = ops.one_hot(only, vocab_size, dtype="bool")
        pinned = ops.where(one_hot, 0.0, _NEG_INF)
        log_probs = ops.where(ops.logical_or(forced, finished)[:, None], pinned, log_probs)
        candidates = ops.reshape(scores[:, None] + log_probs, (-1, num_beams * vocab_size))
        # (batch, num_beams): best continuations over all beams of an example.
        top_scores, top_indices = ops.top_k(candidates, k=num_beams, sorted=True)
        rows = ops.reshape(top_indices // vocab_size + offsets, (-1,))
        token = ops.cast(ops.reshape(top_indices % vocab_size, (-1,)), tokens.dtype)

        def gather(x):
            return ops.take(x, rows, axis=0)

        tokens, cache = gather(tokens), keras.tree.map_structure(gather, cache)
        finished, lengths = gather(finished), gather(lengths)
        generated = ops.logical_not(ops.logical_or(finished, forced))
        lengths = lengths + ops.cast(generated, "int32")
        finished = ops.logical_or(
            finished, ops.logical_and(ops.logical_not(forced), is_one_of(token, stop_token_ids))
        )
        tokens = slice_update(tokens, [0, index], token[:, None])
        scores = ops.reshape(top_scores, (-1,))
        return tokens, cache, index + 1, scores, finished, lengths

    tokens, _, _, scores, _, lengths = ops.while_loop(
        cond,
        body,
        (tokens, cache, index, scores, finished, lengths),
        maximum_iterations=ops.maximum(max_length - index, 0),
    )
    normalizer = ops.power(ops.maximum(ops.cast(lengths, "float32"), 1.0), config.length_penalty)
    ranked = ops.reshape(scores / normalizer, (batch_size, num_beams))
    best = ops.argmax(ranked, axis=-1) + offsets[:, 0]
    return ops.take(tokens, best, axis=0)


def strip_after_stop(tokens, prompt_mask, stop_token_ids, pad_token_id=0):
    """Sets positions after the first generated stop token to `pad_token_id`.

    Useful for outputs of other decoders; `decode` already pads after stops.
    """
    tokens = ops.convert_to_tensor(tokens)
    generated_stop = ops.logical_and(
        is_one_of(tokens, tuple(stop_token_ids)), ops.logical_not(ops.cast(prompt_mask, "bool"))
    )
    seen = ops.cumsum(ops.cast(generated_stop, "int32"), axis=-1) - ops.cast(generated_stop, "int32")
    return ops.where(seen > 0, ops.cast(pad_token_id, tokens.dtype), tokens)

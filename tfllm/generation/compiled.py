"""One compiled decoding function per decoding setup, reused across calls."""

import tensorflow as tf

from tfllm.generation.samplers import resolve_sampler, sampler_config


def generation_options(strategy, sampler_options, stop_token_ids, end_token_id, max_length, limit, limit_name):
    """Checks a `generate()` call's options; returns `(sampler config, stop ids, max_length)`.

    Args:
        strategy, sampler_options: `sampler_config(strategy, **sampler_options)`.
        stop_token_ids: "auto" (`end_token_id`, if any), None, or ids.
        max_length: the requested length, or None for `limit`.
        limit, limit_name: the model's longest sequence and its name (for errors).

    Raises:
        ValueError: bad sampler options, or `max_length` outside `[2, limit]`.
    """
    config = sampler_config(strategy, **sampler_options)
    if stop_token_ids == "auto":
        stop_token_ids = () if end_token_id is None else (end_token_id,)
    stop_token_ids = tuple(int(i) for i in (stop_token_ids or ()))
    max_length = limit if max_length is None else int(max_length)
    if not 1 < max_length <= limit:
        raise ValueError(
            f"max_length must be in [2, {limit_name}={limit}]. Received: max_length={max_length}"
        )
    return config, stop_token_ids, max_length


class CompiledDecoders:
    """Caches `tf.function`s (optionally XLA-compiled) keyed by decoding setup.

    The key holds everything that changes the traced graph apart from input
    shapes (sampler config, stop ids, cache on/off); shapes are kept to a few
    buckets by `tfllm.generation.buckets`, so each function traces once per
    bucket.
    """

    def __init__(self):
        self._functions = {}

    def get(self, key, build, jit_compile=True):
        """Returns the function for `key`, creating it with `build()` the first time."""
        key = (key, bool(jit_compile))
        if key not in self._functions:
            self._functions[key] = tf.function(build(), jit_compile=bool(jit_compile))
        return self._functions[key]

    def decoder(self, step, config, stop_token_ids, use_cache, jit_compile=True):
        """The compiled `(a, b, max_length) -> tokens` function for one decoding setup.

        `step(a, b, max_length, sampler, stop_token_ids, use_cache)` is a
        model's `generate_step`; the sampler is resolved once, when the
        function is first built.
        """
        def build():
            sampler = resolve_sampler(config)
            return lambda a, b, max_length: step(a, b, max_length, sampler, stop_token_ids, use_cache)

        return self.get((config, stop_token_ids, bool(use_cache)), build, jit_compile=jit_compile)

    def tracing_count(self):
        """Total traces over all cached functions (each trace is one compilation)."""
        return sum(f.experimental_get_tracing_count() for f in self._functions.values())

    def clear(self):
        self._functions.clear()

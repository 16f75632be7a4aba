"""One compiled decoding function per decoding setup, reused across calls."""

import tensorflow as tf


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

    def tracing_count(self):
        """Total traces over all cached functions (each trace is one compilation)."""
        return sum(f.experimental_get_tracing_count() for f in self._functions.values())

    def clear(self):
        self._functions.clear()

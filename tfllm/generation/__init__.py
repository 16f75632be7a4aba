"""Decoding (greedy, beam, top-k, top-p, temperature) over a `next(tokens, cache, index)` callable."""

from tfllm.generation.buckets import as_token_lists, bucket, pad_prompts, trim
from tfllm.generation.compiled import CompiledDecoders
from tfllm.generation.decoding import decode, strip_after_stop
from tfllm.generation.samplers import (
    STRATEGIES,
    ResolvedSampler,
    SamplerConfig,
    make_token_sampler,
    resolve_sampler,
    sampler_config,
)

__all__ = [
    "STRATEGIES",
    "CompiledDecoders",
    "ResolvedSampler",
    "SamplerConfig",
    "as_token_lists",
    "bucket",
    "decode",
    "make_token_sampler",
    "pad_prompts",
    "resolve_sampler",
    "sampler_config",
    "strip_after_stop",
    "trim",
]

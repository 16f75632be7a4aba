"""Choosing the next token: greedy, top-k, top-p, temperature sampling and beam search.

Token selection for the single-sequence strategies is delegated to
`keras_hub.samplers` (their `compute_probabilities` / `get_next_token`); the
loop around them lives in `tfllm.generation.decoding`, which adds per-sequence
stop handling. Beam search has its own loop there because keras_hub's keeps
extending beams after they emit a stop token.
"""

import dataclasses

import keras_hub

STRATEGIES = ("greedy", "top_k", "top_p", "random", "beam")


@dataclasses.dataclass(frozen=True)
class SamplerConfig:
    """How to pick tokens; hashable, so compiled decoders can be cached per config.

    Args:
        strategy: one of "greedy", "top_k", "top_p", "random", "beam".
        k: number of candidates for "top_k" (and an optional cap for "top_p").
        p: cumulative probability kept by "top_p".
        temperature: logits are divided by it before the softmax.
        num_beams: beam width for "beam".
        length_penalty: beam hypotheses are ranked by
            `log_prob / length ** length_penalty` (0 ranks by raw log-prob).
        seed: seed for the random strategies.
        no_repeat_ngram_size: if n > 0, no n-gram of tokens occurs twice in
            a sequence (prompt included; per beam in beam search).
        repetition_penalty: logits of tokens already in the sequence are
            divided by it where positive and multiplied by it where negative
            (1 keeps them; above 1 discourages repeats).
    """

    strategy: str = "greedy"
    k: int = None
    p: float = None
    temperature: float = 1.0
    num_beams: int = 1
    length_penalty: float = 1.0
    seed: int = None
    no_repeat_ngram_size: int = 0
    repetition_penalty: float = 1.0

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"strategy must be one of {', '.join(STRATEGIES)}. "
                f"Received: strategy={self.strategy!r}"
            )
        if not self.temperature > 0:
            raise ValueError(
                f"temperature must be positive. Received: temperature={self.temperature}"
            )
        if self.no_repeat_ngram_size < 0:
            raise ValueError(
                "no_repeat_ngram_size must be >= 0. "
                f"Received: no_repeat_ngram_size={self.no_repeat_ngram_size}"
            )
        if not self.repetition_penalty > 0:
            raise ValueError(
                "repetition_penalty must be positive. "
                f"Received: repetition_penalty={self.repetition_penalty}"
            )
        if self.strategy == "top_k" and (self.k is None or self.k < 1):
            raise ValueError(f"top_k sampling needs k >= 1. Received: k={self.k}")
        if self.strategy == "top_p" and (self.p is None or not 0 < self.p <= 1):
            raise ValueError(f"top_p sampling needs 0 < p <= 1. Received: p={self.p}")
        if self.strategy == "beam" and self.num_beams < 1:
            raise ValueError(
                f"beam search needs num_beams >= 1. Received: num_beams={self.num_beams}"
            )


def sampler_config(strategy="greedy", **kwargs):
    """Returns a `SamplerConfig`, accepting one, a strategy name, or a config dict.

    Keyword arguments override the config's fields; None ones are ignored
    (callers pass every option, most of them unset).
    """
    kwargs = {name: value for name, value in kwargs.items() if value is not None}
    if isinstance(strategy, SamplerConfig):
        return dataclasses.replace(strategy, **kwargs) if kwargs else strategy
    if isinstance(strategy, dict):
        return SamplerConfig(**{**strategy, **kwargs})
    return SamplerConfig(strategy=strategy, **kwargs)


def make_token_sampler(config):
    """Returns the keras_hub sampler whose `get_next_token` implements `config`."""
    samplers = keras_hub.samplers
    t = config.temperature
    if config.strategy == "greedy":
        return samplers.GreedySampler(temperature=t)
    if config.strategy == "top_k":
        return samplers.TopKSampler(k=config.k, seed=config.seed, temperature=t)
    if config.strategy == "top_p":
        return samplers.TopPSampler(p=config.p, k=config.k, seed=config.seed, temperature=t)
    if config.strategy == "random":
        return samplers.RandomSampler(seed=config.seed, temperature=t)
    raise ValueError(f"{config.strategy!r} has no single-token sampler")


@dataclasses.dataclass(frozen=True, eq=False)
class ResolvedSampler:
    """A `SamplerConfig` with its keras_hub token sampler already made.

    Attributes:
        config: the `SamplerConfig` (repetition options, beam settings).
        token_sampler: the keras_hub sampler, or None for beam search.
    """

    config: SamplerConfig
    token_sampler: object = None

    @property
    def variables(self):
        """The token sampler's variables (a random sampler's seed)."""
        return list(getattr(self.token_sampler, "variables", []))


def resolve_sampler(config):
    """What `decode` should get inside a `tf.function`: the config with its
    keras_hub sampler created here, outside the trace, as it may own a seed
    variable (none for beam search)."""
    config = sampler_config(config)
    token_sampler = None if config.strategy == "beam" else make_token_sampler(config)
    return ResolvedSampler(config, token_sampler)

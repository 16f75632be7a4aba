"""Argument checks shared by layers and models; errors end with `Received: name=value`."""

import numbers


def check_positive_ints(**values):
    """Raises ValueError unless every value is an integer >= 1 (bools are not integers here)."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
            raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")


def check_rates(**values):
    """Raises ValueError unless every value is a rate in [0, 1) (dropout and the like)."""
    for name, value in values.items():
        if not 0.0 <= value < 1.0:
            raise ValueError(f"`{name}` must be in [0, 1). Received: {name}={value!r}")


def check_divisible(**values):
    """Raises ValueError unless the first value is a multiple of the second: `check_divisible(hidden_dim=.., num_heads=..)`."""
    (name, value), (divisor_name, divisor) = values.items()
    if value % divisor:
        raise ValueError(
            f"`{name}` must be divisible by `{divisor_name}`. Received: {name}={value}, {divisor_name}={divisor}"
        )

"""Turns an app's training options into a strategy and a dtype policy, in the order TensorFlow needs."""

from tfllm.training.precision import set_mixed_precision
from tfllm.training.strategy import get_strategy, simulate_devices


def configure_from_args(args):
    """Applies `--strategy`, `--simulate-devices` and `--mixed-precision` and returns the strategy.

    Order matters: devices are split before TensorFlow initialises them, the
    strategy is created next, and the dtype policy last because `"auto"`
    depends on the hardware the strategy found. Call this before building
    any model, then build and compile inside `strategy.scope()`.
    """
    if getattr(args, "simulate_devices", None):
        simulate_devices(args.simulate_devices)
    strategy = get_strategy(getattr(args, "strategy", "auto"))
    set_mixed_precision(getattr(args, "mixed_precision", "auto"), strategy=strategy)
    return strategy

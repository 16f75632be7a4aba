"""Command-line options shared by every app that trains."""

from tfllm.cli import positive_int
from tfllm.training.precision import MIXED_PRECISION_MODES, set_mixed_precision
from tfllm.training.strategy import STRATEGIES, get_strategy, simulate_devices


def add_training_arguments(parser):
    """Adds `--strategy`, `--simulate-devices` and `--mixed-precision` to `parser`.

    Args:
        parser: an `argparse.ArgumentParser` (or a subcommand's parser).

    Returns:
        The argument group that holds the options.
    """
    group = parser.add_argument_group("distributed training")
    group.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="auto",
        help="tf.distribute strategy; auto: TPU if present, multi-worker if TF_CONFIG "
        "names several workers, mirrored over several GPUs, else one device "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--simulate-devices",
        type=positive_int,
        default=None,
        metavar="N",
        help="split the CPU into N logical devices so multi-device code runs without GPUs",
    )
    group.add_argument(
        "--mixed-precision",
        choices=MIXED_PRECISION_MODES,
        default="auto",
        help="auto: float16 on GPU, bfloat16 on TPU, off on CPU (default: %(default)s)",
    )
    return group


def configure_from_args(args):
    """Applies the options from `add_training_arguments` and returns the strategy.

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

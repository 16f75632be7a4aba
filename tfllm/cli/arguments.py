"""Argument types and the options every app spells the same way."""

import argparse
import math
import os

from tfllm.training.precision import MIXED_PRECISION_MODES
from tfllm.training.strategy import STRATEGIES


def _number_type(name, parse, accept, what):
    """An argparse type: `parse(text)`, refused unless `accept(value)` (NaN never is)."""

    def convert(text):
        try:
            value = parse(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    convert.__name__ = convert.__qualname__ = name
    convert.__doc__ = f"argparse type: {what}."
    return convert


positive_int = _number_type("positive_int", int, lambda value: value >= 1, "a positive integer")
non_negative_int = _number_type("non_negative_int", int, lambda value: value >= 0, "a non-negative integer")
fraction = _number_type("fraction", float, lambda value: 0.0 < value < 1.0, "a number strictly between 0 and 1")
positive_float = _number_type("positive_float", float, lambda value: 0.0 < value < math.inf, "a positive number")


def existing_file(text):
    """argparse type: the path of an existing file (checked at parse time)."""
    if not os.path.exists(text):
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text}: is a directory, expected a file")
    return text


def add_sampling_arguments(group, strategies, default):
    """Adds `--decoding` (one of `strategies`), `--num-beams` (if "beam" is one), `--top-k`,
    `--top-p` and `--temperature`; `sampling_options` reads them."""
    group.add_argument("--decoding", choices=strategies, default=default, help="(default: %(default)s)")
    if "beam" in strategies:
        group.add_argument("--num-beams", type=positive_int, default=4,
                           help="beam width for --decoding beam (default: %(default)s)")
    group.add_argument("--top-k", type=positive_int, default=10, help="k for --decoding top_k (default: %(default)s)")
    group.add_argument("--top-p", type=fraction, default=0.9, help="p for --decoding top_p (default: %(default)s)")
    group.add_argument("--temperature", type=positive_float, default=1.0, help="(default: %(default)s)")


def sampling_options(args):
    """The decoding strategy and its settings as `generate` keyword arguments (`add_sampling_arguments`).

    Sampling strategies take `--seed` where the command has one (else 0).
    """
    options = {"strategy": args.decoding}
    if args.decoding == "beam":
        options["num_beams"] = args.num_beams
    elif args.decoding == "top_k":
        options["k"] = args.top_k
    elif args.decoding == "top_p":
        options["p"] = args.top_p
    if args.decoding != "greedy" and args.temperature != 1.0:
        options["temperature"] = args.temperature
    if args.decoding in ("top_k", "top_p", "random"):
        options["seed"] = getattr(args, "seed", 0)
    return options


def add_seed_argument(parser, default=0):
    parser.add_argument(
        "--seed", type=int, default=default, help="seed for splits, shuffling and initialization (default: %(default)s)"
    )


def add_data_arguments(parser, *, text_column="text", label_column="label", target_column=None, required=False):
    """Adds `--data PATH`, `--text-column`, `--label-column` (and `--target-column`), `--encoding`.

    Args:
        parser: the (sub)command parser.
        text_column: default name of the input text column.
        label_column: default name of the label column, or None for apps
            without labels.
        target_column: default name of the target text column (summaries,
            responses), or None for apps without one.
        required: whether `--data` must be given.
    """
    parser.add_argument(
        "--data",
        required=required,
        metavar="PATH",
        help="a .csv, .tsv, .json, .jsonl or .parquet file (optionally compressed)",
    )
    parser.add_argument(
        "--text-column", default=text_column, metavar="C", help="column holding the input text (default: %(default)s)"
    )
    if label_column is not None:
        parser.add_argument(
            "--label-column", default=label_column, metavar="C", help="column holding the labels (default: %(default)s)"
        )
    if target_column is not None:
        parser.add_argument(
            "--target-column", default=target_column, metavar="C", help="column holding the target text (default: %(default)s)"
        )
    parser.add_argument(
        "--encoding", default="utf-8", metavar="NAME", help="text encoding of --data (default: %(default)s)"
    )


def add_export_argument(parser, default):
    parser.add_argument(
        "--export-dir",
        default=default,
        metavar="DIR",
        help="model base path; each export adds the next integer version under it (default: %(default)s)",
    )


def add_model_dir_argument(parser, required=True):
    parser.add_argument(
        "--model-dir",
        required=required,
        metavar="DIR",
        help="an exported SavedModel: a version directory, or a base path meaning its latest version",
    )


def add_run_dir_argument(parser, default):
    parser.add_argument(
        "--run-dir",
        default=default,
        metavar="DIR",
        help="checkpoints, TensorBoard logs and training curves; an interrupted run started again "
        "with the same directory resumes (default: %(default)s)",
    )


def add_finetuning_arguments(parser, defaults, title, backbone_help):
    """Adds the group `title` with `--backbone`, `--backbone-lr-factor`, `--freeze-epochs` and
    `--warmup-fraction` (defaults from the task's config `defaults`); returns the group."""
    tune = parser.add_argument_group(title)
    tune.add_argument("--backbone", metavar="DIR_OR_PRESET", help=backbone_help)
    tune.add_argument("--backbone-lr-factor", type=positive_float, default=defaults.backbone_lr_factor,
                      help="the backbone's learning rate as a share of the head's (default: %(default)s)")
    tune.add_argument("--freeze-epochs", type=non_negative_int, default=defaults.freeze_epochs,
                      help="epochs the backbone stays frozen first (default: %(default)s)")
    tune.add_argument("--warmup-fraction", type=fraction, default=defaults.warmup_fraction,
                      help="share of the steps the learning rate warms up over (default: %(default)s)")
    return tune


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

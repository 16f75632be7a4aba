"""Command-line plumbing shared by the apps (`apps/sentiment.py`, `apps/dialogue.py`, ...).

What every app gets from here:

- `ArgumentParser`: argparse whose errors raise `UsageError` instead of
  printing usage and exiting, so `run` reports them like any other bad input.
- `run(command, args, prog=)`: calls `command(args)` and turns bad input
  (`UsageError`, `tfllm.data.DataError`, `tfllm.serving.export.ExportError`,
  missing or unreadable files) into ONE line on stderr, `prog: error: ...`,
  and exit code 2. Anything else is a bug and keeps its traceback.
- Argument helpers with the same names and meanings in every app:
  `add_seed_argument`, `add_data_arguments`, `add_export_argument`,
  `add_model_dir_argument`, `add_run_dir_argument`, and the argparse types
  `positive_int`, `fraction`, `existing_file`.
- `print_json(record)`: the final result as one JSON line on stdout.
- Run directories: `prepare_run_dir(path)` lays out one training run:

      <run dir>/
        checkpoints/best.weights.h5   best weights so far (by validation loss)
        backup/                       epoch backup; resumes an interrupted run
        logs/<timestamp>/             TensorBoard event files
        curves.png                    training curves (`plot_history`)
        history.json                  per-epoch metrics

- `plot_history(history, path)`: writes the training-curve PNG (matplotlib,
  Agg backend, so it works without a display).
- `tensorboard_callback(log_dir)`: Keras' `TensorBoard` callback when the
  `tensorboard` package is installed, else `EpochScalars`, which writes the
  same per-epoch scalars with TensorFlow's own summary writer.

Relative paths given on the command line are relative to the current
directory, like any Unix tool; the defaults (`saved_models/<app>`,
`runs/<app>`) are relative to it too, which is the repository root under
`make run`.
"""

import argparse
import datetime
import functools
import json
import logging
import math
import os
import sys

from tfllm._files import write_text_atomically


class UsageError(Exception):
    """Bad command-line input; `run` prints it as one line and exits with 2."""


class ArgumentParser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` that raises `UsageError` instead of exiting.

    Subparsers created through `add_subparsers` inherit this class. `--help`
    still prints help and exits 0.
    """

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


USAGE_EXIT_CODE = 2


def _user_errors():
    """Exception types that mean bad input rather than a bug."""
    from tfllm.data.errors import DataError

    errors = [UsageError, DataError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError]
    try:
        from tfllm.serving.export import ExportError

        errors.append(ExportError)
    except ImportError:  # pragma: no cover - serving is part of the package
        pass
    return tuple(errors)


def one_line(error):
    """The message of an exception on one line (newlines escaped, never empty)."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.filename}: {error.strerror}"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.replace("\r", " ").split("\n")).strip()


def _show_tfllm_logs():
    """Shows tfllm's INFO messages (strategy chosen, truncation, fallbacks) on stderr."""
    logger = logging.getLogger("tfllm")
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def run(command, args=None, *, prog=None):
    """Runs `command(args)` and returns a process exit code.

    Bad input (see the module docstring) prints `prog: error: <message>` on
    stderr and returns 2; `SystemExit` (from `--help`) returns its code;
    Ctrl-C returns 130. `command` returns None (success) or an int code.

    Example:
        >>> def main(argv=None):
        ...     return run(lambda argv: _main(build_parser().parse_args(argv)), argv, prog="sentiment")
    """
    prog = prog or os.path.basename(sys.argv[0]) or "tfllm"
    _show_tfllm_logs()
    try:
        code = command(args)
    except SystemExit as exit_:
        code = exit_.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(f"{prog}: error: {code}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except _user_errors() as error:
        print(f"{prog}: error: {one_line(error)}", file=sys.stderr)
        return USAGE_EXIT_CODE
    return 0 if code is None else int(code)


# ---------------------------------------------------------------------------
# Argument types and shared arguments.


def positive_int(text):
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def non_negative_int(text):
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return value


def fraction(text):
    """argparse type: a float strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number strictly between 0 and 1, got {text!r}")
    return value


def positive_float(text):
    """argparse type: a float > 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0.0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def existing_file(text):
    """argparse type: the path of an existing file (checked at parse time)."""
    if not os.path.exists(text):
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text}: is a directory, expected a file")
    return text


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


def predict_texts(args):
    """The texts a `predict` command was given: TEXT arguments or the text column of `--data`.

    Raises `UsageError` for both or neither, and for an empty TEXT argument.
    """
    from tfllm import data

    if args.texts and args.data:
        raise UsageError("give texts or --data, not both")
    if args.data:
        texts = data.load_table(args.data, args.text_column, label_column=None, encoding=args.encoding).text.tolist()
    elif args.texts:
        texts = list(args.texts)
        for index, text in enumerate(texts, start=1):
            if not text.strip():
                raise UsageError(f"text {index} is empty")
    else:
        raise UsageError("predict needs TEXT arguments or --data PATH")
    return texts


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


# ---------------------------------------------------------------------------
# Output.


def _plain(value):
    """Makes NumPy scalars/arrays and non-finite floats JSON-ready."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _plain(value.tolist())
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def to_json(record):
    """`record` as one line of JSON (NumPy values converted, NaN -> null)."""
    return json.dumps(_plain(record), ensure_ascii=False, allow_nan=False)


def print_json(record, file=None):
    """Prints `record` as one JSON line on stdout (flushed), the app's final output."""
    file = file or sys.stdout
    print(to_json(record), file=file, flush=True)


# ---------------------------------------------------------------------------
# Run directories and training curves.


class RunDir:
    """Paths of one training run's directory (see the module docstring)."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self.checkpoints = os.path.join(self.path, "checkpoints")
        self.best_weights = os.path.join(self.checkpoints, "best.weights.h5")
        self.backup = os.path.join(self.path, "backup")
        self.logs_root = os.path.join(self.path, "logs")
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.logs = os.path.join(self.logs_root, stamp)
        self.curves = os.path.join(self.path, "curves.png")
        self.history = os.path.join(self.path, "history.json")

    def file(self, name):
        """Path of another file kept with the run (vocabularies, settings)."""
        return os.path.join(self.path, name)

    @property
    def resuming(self):
        """Whether an interrupted run left a backup to resume from."""
        return os.path.isdir(self.backup) and bool(os.listdir(self.backup))

    def __fspath__(self):
        return self.path

    def __repr__(self):
        return f"RunDir({self.path!r})"


def prepare_run_dir(path):
    """Creates the run directory layout and returns its `RunDir`.

    Raises:
        UsageError: the path exists and is not a directory.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{path}: run directory path exists and is not a directory")
    run_dir = RunDir(path)
    os.makedirs(run_dir.checkpoints, exist_ok=True)
    os.makedirs(run_dir.logs, exist_ok=True)
    return run_dir


def save_history(history, path):
    """Writes a Keras `History` (or its `.history` dict) as JSON, atomically."""
    data = getattr(history, "history", history)
    write_text_atomically(path, to_json(data) + "\n")


def plot_history(history, path, title=None):
    """Writes training curves as a PNG: one panel per metric, train vs validation.

    Args:
        history: a Keras `History` or its `.history` dict
            (`{"loss": [...], "val_loss": [...], "accuracy": [...], ...}`).
        path: the PNG to write (atomically).
        title: optional figure title.

    Returns:
        `path`.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    data = getattr(history, "history", history) or {}
    names = [name for name in data if not name.startswith("val_") and name not in ("learning_rate", "lr")]
    if not names:
        raise ValueError("The history holds no metrics to plot")
    figure, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
    for axis, name in zip(axes[0], names):
        values = data[name]
        epochs = range(1, len(values) + 1)
        axis.plot(epochs, values, marker="o", label="train")
        if f"val_{name}" in data:
            axis.plot(range(1, len(data[f"val_{name}"]) + 1), data[f"val_{name}"], marker="o", label="validation")
        axis.set_xlabel("epoch")
        axis.set_title(name)
        axis.grid(alpha=0.3)
        axis.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}.png")
    figure.savefig(tmp, dpi=100)
    plt.close(figure)
    os.replace(tmp, path)
    return path


def run_callbacks(run_dir, patience):
    """The callbacks every app trains with: early stopping on val_loss (best weights restored),
    the best weights saved to `run_dir.best_weights`, and TensorBoard logs in `run_dir.logs`."""
    import keras

    return [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True),
        keras.callbacks.ModelCheckpoint(
            run_dir.best_weights, monitor="val_loss", save_best_only=True, save_weights_only=True
        ),
        tensorboard_callback(run_dir.logs),
    ]


def tensorboard_callback(log_dir):
    """A callback writing TensorBoard logs under `log_dir` (see the module docstring)."""
    import keras

    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return _epoch_scalars_class()(log_dir)
    return keras.callbacks.TensorBoard(log_dir)


@functools.lru_cache(maxsize=None)
def _epoch_scalars_class():
    import keras
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    class EpochScalars(keras.callbacks.Callback):
        """Writes per-epoch metrics as TensorBoard scalars, without the tensorboard package.

        Same layout and tags as `keras.callbacks.TensorBoard`: `log_dir/train`
        and `log_dir/validation`, tags `epoch_loss`, `epoch_accuracy`, ...
        """

        def __init__(self, log_dir):
            super().__init__()
            self.log_dir = os.fspath(log_dir)
            self._writers = {}
            self._metadata = summary_pb2.SummaryMetadata(
                plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
            )

        def _writer(self, split):
            if split not in self._writers:
                self._writers[split] = tf.summary.create_file_writer(os.path.join(self.log_dir, split))
            return self._writers[split]

        def on_epoch_end(self, epoch, logs=None):
            for name, value in (logs or {}).items():
                split, tag = ("validation", name[4:]) if name.startswith("val_") else ("train", name)
                with self._writer(split).as_default():
                    tf.summary.write(f"epoch_{tag}", tf.constant(float(value)), step=epoch, metadata=self._metadata)
            for writer in self._writers.values():
                writer.flush()

        def on_train_end(self, logs=None):
            for writer in self._writers.values():
                writer.close()
            self._writers = {}

    return EpochScalars


def __getattr__(name):
    # EpochScalars subclasses a Keras class; defining it lazily keeps
    # `import tfllm.cli` free of TensorFlow for fast `--help`.
    if name == "EpochScalars":
        return _epoch_scalars_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

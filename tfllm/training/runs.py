"""Run directories: where one training run keeps what it needs to resume and to be read later.

    <run dir>/
      checkpoints/best.weights.h5   best weights so far (by validation loss)
      backup/                       epoch backup; resumes an interrupted run
      logs/<timestamp>/             TensorBoard event files (keras.callbacks.TensorBoard)
      curves.png                    training curves (`plot_history`)
      history.json                  per-epoch metrics
      ...                           what the task adds (vocabularies, labels, model.keras)
"""

import datetime
import json
import math
import os

from tfllm._files import save_figure_atomically, write_text_atomically


def _plain(value):
    """Per-epoch metrics as JSON-ready floats (NaN and infinities -> null)."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    value = float(value)
    return value if math.isfinite(value) else None




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
        NotADirectoryError: the path exists and is not a directory.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise NotADirectoryError(f"{path}: run directory path exists and is not a directory")
    run_dir = RunDir(path)
    os.makedirs(run_dir.checkpoints, exist_ok=True)
    os.makedirs(run_dir.logs, exist_ok=True)
    return run_dir


def save_history(history, path):
    """Writes a Keras `History` (or its `.history` dict) as JSON, atomically."""
    data = getattr(history, "history", history)
    write_text_atomically(path, json.dumps(_plain(data), allow_nan=False) + "\n")


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
    save_figure_atomically(figure, path)
    plt.close(figure)
    return path


def run_callbacks(run_dir, patience, monitor="val_loss", mode="min"):
    """The callbacks every app trains with: early stopping on `monitor` (val_loss; best weights restored),
    the best weights saved to `run_dir.best_weights`, and TensorBoard logs in `run_dir.logs`.

    A `monitor` other than val_loss must be in the epoch's logs before these
    callbacks run (a callback earlier in the list puts it there), with
    `mode="max"` for a score that should rise.
    """
    import keras

    return [
        keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience, restore_best_weights=True),
        keras.callbacks.ModelCheckpoint(
            run_dir.best_weights, monitor=monitor, mode=mode, save_best_only=True, save_weights_only=True
        ),
        # Writes per-epoch scalars for the train and validation splits; needs
        # the `tensorboard` package, a dependency of tfllm.
        keras.callbacks.TensorBoard(run_dir.logs),
    ]


def fit_in_run_dir(model, train_data, val_data, run_dir, *, epochs, callbacks=(), strategy=None,
                   steps_per_epoch=None, verbose="auto", title=None):
    """`tfllm.training.fit` with the run directory's backup, then its history and curves written.

    Returns:
        `(history, seconds)`: the Keras `History` and the training time.
    """
    import time

    from tfllm.training.loop import fit

    started = time.perf_counter()
    history = fit(
        model, train_data, validation_data=val_data, epochs=epochs, callbacks=callbacks,
        strategy=strategy, backup_dir=run_dir.backup, steps_per_epoch=steps_per_epoch, verbose=verbose,
    )
    seconds = time.perf_counter() - started
    save_history(history, run_dir.history)
    if history.history:
        plot_history(history, run_dir.curves, title=title)
    return history, seconds


def read_run_metadata(run_dir):
    """The `metadata.json` a finished run wrote in `run_dir` (a dict)."""
    with open(os.path.join(os.fspath(run_dir), "metadata.json"), encoding="utf-8") as file:
        return json.load(file)


def load_trained_model(run_dir):
    """The `model.keras` a finished run saved in `run_dir` (uncompiled).

    The model's classes must be registered (import their modules first).

    Raises:
        FileNotFoundError: the run directory holds no trained model.
    """
    import keras

    model_path = os.path.join(os.fspath(run_dir), "model.keras")
    if not os.path.isfile(model_path):
        raise FileNotFoundError(f"{model_path}: no trained model here (run train first)")
    return keras.models.load_model(model_path, compile=False)

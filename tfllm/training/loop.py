"""`fit`: Keras `model.fit` where it works, a `strategy.run` loop where it does not."""

import copy
import logging
import os
import shutil
import sys
import warnings

import keras
import tensorflow as tf

from tfllm.training.backup import TrainingBackup, worker_temp_dir
from tfllm.training.custom_loop import CustomLoop, example_batch
from tfllm.training.strategy import even_batches, is_multi_worker, with_shard_policy, worker_id

logger = logging.getLogger("tfllm.training")

LOOPS = ("auto", "fit", "custom")


def progress_verbosity(verbose="auto", stream=None):
    """`verbose` for Keras' `fit`: "auto" is 1 on a terminal, 2 otherwise."""
    if verbose != "auto":
        return verbose
    stream = stream or sys.stdout
    return 1 if getattr(stream, "isatty", lambda: False)() else 2


def fit(
    model,
    train_data,
    *,
    validation_data=None,
    epochs=1,
    callbacks=(),
    strategy=None,
    backup_dir=None,
    steps_per_epoch=None,
    validation_steps=None,
    verbose="auto",
    loop="auto",
):
    """Trains `model` on `train_data` under `strategy`, like `model.fit`.

    Runs `model.fit` for the default, mirrored and TPU strategies, with every
    batch trimmed to a multiple of the replica count (`even_batches`: Keras
    fails on a batch that splits unevenly, e.g. the last partial one). Under
    `MultiWorkerMirroredStrategy`, where Keras 3's `fit` fails (keras issue
    20585), it runs a `strategy.run` loop instead: per-example losses averaged
    over the global batch with `tf.nn.compute_average_loss`, regularization
    losses scaled by `tf.nn.scale_regularization_loss`, loss scaling through
    the compiled `LossScaleOptimizer` under mixed float16, the compiled metrics
    updated, and the same callbacks driven (progress bar, `ModelCheckpoint`,
    `EarlyStopping`, `TensorBoard`, `History`). On non-chief workers the
    callbacks that write files write to private temporary directories.

    Args:
        model: a model built and compiled inside `strategy.scope()`.
        train_data: a `tf.data.Dataset` batched with the global batch size,
            yielding `(x, y)` or `(x, y, sample_weight)`.
        validation_data: an optional dataset of the same form.
        epochs: number of epochs to train for in total.
        callbacks: Keras callbacks.
        strategy: the strategy; defaults to the one the model was built in.
        backup_dir: when given, the training state is backed up there at every
            epoch end and a run started again resumes from it (see
            `TrainingBackup`); the backup is deleted when training completes.
        steps_per_epoch: steps per epoch; `None` runs through `train_data`.
        validation_steps: validation steps; `None` runs through `validation_data`.
        verbose: 0, 1 or 2, as in `model.fit`; `"auto"` is the live progress
            bar (1) on a terminal and one line per epoch (2) when stdout is a
            file or pipe, where the bar would write thousands of characters
            and terminal escape codes per line.
        loop: `"auto"`, or `"fit"` / `"custom"` to force one implementation.

    Returns:
        The `keras.callbacks.History` of the run.

    Example:
    >>> strategy = get_strategy("auto")
    >>> with strategy.scope():
    ...     model = build_model()
    ...     model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    >>> history = fit(model, train_ds, epochs=3, backup_dir="/tmp/backup")
    """
    if loop not in LOOPS:
        raise ValueError(f"loop must be one of {', '.join(LOOPS)}. Received: loop={loop!r}")
    strategy = strategy or model.distribute_strategy
    verbose = progress_verbosity(verbose)
    _check_inputs(model, strategy, train_data, validation_data, epochs)
    use_custom = loop == "custom" or (
        loop == "auto" and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    )
    callbacks = list(callbacks)
    if backup_dir is not None:
        if not model.built:
            # A backup restores into existing weights; a subclassed model has
            # none before its first batch, which comes after on_train_begin.
            with strategy.scope():
                model(keras.utils.unpack_x_y_sample_weight(example_batch(train_data))[0], training=False)
        callbacks.append(TrainingBackup(backup_dir))
    temp_dirs = []
    if is_multi_worker(strategy):
        worker = worker_id(strategy)
        callbacks = [_for_worker(cb, worker, temp_dirs) for cb in callbacks]
    train_data = with_shard_policy(train_data)
    if validation_data is not None:
        validation_data = with_shard_policy(validation_data)
    try:
        if not use_custom:
            # Keras' fit fails on a batch that splits unevenly across replicas.
            train_data = even_batches(train_data, strategy)
            if validation_data is not None:
                validation_data = even_batches(validation_data, strategy)
        options = dict(validation_data=validation_data, epochs=epochs, callbacks=callbacks,
                       steps_per_epoch=steps_per_epoch, validation_steps=validation_steps, verbose=verbose)
        if use_custom:
            return CustomLoop(model, strategy).fit(train_data, **options)
        with warnings.catch_warnings():
            if steps_per_epoch is None:
                # Bucketed or trimmed datasets have no known length, so Keras
                # warns after the first epoch that the data "ran out": expected.
                warnings.filterwarnings("ignore", message="Your input ran out of data")
            # Datasets arrive shuffled (or not) by their pipeline.
            return model.fit(train_data, shuffle=False, **options)
    finally:
        for path in temp_dirs:
            shutil.rmtree(path, ignore_errors=True)


def _check_inputs(model, strategy, train_data, validation_data, epochs):
    if getattr(model, "optimizer", None) is None:
        raise ValueError("Compile the model (inside strategy.scope()) before calling fit().")
    for name, data in (("train_data", train_data), ("validation_data", validation_data)):
        if data is not None and not isinstance(data, tf.data.Dataset):
            raise TypeError(
                f"{name} must be a batched tf.data.Dataset. Received: {type(data).__name__}"
            )
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer. Received: epochs={epochs!r}")
    if model.variables:
        if not strategy.extended.variable_created_in_scope(model.variables[0].value):
            raise ValueError(
                f"The model's variables were not created under the {type(strategy).__name__} "
                "given to fit(); build and compile the model inside strategy.scope()."
            )


def _for_worker(callback, worker, temp_dirs):
    """`callback` as `worker` (`"chief"`, `"worker-1"` ...) of a multi-worker job must run it.

    Every worker runs the same saves, since reading distributed variables can
    need all of them, but only the chief's files are kept: on the others,
    `ModelCheckpoint`, `CSVLogger` and callbacks writing under a `log_dir`
    (`TensorBoard` and the like) write to private temporary directories,
    deleted afterwards. Backups all take the `TrainingBackup` format so that
    every worker restores from the chief's.
    """
    non_chief = worker != "chief"

    def temp_dir(kind, target):
        temp_dirs.append(worker_temp_dir(kind, target, worker))
        return temp_dirs[-1]

    if isinstance(callback, (keras.callbacks.BackupAndRestore, TrainingBackup)):
        keep = getattr(callback, "delete_checkpoint", None) is False  # Keras' spelling
        return TrainingBackup(
            callback.backup_dir,
            write_dir=temp_dir("backup", callback.backup_dir) if non_chief else None,
            delete_on_finish=getattr(callback, "delete_on_finish", not keep),
        )
    if not non_chief:
        return callback
    if isinstance(callback, keras.callbacks.ModelCheckpoint):
        attribute = "filepath"
    elif isinstance(callback, keras.callbacks.CSVLogger):
        attribute = "filename"
    elif isinstance(getattr(callback, "log_dir", None), (str, os.PathLike)):
        attribute = "log_dir"  # TensorBoard and look-alikes
    else:
        return callback
    target = os.fspath(getattr(callback, attribute))
    kind = {"filepath": "checkpoint", "filename": "csv", "log_dir": "logs"}[attribute]
    directory = temp_dir(kind, target)
    redirected = copy.copy(callback)
    setattr(redirected, attribute,
            directory if attribute == "log_dir" else os.path.join(directory, os.path.basename(target)))
    return redirected

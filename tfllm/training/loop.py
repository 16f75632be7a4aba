"""`fit`: Keras `model.fit` where it works, a `strategy.run` loop where it does not."""

import copy
import logging
import os
import shutil
import warnings

import keras
import tensorflow as tf

from tfllm.training.backup import TrainingBackup, worker_temp_dir
from tfllm.training.strategy import even_batches, is_multi_worker, with_shard_policy, worker_id

logger = logging.getLogger("tfllm.training")

LOOPS = ("auto", "fit", "custom")


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
        verbose: `"auto"`, 0, 1 or 2, as in `model.fit`.
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
    _check_inputs(model, strategy, train_data, validation_data, epochs)
    use_custom = loop == "custom" or (
        loop == "auto" and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    )
    callbacks = list(callbacks)
    if backup_dir is not None:
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
            return _CustomLoop(model, strategy).fit(train_data, **options)
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


class _PerExampleLoss(keras.losses.Loss):
    """Wraps a loss function `fn(y_true, y_pred)` without reducing its output."""

    def __init__(self, fn):
        super().__init__(name=getattr(fn, "__name__", "loss"), reduction=None)
        self.fn = fn

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred)


def _unreduced_loss(loss):
    """The compiled loss as a `keras.losses.Loss` returning per-example values."""
    if isinstance(loss, (list, tuple)) and len(loss) == 1:
        loss = loss[0]
    if isinstance(loss, dict) and len(loss) == 1:
        loss = next(iter(loss.values()))
    if isinstance(loss, str):
        loss = keras.losses.get(loss)
    if isinstance(loss, keras.losses.Loss):
        config = loss.get_config()
        config["reduction"] = None
        try:
            return type(loss).from_config(config)
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"Cannot make the loss {type(loss).__name__} per-example for the "
                f"distributed loop ({e}); give compile() a loss function instead."
            ) from None
    if callable(loss):
        return _PerExampleLoss(loss)
    raise ValueError(
        "The distributed training loop needs a model compiled with exactly one loss. "
        f"Received: loss={loss!r}"
    )


def _metric_results(model):
    """Compiled-metric results; reading them in cross-replica context reduces across replicas."""
    results = {}
    for metric in model.metrics:
        if metric.name == "loss":
            continue  # The loop tracks the loss itself, averaged over the global batch.
        result = metric.result()
        if isinstance(result, dict):
            results.update(result)
        else:
            results[metric.name] = result
    return results


def _example_batch(dataset):
    """A batch of one zero example shaped like `dataset`'s elements.

    Cheaper than reading the dataset, whose pipeline may fill a shuffle buffer
    before yielding anything.
    """
    specs = tf.nest.flatten(dataset.element_spec)
    if not all(isinstance(spec, tf.TensorSpec) for spec in specs):
        return next(iter(dataset.take(1)))  # Ragged or sparse parts: use real data.
    return tf.nest.map_structure(
        lambda spec: tf.zeros([1 if d is None else d for d in spec.shape], spec.dtype),
        dataset.element_spec,
    )


def _cardinality(dataset):
    n = int(dataset.cardinality())
    return n if n > 0 else None


class _CustomLoop:
    """A `strategy.run` training loop that gives the same logs and callbacks as `fit`."""

    def __init__(self, model, strategy):
        self.model = model
        self.strategy = strategy
        self.loss_fn = _unreduced_loss(model.loss)

    def _average_loss(self, y, y_pred, sample_weight):
        per_example = tf.cast(self.loss_fn(y, y_pred), tf.float32)
        if per_example.shape.rank and per_example.shape.rank > 1:
            # Sequence losses: average over time first, as Keras does.
            per_example = tf.reduce_mean(per_example, axis=list(range(1, per_example.shape.rank)))
        local_count = tf.cast(tf.shape(per_example)[0], tf.float32)
        context = tf.distribute.get_replica_context()
        # The true global batch, so a short last batch is averaged correctly.
        global_count = context.all_reduce(tf.distribute.ReduceOp.SUM, local_count)
        if sample_weight is not None:
            sample_weight = tf.cast(sample_weight, tf.float32)
        loss = tf.nn.compute_average_loss(
            per_example,
            sample_weight=sample_weight,
            global_batch_size=tf.cast(global_count, tf.int64),
        )
        if self.model.losses:
            regularization = tf.add_n(
                [tf.cast(tf.reduce_sum(term), tf.float32) for term in self.model.losses]
            )
            loss += tf.nn.scale_regularization_loss(regularization)
        return loss, global_count

    def _replica_train_step(self, data):
        model = self.model
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss, count = self._average_loss(y, y_pred, sample_weight)
            scaled_loss = model.optimizer.scale_loss(loss)
        variables = model.trainable_variables
        gradients = tape.gradient(scaled_loss, variables)
        model.optimizer.apply_gradients(zip(gradients, variables))
        model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        return loss, count

    def _replica_test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y_pred = self.model(x, training=False)
        loss, count = self._average_loss(y, y_pred, sample_weight)
        self.model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        return loss, count

    def _make_step(self, replica_fn, element_spec):
        strategy = self.strategy

        @tf.function(input_signature=[element_spec])
        def step(data):
            loss, count = strategy.run(replica_fn, args=(data,))
            loss = strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
            count = strategy.reduce(tf.distribute.ReduceOp.MEAN, count, axis=None)
            return loss, count, _metric_results(self.model)

        return step

    def _build(self, dataset):
        """Creates optimizer and metric variables outside the replica functions."""
        model = self.model
        with self.strategy.scope():
            x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(_example_batch(dataset))
            y_pred = model(x, training=False)  # Builds a subclassed model's weights.
            if not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
            model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
            model.reset_metrics()

    def _run(self, step, iterator, steps, on_begin, on_end, stoppable=True):
        """Runs up to `steps` steps; returns (logs, steps_run, exhausted)."""
        total, count, results, done = 0.0, 0.0, {}, 0
        while steps is None or done < steps:
            try:
                data = next(iterator)
            except (StopIteration, tf.errors.OutOfRangeError):
                return self._logs(total, count, results), done, True
            on_begin(done)
            loss, n, results = step(data)
            n = float(n)
            total += float(loss) * n
            count += n
            on_end(done, self._logs(total, count, results))
            done += 1
            if stoppable and self.model.stop_training:
                break
        return self._logs(total, count, results), done, False

    @staticmethod
    def _logs(total, count, results):
        logs = {"loss": total / count if count else 0.0}
        logs.update({name: float(value) for name, value in results.items()})
        return logs

    def fit(self, train_data, *, validation_data, epochs, callbacks, steps_per_epoch,
            validation_steps, verbose):
        model, strategy = self.model, self.strategy
        self._build(train_data)
        dist_train = strategy.experimental_distribute_dataset(train_data)
        train_step = self._make_step(self._replica_train_step, dist_train.element_spec)
        if validation_data is not None:
            dist_val = strategy.experimental_distribute_dataset(validation_data)
            test_step = self._make_step(self._replica_test_step, dist_val.element_spec)
        callbacks = keras.callbacks.CallbackList(
            callbacks,
            add_history=True,
            add_progbar=verbose != 0,
            verbose=verbose,
            epochs=epochs,
            steps=steps_per_epoch or _cardinality(train_data),
            model=model,
        )
        model.stop_training = False
        callbacks.on_train_begin()
        initial_epoch = model._initial_epoch or 0  # noqa: SLF001 (set by backup callbacks)
        iterator = iter(dist_train) if steps_per_epoch else None
        training_logs = None
        for epoch in range(initial_epoch, epochs):
            model.reset_metrics()
            callbacks.on_epoch_begin(epoch)
            epoch_iterator = iterator if steps_per_epoch else iter(dist_train)
            epoch_logs, steps_run, exhausted = self._run(
                train_step,
                epoch_iterator,
                steps_per_epoch,
                callbacks.on_train_batch_begin,
                callbacks.on_train_batch_end,
            )
            if steps_per_epoch and exhausted:
                warnings.warn(
                    f"train_data ran out after {steps_run} of {steps_per_epoch} steps in "
                    f"epoch {epoch + 1}; stopping. Repeat the dataset or lower steps_per_epoch.",
                    stacklevel=3,
                )
                model.stop_training = True
            if validation_data is not None:
                epoch_logs.update(self._evaluate(test_step, dist_val, validation_steps, callbacks))
            callbacks.on_epoch_end(epoch, epoch_logs)
            training_logs = epoch_logs
            if model.stop_training:
                break
        if epochs > initial_epoch:
            model.optimizer.finalize_variable_values(model.trainable_weights)
        callbacks.on_train_end(logs=training_logs)
        return model.history

    def _evaluate(self, test_step, dist_val, steps, callbacks):
        self.model.reset_metrics()
        callbacks.on_test_begin()
        logs, _, _ = self._run(
            test_step, iter(dist_val), steps, callbacks.on_test_batch_begin,
            callbacks.on_test_batch_end,
            stoppable=False,
        )
        callbacks.on_test_end(logs)
        return {f"val_{name}": value for name, value in logs.items()}

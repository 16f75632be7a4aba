"""The `strategy.run` training loop `fit` uses where Keras' own `fit` fails (multi-worker)."""

import warnings

import keras
import tensorflow as tf


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


def example_batch(dataset):
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


class CustomLoop:
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
            x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(example_batch(dataset))
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

"""Optimizers tfllm trains with beyond Keras' own."""

import keras


@keras.saving.register_keras_serializable(package="tfllm")
class SparseAdam(keras.optimizers.Adam):
    """Adam that updates only the embedding rows a batch touched ("lazy" Adam).

    `NGramClassifier`'s embedding table has hundreds of thousands of rows but
    a batch reads a few thousand; Keras' Adam turns the sparse gradient into a
    dense update of the whole table and its two moment tables every step.
    This optimizer applies Adam to the touched rows only (their moments decay
    only when they are touched, as in TensorFlow Addons' `LazyAdam`), which
    makes a step cost proportional to the batch instead of the table. Dense
    gradients get the ordinary Adam update.

    Args: as `keras.optimizers.Adam` (`amsgrad` is not supported).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.amsgrad:
            raise ValueError("SparseAdam does not support amsgrad=True")

    def update_step(self, gradient, variable, learning_rate):
        import tensorflow as tf

        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        lr = tf.cast(learning_rate, dtype)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        alpha = lr * tf.sqrt(1 - tf.pow(beta_2, step)) / (1 - tf.pow(beta_1, step))
        # Rows may repeat within a batch: sum their gradients first.
        rows, positions = tf.unique(gradient.indices)
        values = tf.math.unsorted_segment_sum(tf.cast(gradient.values, dtype), positions, tf.shape(rows)[0])
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        m_rows = beta_1 * tf.gather(m.value, rows) + (1 - beta_1) * values
        v_rows = beta_2 * tf.gather(v.value, rows) + (1 - beta_2) * tf.square(values)
        self.assign(m, tf.IndexedSlices(m_rows, rows))
        self.assign(v, tf.IndexedSlices(v_rows, rows))
        self.assign_sub(variable, tf.IndexedSlices(alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon), rows))


@keras.saving.register_keras_serializable(package="tfllm")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `peak` over `warmup_steps`, then linear decay to 0 at `total_steps`.

    The schedule BERT was fine-tuned with (Devlin et al., 2019).

    Args:
        peak: the learning rate at the end of warm-up.
        total_steps: steps of the whole run.
        warmup_steps: steps of warm-up (at most `total_steps`).
    """

    def __init__(self, peak, total_steps, warmup_steps=0):
        if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
            raise ValueError(
                f"need 0 <= warmup_steps <= total_steps and total_steps >= 1. "
                f"Received: total_steps={total_steps}, warmup_steps={warmup_steps}"
            )
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        from keras import ops

        step = ops.cast(step, "float32")
        warmup = step / max(self.warmup_steps, 1)
        decay = (self.total_steps - step) / max(self.total_steps - self.warmup_steps, 1)
        return self.peak * ops.maximum(ops.minimum(warmup, decay), 0.0)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}


class ScaledAdam(keras.optimizers.Adam):
    """Adam whose learning rate is multiplied by `scale` for some variables (a pre-trained backbone's).

    Fine-tuning moves pre-trained weights more gently than a new head; a
    `scale` of 0 freezes them. `scale` is a variable so a callback can change
    it between epochs (`FreezeFor`) without recompiling.

    Args:
        scaled_variables: the variables whose learning rate is scaled.
        scale: the initial multiplier.
        **kwargs: as `keras.optimizers.Adam`.
    """

    def __init__(self, scaled_variables, scale=0.1, **kwargs):
        super().__init__(**kwargs)
        self._scaled_keys = {self._var_key(variable) for variable in scaled_variables}
        self.scale = keras.Variable(float(scale), trainable=False, name="learning_rate_scale")

    def update_step(self, gradient, variable, learning_rate):
        if self._var_key(variable) in self._scaled_keys:
            learning_rate = learning_rate * keras.ops.cast(self.scale, learning_rate.dtype)
        return super().update_step(gradient, variable, learning_rate)


class FreezeFor(keras.callbacks.Callback):
    """Sets a `ScaledAdam`'s scale to 0 for the first `epochs` epochs, then back to `scale`."""

    def __init__(self, epochs, scale):
        super().__init__()
        self.epochs, self.frozen_scale = int(epochs), float(scale)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.optimizer.scale.assign(0.0 if epoch < self.epochs else self.frozen_scale)

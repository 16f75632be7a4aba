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

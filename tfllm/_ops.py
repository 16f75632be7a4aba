"""Tensor updates that export to any TensorFlow runtime and still compile with XLA."""

import keras
import tensorflow as tf


def slice_update(inputs, start_indices, updates):
    """`keras.ops.slice_update`, with core TensorFlow ops outside XLA.

    Keras' TensorFlow backend writes the slice with `XlaDynamicUpdateSlice`,
    which stock TF Serving runs on CPU only when started with
    `--xla_cpu_compilation_enabled=true` and which its GPU builds fail on
    (tensorflow/serving issue 2217). Outside an XLA-compiled function (a
    SavedModel's decoding loop, eager calls) this uses
    `TensorStridedSliceUpdate`, a core op, instead; inside one, XLA's own
    update keeps shapes static.

    Args:
        inputs: the tensor to update.
        start_indices: one start index per dimension (ints or scalar tensors).
        updates: the values to write, of `inputs`' rank.

    Returns:
        `inputs` with `updates` written at `start_indices`.
    """
    if _in_xla_context():
        return keras.ops.slice_update(inputs, start_indices, updates)
    updates = tf.cast(updates, inputs.dtype)
    start = tf.stack([tf.cast(index, tf.int32) for index in start_indices])
    end = start + tf.shape(updates, out_type=tf.int32)
    return tf.raw_ops.TensorStridedSliceUpdate(input=inputs, begin=start, end=end, strides=tf.ones_like(start), value=updates)


def _in_xla_context():
    # No public API says whether the function being traced will be compiled.
    from tensorflow.python.ops import control_flow_util

    if tf.executing_eagerly():
        return False
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())

"""`tfllm._ops.slice_update`: the same values as Keras' update, in and outside XLA, without XLA ops outside."""

import numpy as np
import tensorflow as tf
from keras import ops
from tfllm._ops import slice_update


def _ops_of(function, *args):
    graph = function.get_concrete_function(*args).graph.as_graph_def()
    names = {node.op for node in graph.node}
    for library_function in graph.library.function:
        names.update(node.op for node in library_function.node_def)
    return names


def test_equals_keras_slice_update_eagerly_in_graphs_and_under_xla():
    cache = np.arange(2 * 5 * 3, dtype="float32").reshape(2, 5, 3)
    update = -np.ones((2, 2, 3), "float32")
    expected = ops.convert_to_numpy(ops.slice_update(cache, [0, 2, 0], update))

    def write(index):
        return slice_update(tf.constant(cache), [0, index, 0], tf.constant(update))

    np.testing.assert_array_equal(write(2).numpy(), expected)
    index = tf.TensorSpec([], tf.int32)
    graph = tf.function(write, input_signature=[index])
    compiled = tf.function(write, input_signature=[index], jit_compile=True)
    np.testing.assert_array_equal(graph(tf.constant(2)).numpy(), expected)
    np.testing.assert_array_equal(compiled(tf.constant(2)).numpy(), expected)
    assert not {op for op in _ops_of(graph) if op.startswith("Xla")}
    assert "TensorStridedSliceUpdate" in _ops_of(graph)


def test_casts_updates_to_the_input_dtype():
    out = slice_update(tf.zeros([1, 3], tf.int32), [0, 1], tf.constant([[7]], tf.int64))
    assert out.dtype == tf.int32 and out.numpy().tolist() == [[0, 7, 0]]

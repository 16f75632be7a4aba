"""Activations by name: "gelu_approximate" is tanh GELU and survives block configs."""

import json

import keras
import numpy as np
from harness import check_config_round_trip

from tfllm.layers import TransformerEncoderBlock, gelu_approximate


def test_gelu_approximate_is_the_tanh_formula():
    x = np.linspace(-4, 4, 17).astype("float32")
    expected = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(gelu_approximate(x), expected, atol=1e-6)


def test_blocks_take_it_by_name_and_round_trip_their_config():
    block = TransformerEncoderBlock(16, 2, activation="gelu_approximate")
    assert block.activation is gelu_approximate
    check_config_round_trip(block)
    clone = keras.saving.deserialize_keras_object(json.loads(json.dumps(keras.saving.serialize_keras_object(block))))
    assert clone.activation is gelu_approximate

"""Activations the Transformer blocks accept by name beyond Keras' own."""

import keras


@keras.saving.register_keras_serializable(package="tfllm")
def gelu_approximate(x):
    """GELU with the tanh approximation, as BERT and GPT-2 checkpoints were trained with."""
    return keras.activations.gelu(x, approximate=True)


_ACTIVATIONS = {"gelu_approximate": gelu_approximate}


def get_activation(identifier):
    """`keras.activations.get`, plus the names in this module (`"gelu_approximate"`)."""
    if isinstance(identifier, str) and identifier in _ACTIVATIONS:
        return _ACTIVATIONS[identifier]
    return keras.activations.get(identifier)

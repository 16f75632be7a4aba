"""Post-training weight quantization of tfllm models through Keras' own `quantize()`."""

import warnings

import keras

from tfllm.layers.quantized_kernels import QUANTIZATION_MODES, QuantizedKernels, one_collection


def quantize_model(model, mode="int8"):
    """Quantizes the weights of a built tfllm model in place and returns it.

    `keras.Model.quantize(mode)` quantizes the leaf layers Keras knows
    (`Dense`, `EinsumDense`, `Embedding`, `ReversibleEmbedding`); tfllm's
    attention keeps raw kernels inside a layer with sublayers, which Keras
    skips, so each `QuantizedKernels` layer (`MultiHeadAttention`, in every
    encoder/decoder block) is quantized here too. Other layers (LSTM cells,
    layer norms, position tables) stay in float.

    Args:
        model: a built Keras model (e.g. from `build_classifier`).
        mode: "int8" or "int4" (two weights packed per byte, in groups of
            128 inputs with their own scale). Weight-only: activations and
            products stay in the compute dtype.

    Returns:
        `model`, quantized.

    Raises:
        ValueError: unknown mode, an unbuilt model, or one already quantized.

    Example:
        >>> model = quantize_model(build_classifier("transformer", 8000, 2, 128), "int8")
    """
    if mode not in QUANTIZATION_MODES:
        raise ValueError(f"quantization mode must be one of {', '.join(QUANTIZATION_MODES)}. Received: mode={mode!r}")
    if not model.built:
        raise ValueError(f"{model.name}: call the model once (or build it) before quantizing it")
    if any(getattr(layer, "_is_quantized", False) for layer in model._flatten_layers()):
        raise ValueError(f"{model.name}: the model is already quantized")
    # Weight-only: TensorFlow's int8 x int8 CPU matmul is several times
    # slower than its float one, so activations stay float.
    if mode == "int8":
        config = keras.quantizers.Int8QuantizationConfig(activation_quantizer=None)
    else:
        config = keras.quantizers.Int4QuantizationConfig(activation_quantizer=None)
    with one_collection(), warnings.catch_warnings():
        # Keras warns once per layer it cannot quantize (dropout, norms, LSTM cells).
        warnings.simplefilter("ignore")
        model.quantize(config=config)
        for layer in model._flatten_layers():
            if isinstance(layer, QuantizedKernels) and not getattr(layer, "_is_quantized", False):
                layer.quantize(mode)
    return model


def quantized_layers(model):
    """`{layer path: quantization mode}` of the model's quantized layers."""
    return {layer.path: layer.quantization_mode for layer in model._flatten_layers() if layer.quantization_mode}

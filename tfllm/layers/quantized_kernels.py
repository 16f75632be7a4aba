"""Keras' `layer.quantize("int8" | "int4")` protocol for layers that hold raw kernel matrices."""

import contextlib
import gc

import keras
import numpy as np
from keras import ops

QUANTIZATION_MODES = ("int8", "int4")
# Symmetric ranges, as Keras' quantized Dense: int4 is [-8, 7], kept to +-7
# so that negating a weight never overflows.
_VALUE_RANGES = {"int8": (-127, 127), "int4": (-8, 7)}


@contextlib.contextmanager
def one_collection():
    """Runs the block with `gc.collect()` scanning only objects the block made, then collects once.

    Keras runs a full garbage collection each time a layer deletes a variable
    attribute, and quantizing deletes every float kernel it replaces: in a
    long-lived process holding about a million Python objects (TensorFlow and
    a few models), quantizing a run's classifier spent 63 of 71 s in those
    collections. Freezing the objects alive before the block
    keeps those collections to what the block allocated; the replaced kernels
    are freed by the one full collection at the end. Where something else has
    already frozen the heap, the block runs as it is.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.collect()


class QuantizedKernels:
    """Mixin: post-training weight quantization of the kernels a layer names.

    A layer lists its `(input_dim, output_dim)` kernels in
    `quantizable_kernels()` and multiplies by them with `kernel_matmul`.
    `layer.quantize("int8")` (or `"int4"`) then replaces each float kernel
    by an int8 one (int4: two values packed per byte along the input axis)
    with a float32 scale per output column, and switches the dtype policy to
    `"<mode>_from_<policy>"`, as Keras does for `Dense`. Quantization is
    weight-only: each call casts the kernel columns it uses to the compute
    dtype, multiplies, and divides the product by the column scales (as
    Keras' `Dense` does), because TensorFlow's int8 x int8 CPU matmul is
    several times slower than its float one; only core TensorFlow ops are
    used.

    A quantized layer saves and loads in `.keras` files: its config carries the
    quantized dtype policy, and building it again re-creates the quantized
    variables before their values are loaded.
    """

    def quantizable_kernels(self):
        """Names of the `(input_dim, output_dim)` kernel attributes to quantize."""
        raise NotImplementedError

    def quantize(self, mode=None, type_check=True, config=None):
        del type_check, config  # One scheme: abs-max per output column.
        if mode not in QUANTIZATION_MODES:
            raise NotImplementedError(
                f"{type(self).__name__} supports quantization modes {QUANTIZATION_MODES}. Received: mode={mode!r}"
            )
        with one_collection():
            self._quantize_kernels(mode)
        self._is_quantized = True
        if self.dtype_policy.quantization_mode is None:
            self.dtype_policy = keras.dtype_policies.get(f"{mode}_from_{self.dtype_policy.name}")

    def _quantize_kernels(self, mode):
        low, high = _VALUE_RANGES[mode]
        for name in self.quantizable_kernels():
            values = ops.convert_to_numpy(getattr(self, name)).astype("float32")
            scale = high / (np.abs(values).max(axis=0) + keras.config.epsilon())  # (output_dim,)
            quantized = np.clip(np.round(values * scale), low, high).astype("int8")
            rows = values.shape[0]
            if mode == "int4":
                quantized = ops.convert_to_numpy(keras.quantizers.pack_int4(quantized, axis=0)[0])
            delattr(self, name)
            kernel = self.add_weight(name=name, shape=quantized.shape, dtype="int8", initializer="zeros", trainable=False)
            kernel.assign(quantized)
            kernel_scale = self.add_weight(
                name=f"{name}_scale", shape=scale.shape, dtype="float32", initializer="ones", trainable=False
            )
            kernel_scale.assign(scale.astype("float32"))
            setattr(self, name, kernel)
            setattr(self, f"{name}_scale", kernel_scale)
            setattr(self, f"_{name}_rows", rows)

    def _post_build(self):
        super()._post_build()
        # Loading a quantized layer: build() made float kernels; swap them for
        # quantized ones so the saved int8 values have somewhere to go.
        if self.quantization_mode is not None and not getattr(self, "_is_quantized", False):
            # Sublayers built with `dtype=self.dtype_policy` (dropout) stay float.
            source = keras.dtype_policies.get(self.dtype_policy.name.split("_from_", 1)[1])
            for layer in self._flatten_layers(include_self=False):
                if layer.quantization_mode is not None:
                    layer.dtype_policy = source
            self.quantize(self.quantization_mode)

    def _int8_call(self, *args, **kwargs):
        return self.call(*args, **kwargs)

    def _int4_call(self, *args, **kwargs):
        return self.call(*args, **kwargs)

    def kernel_matmul(self, x, kernel, start=0, width=None):
        """`x @ kernel[:, start:start + width]`, quantized when the layer is.

        Args:
            x: `(..., input_dim)` inputs.
            kernel: one of the layer's kernels (the attribute itself).
            start: first output column to use.
            width: number of output columns (default: all from `start`).
        """
        name = kernel.name
        mode = self.quantization_mode if getattr(self, "_is_quantized", False) else None
        values = kernel if mode is None else ops.convert_to_tensor(kernel)
        width = values.shape[1] - start if width is None else width
        # Columns first: int4 packs along the input axis only, so a fused
        # projection unpacks and casts just the columns it uses.
        if start != 0 or width != values.shape[1]:
            values = values[:, start : start + width]
        if mode is None:
            return ops.matmul(x, values)
        if mode == "int4":
            values = keras.quantizers.unpack_int4(values, getattr(self, f"_{name}_rows"), axis=0)
        scale = getattr(self, f"{name}_scale")[start : start + width]
        # x @ (q / s) == (x @ q) / s with s per output column: one divide per output, not per weight.
        return ops.matmul(x, ops.cast(values, self.compute_dtype)) / ops.cast(scale, self.compute_dtype)

"""Copying weights between tfllm's `MultiHeadAttention` and Keras' own."""

from keras import ops


def load_keras_attention_weights(attention, layer):
    """Copies the weights of a built `keras.layers.MultiHeadAttention` into a tfllm one.

    Works for `keras_hub.layers.CachedMultiHeadAttention` too. Both layers
    must have the same `num_heads`, `key_dim`, `value_dim` and `use_bias`
    and be built (called once) on inputs of the same feature sizes.

    Args:
        attention: a built `tfllm.layers.MultiHeadAttention`.
        layer: a built `keras.layers.MultiHeadAttention`.
    """
    if not attention.built or not layer.built:
        raise ValueError(
            "Both layers must be built (called once) before copying weights. "
            f"Received: built={attention.built}, layer.built={layer.built}"
        )
    if (layer.num_heads, layer.key_dim, layer.value_dim, layer.use_bias) != (
        attention.num_heads,
        attention.key_dim,
        attention._value_head_dim,
        attention.use_bias,
    ):
        raise ValueError(
            "Layer hyper-parameters differ. Received: "
            f"layer=(num_heads={layer.num_heads}, key_dim={layer.key_dim}, "
            f"value_dim={layer.value_dim}, use_bias={layer.use_bias}), "
            f"attention=(num_heads={attention.num_heads}, key_dim={attention.key_dim}, "
            f"value_dim={attention._value_head_dim}, use_bias={attention.use_bias})"
        )

    def flat(dense):
        # EinsumDense kernel (dim, heads, head_dim) -> (dim, heads * head_dim)
        kernel = ops.convert_to_numpy(dense.kernel)
        kernel = kernel.reshape(kernel.shape[0], -1)
        bias = ops.convert_to_numpy(dense.bias).reshape(-1) if attention.use_bias else None
        return kernel, bias

    def assign(kernel_var, bias_var, parts):
        kernel_var.assign(ops.concatenate([p[0] for p in parts], axis=1))
        if bias_var is not None:
            bias_var.assign(ops.concatenate([p[1] for p in parts], axis=0))

    q, k, v = flat(layer.query_dense), flat(layer.key_dense), flat(layer.value_dense)
    if attention._fused:
        assign(attention.qkv_kernel, attention.qkv_bias, [q, k, v])
    else:
        assign(attention.query_kernel, attention.query_bias, [q])
        assign(attention.key_value_kernel, attention.key_value_bias, [k, v])
    out_kernel = ops.convert_to_numpy(layer.output_dense.kernel)
    # (heads, value_dim, *output) -> (heads * value_dim, prod(output))
    attention.output_kernel.assign(out_kernel.reshape(attention.output_kernel.shape))
    if attention.use_bias:
        attention.output_bias.assign(ops.convert_to_numpy(layer.output_dense.bias).reshape(-1))

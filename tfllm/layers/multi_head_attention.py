"""Multi-head scaled dot-product attention with a fused QKV projection and a KV cache."""

import math

import keras
from keras import ops

from tfllm._ops import slice_update
from tfllm._validation import check_positive_ints
from tfllm.layers.masks import combine_masks, compute_causal_mask, merge_padding_and_attention_mask
from tfllm.layers.quantized_kernels import QuantizedKernels

# Logit for disallowed positions; finite so a fully masked row gives no NaNs.
_MASKED_LOGIT = -1e9


@keras.saving.register_keras_serializable(package="tfllm")
class MultiHeadAttention(QuantizedKernels, keras.layers.Layer):
    """Multi-head scaled dot-product attention.

    A drop-in replacement for `keras.layers.MultiHeadAttention` (same call
    convention, same numbers) that projects query, key and value with one fused
    matrix multiplication for self-attention (`query is value`), with one query
    and one fused key/value projection for cross-attention, and that supports
    the fixed-shape key/value cache of `keras_hub.layers.CachedMultiHeadAttention`
    for incremental decoding. Softmax always runs in float32.

    When the query, key and value feature sizes are equal (the usual case) the
    projections are stored as one `qkv_kernel` of shape
    `(dim, num_heads * (2 * key_dim + value_dim))` laid out `[query | key | value]`,
    each part `(dim, num_heads, head_dim)` flattened. Otherwise the layer keeps a
    `query_kernel` and a fused `key_value_kernel`. Weights of a Keras layer can be
    copied with `load_keras_weights`; `quantize("int8" | "int4")` quantizes the kernels.

    Args:
        num_heads: number of attention heads.
        key_dim: size of each head for query and key.
        value_dim: size of each head for value; defaults to `key_dim`.
        dropout: dropout rate on the attention probabilities.
        use_bias: whether the projections have biases.
        output_shape: last dimension(s) of the output; defaults to the query's
            feature size.
        kernel_initializer: initializer of the projection kernels; each of the
            query, key and value parts is initialised like a separate
            `(dim, num_heads * head_dim)` dense kernel.
        bias_initializer: initializer of the projection biases.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        query: `(batch, query_len, dim)`.
        value: `(batch, key_len, dim)`. Pass the query tensor itself for
            self-attention.
        key: optional `(batch, key_len, dim)`; defaults to `value`.
        attention_mask: optional boolean `(batch, query_len, key_len)`, `True`
            where attention is allowed. Combined with the Keras masks of
            `query` and `value`/`key` (e.g. from `Embedding(mask_zero=True)`).
        use_causal_mask: whether query position `i` may only see keys `<= i`
            (offset by `cache_update_index` when decoding with a cache).
        return_attention_scores: also return the float32 attention
            probabilities, `(batch, num_heads, query_len, key_len)`.
        training: whether dropout is active.
        cache: optional `(batch, 2, max_length, num_heads, head_dim)` key/value
            cache. With `cache_update_index=None` the cached keys and values
            are used as they are and `value`/`key` are ignored.
        cache_update_index: position at which the keys and values projected
            from `value`/`key` are written into `cache` before attending.

    Returns:
        `output`, `(output, scores)`, `(output, cache)` or
        `(output, scores, cache)`, as `keras_hub.layers.CachedMultiHeadAttention`.

    Example:

    >>> mha = MultiHeadAttention(num_heads=2, key_dim=4)
    >>> x = np.ones((1, 3, 8), "float32")
    >>> mha(x, x, use_causal_mask=True).shape
    TensorShape([1, 3, 8])
    """

    def __init__(
        self,
        num_heads,
        key_dim,
        value_dim=None,
        dropout=0.0,
        use_bias=True,
        output_shape=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_ints(num_heads=num_heads, key_dim=key_dim)
        if value_dim is not None:
            check_positive_ints(value_dim=value_dim)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")
        if output_shape is not None:
            dims = (output_shape,) if isinstance(output_shape, int) else tuple(output_shape)
            if not dims or any(isinstance(d, bool) or not isinstance(d, int) or d <= 0 for d in dims):
                raise ValueError(
                    "`output_shape` must be a positive integer or a tuple of them. "
                    f"Received: output_shape={output_shape!r}"
                )
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = value_dim
        self.dropout = dropout
        self.use_bias = use_bias
        self.output_shape = output_shape
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.supports_masking = True
        self._value_head_dim = value_dim or key_dim
        self._fused = None

    def _output_dims_for(self, query_dim):
        if self.output_shape is None:
            return (query_dim,)
        return (self.output_shape,) if isinstance(self.output_shape, int) else tuple(self.output_shape)

    # -- weights -----------------------------------------------------------

    def _projection_initializer(self, parts):
        """Initialises a fused kernel part by part, each as its own dense kernel."""

        def initializer(shape, dtype=None):
            return ops.concatenate(
                [self.kernel_initializer((shape[0], width), dtype=dtype) for width in parts],
                axis=1,
            )

        return initializer

    def _add_projection(self, name, input_dim, parts):
        kernel = self.add_weight(
            name=f"{name}_kernel",
            shape=(input_dim, sum(parts)),
            initializer=self._projection_initializer(parts),
        )
        bias = None
        if self.use_bias:
            bias = self.add_weight(
                name=f"{name}_bias", shape=(sum(parts),), initializer=self.bias_initializer
            )
        return kernel, bias

    def build(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        query_dim, value_dim, key_dim = query_shape[-1], value_shape[-1], key_shape[-1]
        if key_dim != value_dim:
            raise ValueError(
                "`key` and `value` must have the same feature size (the key/value "
                f"projection is fused). Received: key_shape={tuple(key_shape)}, "
                f"value_shape={tuple(value_shape)}"
            )
        h, k, v = self.num_heads, self.key_dim, self._value_head_dim
        self._fused = query_dim == value_dim
        if self._fused:
            self.qkv_kernel, self.qkv_bias = self._add_projection("qkv", query_dim, (h * k, h * k, h * v))
        else:
            self.query_kernel, self.query_bias = self._add_projection("query", query_dim, (h * k,))
            self.key_value_kernel, self.key_value_bias = self._add_projection(
                "key_value", value_dim, (h * k, h * v)
            )
        out_dims = self._output_dims_for(query_dim)
        self._output_dims = out_dims
        self.output_kernel = self.add_weight(
            name="output_kernel",
            shape=(h * v, math.prod(out_dims)),
            initializer=self.kernel_initializer,
        )
        self.output_bias = None
        if self.use_bias:
            self.output_bias = self.add_weight(
                name="output_bias", shape=(math.prod(out_dims),), initializer=self.bias_initializer
            )
        self.attention_dropout = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="attention_dropout"
        )
        self.built = True

    def quantizable_kernels(self):
        return (("qkv_kernel",) if self._fused else ("query_kernel", "key_value_kernel")) + ("output_kernel",)

    # -- projections ---------------------------------------------------------

    def _project(self, x, kernel, bias, start, width):
        """Applies columns `[start, start + width)` of a fused projection."""
        y = self.kernel_matmul(x, kernel, start, width)
        if bias is not None and width != bias.shape[0]:
            bias = bias[start : start + width]
        return y if bias is None else y + bias

    def _split_heads(self, x, head_dims):
        """Splits a (fused) projection into one heads-first tensor per part.

        Args:
            x: `(batch, length, num_heads * sum(head_dims))`, parts laid out
                one after the other, each `(num_heads, head_dim)` flattened.
            head_dims: head size of each part.

        Returns:
            A list of `(batch, num_heads, length, head_dim)` tensors.
        """
        batch, length, h = ops.shape(x)[0], ops.shape(x)[1], self.num_heads
        if len(set(head_dims)) == 1:
            # One transpose for all parts: the attention matmuls then run on
            # contiguous heads with no further transposes.
            x = ops.reshape(x, (batch, length, len(head_dims), h, head_dims[0]))  # (batch, len, parts, heads, d)
            x = ops.transpose(x, (2, 0, 3, 1, 4))  # (parts, batch, heads, len, d)
            # unstack, not indexing: its gradient is one stack instead of one
            # zero-padded full-size tensor per part.
            return ops.unstack(x, num=len(head_dims), axis=0)
        parts, start = [], 0
        for head_dim in head_dims:
            part = ops.reshape(x[..., start : start + h * head_dim], (batch, length, h, head_dim))
            parts.append(ops.transpose(part, (0, 2, 1, 3)))  # (batch, heads, len, d)
            start += h * head_dim
        return parts

    def _project_query_key_value(self, query, key, value, need_key_value):
        """Returns `(q, k, v)` with shapes `(batch, heads, length, head_dim)`."""
        h, kd, vd = self.num_heads, self.key_dim, self._value_head_dim
        hk, hv = h * kd, h * vd
        if self._fused:
            kernel, bias, kv_start = self.qkv_kernel, self.qkv_bias, hk
            if need_key_value and query is value and key is value:
                qkv = self._project(query, kernel, bias, 0, 2 * hk + hv)
                return self._split_heads(qkv, (kd, kd, vd))
            q = self._project(query, kernel, bias, 0, hk)
        else:
            q = self._project(query, self.query_kernel, self.query_bias, 0, hk)
            kernel, bias, kv_start = self.key_value_kernel, self.key_value_bias, 0
        (q,) = self._split_heads(q, (kd,))
        if not need_key_value:
            return q, None, None
        if key is value:
            kv = self._project(value, kernel, bias, kv_start, hk + hv)
            k, v = self._split_heads(kv, (kd, vd))
        else:
            (k,) = self._split_heads(self._project(key, kernel, bias, kv_start, hk), (kd,))
            (v,) = self._split_heads(self._project(value, kernel, bias, kv_start + hk, hv), (vd,))
        return q, k, v

    # -- attention -----------------------------------------------------------

    def _attend(self, q, k, v, mask, training):
        k, v = ops.cast(k, q.dtype), ops.cast(v, q.dtype)
        q = q * ops.cast(1.0 / math.sqrt(self.key_dim), q.dtype)
        logits = ops.einsum("bhtd,bhsd->bhts", q, k)  # (batch, heads, query_len, key_len)
        # Softmax in float32 whatever the compute dtype: bfloat16 logits lose
        # the small differences that decide the attention distribution.
        logits = ops.cast(logits, "float32")
        if mask is not None:
            mask = ops.expand_dims(mask, axis=1)  # (batch, 1, query_len, key_len)
            logits = ops.where(mask, logits, _MASKED_LOGIT)
        scores = ops.softmax(logits, axis=-1)
        if mask is not None:
            # A fully masked row (a padded query) attends to nothing.
            scores = ops.where(mask, scores, 0.0)
        probs = self.attention_dropout(ops.cast(scores, self.compute_dtype), training=training)
        output = ops.einsum("bhts,bhsd->bhtd", probs, v)  # (batch, heads, query_len, value_dim)
        return output, scores

    def call(
        self,
        query,
        value,
        key=None,
        attention_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        training=None,
        cache=None,
        cache_update_index=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
    ):
        if key is None:
            key = value
            key_mask = None
        if cache is None and cache_update_index is not None:
            raise ValueError(
                "`cache_update_index` needs a `cache`. "
                f"Received: cache=None, cache_update_index={cache_update_index}"
            )
        if cache is not None and self.key_dim != self._value_head_dim:
            raise ValueError(
                "A key/value cache needs key_dim == value_dim. "
                f"Received: key_dim={self.key_dim}, value_dim={self.value_dim}"
            )

        use_cached_key_value = cache is not None and cache_update_index is None
        q, k, v = self._project_query_key_value(query, key, value, not use_cached_key_value)
        if cache is not None:
            if not use_cached_key_value:
                # The cache keeps keras_hub's (batch, 2, max_length, heads, head_dim) layout.
                # One update of the whole cache: updating k and v apart and stacking them
                # copies the cache once more per step outside XLA.
                update = ops.stack((k, v), axis=1)  # (batch, 2, heads, len, head_dim)
                update = ops.cast(ops.transpose(update, (0, 1, 3, 2, 4)), cache.dtype)
                cache = slice_update(cache, [0, 0, cache_update_index, 0, 0], update)
            k, v = cache[:, 0, ...], cache[:, 1, ...]  # (batch, max_length, heads, head_dim)
            k = ops.transpose(k, (0, 2, 1, 3))  # (batch, heads, max_length, head_dim)
            v = ops.transpose(v, (0, 2, 1, 3))
            # The value/key masks describe the new tokens, not the whole cache.
            value_mask = key_mask = None

        mask = merge_padding_and_attention_mask(
            value if cache is None else None, value_mask, attention_mask
        )
        if query_mask is not None:
            query_mask = ops.expand_dims(ops.cast(query_mask, "bool"), -1)  # (batch, query_len, 1)
        if key_mask is not None:
            key_mask = ops.expand_dims(ops.cast(key_mask, "bool"), 1)  # (batch, 1, key_len)
        causal_mask = None
        if use_causal_mask:
            causal_mask = compute_causal_mask(
                ops.shape(q)[2],
                ops.shape(k)[2],
                0 if cache_update_index is None else cache_update_index,
            )
        mask = combine_masks(mask, query_mask, key_mask, causal_mask)

        output, scores = self._attend(q, k, v, mask, training)
        output = ops.transpose(output, (0, 2, 1, 3))  # (batch, query_len, heads, value_dim)
        # (batch, query_len, heads, value_dim) -> (batch, query_len, heads * value_dim)
        output = ops.reshape(output, (ops.shape(output)[0], ops.shape(output)[1], -1))
        output = self.kernel_matmul(output, self.output_kernel)
        if self.output_bias is not None:
            output = output + self.output_bias
        if len(self._output_dims) > 1:
            output = ops.reshape(output, (ops.shape(output)[0], ops.shape(output)[1], *self._output_dims))

        if return_attention_scores and cache is not None:
            return output, scores, cache
        if return_attention_scores:
            return output, scores
        if cache is not None:
            return output, cache
        return output

    def compute_output_spec(
        self,
        query,
        value,
        key=None,
        attention_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        training=None,
        cache=None,
        cache_update_index=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
    ):
        out_dims = self._output_dims_for(query.shape[-1])
        output = keras.KerasTensor(tuple(query.shape[:-1]) + tuple(out_dims), dtype=self.compute_dtype)
        key_length = cache.shape[2] if cache is not None else value.shape[1]
        scores = keras.KerasTensor(
            (query.shape[0], self.num_heads, query.shape[1], key_length), dtype="float32"
        )
        if return_attention_scores and cache is not None:
            return output, scores, keras.KerasTensor(cache.shape, dtype=cache.dtype)
        if return_attention_scores:
            return output, scores
        if cache is not None:
            return output, keras.KerasTensor(cache.shape, dtype=cache.dtype)
        return output

    def load_keras_weights(self, layer):
        """Copies the weights of a built `keras.layers.MultiHeadAttention` (same sizes).

        See `tfllm.layers.keras_interop.load_keras_attention_weights`.
        """
        from tfllm.layers.keras_interop import load_keras_attention_weights

        load_keras_attention_weights(self, layer)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "value_dim": self.value_dim,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "output_shape": self.output_shape,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config

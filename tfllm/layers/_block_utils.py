"""Helpers and the base class shared by the Transformer blocks."""

import keras

from tfllm._validation import check_positive_ints, check_rates
from tfllm.layers.activations import get_activation
from tfllm.layers.multi_head_attention import MultiHeadAttention


def validate_block_args(intermediate_dim, num_heads, dropout, layer_norm_epsilon):
    """Checks the hyper-parameters shared by the encoder and decoder blocks."""
    check_positive_ints(intermediate_dim=intermediate_dim, num_heads=num_heads)
    check_rates(dropout=dropout)
    if not layer_norm_epsilon > 0:
        raise ValueError(
            f"`layer_norm_epsilon` must be positive. Received: layer_norm_epsilon={layer_norm_epsilon!r}"
        )


def head_dim_for(hidden_dim, num_heads):
    """Head size `hidden_dim // num_heads`, as keras_hub computes it."""
    head_dim = hidden_dim // num_heads
    if head_dim == 0:
        raise ValueError(
            f"The hidden size ({hidden_dim}) must be at least `num_heads`. Received: num_heads={num_heads}"
        )
    return head_dim


def clone_initializer(initializer):
    """A separate initializer object per sublayer (Keras initializers must not be shared)."""
    return initializer.__class__.from_config(initializer.get_config())


def copy_sublayer_weights(target, source, names):
    """Copies weights from `source` sublayers into `target` ones.

    Args:
        target: a tfllm block.
        source: the matching keras_hub layer, built on the same shapes.
        names: dict mapping `target` sublayer attributes to `source` ones.
    """
    for mine, theirs in names.items():
        mine, theirs = getattr(target, mine), getattr(source, theirs)
        if isinstance(mine, MultiHeadAttention):
            mine.load_keras_weights(theirs)
        else:
            mine.set_weights(theirs.get_weights())


class TransformerBlock(keras.layers.Layer):
    """Base of the encoder and decoder blocks: their arguments, config and shared sublayers.

    Subclasses build their attention sublayers with `_attention`, the
    feed-forward network with `_build_feedforward`, and apply it with
    `_feedforward`.
    """

    def __init__(
        self,
        intermediate_dim,
        num_heads,
        dropout=0,
        activation="relu",
        layer_norm_epsilon=1e-05,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        normalize_first=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_block_args(intermediate_dim, num_heads, dropout, layer_norm_epsilon)
        self.intermediate_dim = intermediate_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.activation = get_activation(activation)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.normalize_first = normalize_first
        self.supports_masking = True

    def _initializers(self):
        return {
            "kernel_initializer": clone_initializer(self.kernel_initializer),
            "bias_initializer": clone_initializer(self.bias_initializer),
        }

    def _layer_norm(self, name, shape):
        layer = keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name)
        layer.build(shape)
        return layer

    def _dropout(self, name):
        return keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name=name)

    def _attention(self, name, query_shape, value_shape):
        layer = MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=head_dim_for(query_shape[-1], self.num_heads),
            dropout=self.dropout,
            dtype=self.dtype_policy,
            name=name,
            **self._initializers(),
        )
        layer.build(query_shape, value_shape)
        return layer

    def _build_feedforward(self, inputs_shape):
        self.feedforward_layer_norm = self._layer_norm("feedforward_layer_norm", inputs_shape)
        self.feedforward_intermediate_dense = keras.layers.Dense(
            self.intermediate_dim,
            activation=self.activation,
            dtype=self.dtype_policy,
            name="feedforward_intermediate_dense",
            **self._initializers(),
        )
        self.feedforward_intermediate_dense.build(inputs_shape)
        self.feedforward_output_dense = keras.layers.Dense(
            inputs_shape[-1],
            dtype=self.dtype_policy,
            name="feedforward_output_dense",
            **self._initializers(),
        )
        self.feedforward_output_dense.build(tuple(inputs_shape[:-1]) + (self.intermediate_dim,))
        self.feedforward_dropout = self._dropout("feedforward_dropout")

    def _feedforward(self, x, training):
        residual = x
        if self.normalize_first:
            x = self.feedforward_layer_norm(x)
        x = self.feedforward_output_dense(self.feedforward_intermediate_dense(x))
        x = self.feedforward_dropout(x, training=training) + residual
        if not self.normalize_first:
            x = self.feedforward_layer_norm(x)
        return x

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "intermediate_dim": self.intermediate_dim,
                "num_heads": self.num_heads,
                "dropout": self.dropout,
                "activation": keras.activations.serialize(self.activation),
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "normalize_first": self.normalize_first,
            }
        )
        return config

"""Transformer encoder block (self-attention + feed-forward), pre- or post-layer-norm."""

import keras

from tfllm.layers._block_utils import clone_initializer, copy_sublayer_weights, head_dim_for, validate_block_args
from tfllm.layers.masks import merge_padding_and_attention_mask
from tfllm.layers.multi_head_attention import MultiHeadAttention


@keras.saving.register_keras_serializable(package="tfllm")
class TransformerEncoderBlock(keras.layers.Layer):
    """Transformer encoder block: self-attention and a feed-forward network.

    Mirrors `keras_hub.layers.TransformerEncoder` (same arguments, call
    arguments and numbers) on top of `tfllm.layers.MultiHeadAttention`.

    Args:
        intermediate_dim: hidden size of the feed-forward network.
        num_heads: number of attention heads; head size is `hidden // num_heads`.
        dropout: dropout rate of attention probabilities and of both residual
            branches.
        activation: activation of the feed-forward network.
        layer_norm_epsilon: epsilon of the layer normalizations.
        kernel_initializer: initializer of dense and attention kernels.
        bias_initializer: initializer of dense and attention biases.
        normalize_first: pre-layer-norm (GPT-2 style) if `True`, post-layer-norm
            (original Transformer, BERT) if `False`.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(batch, length, hidden)`.
        padding_mask: optional `(batch, length)` mask, `True` for real tokens;
            defaults to the Keras mask of `inputs`.
        attention_mask: optional `(batch, length, length)` mask.
        training: whether dropout is active.
        return_attention_scores: also return the attention probabilities.

    Returns:
        `(batch, length, hidden)`, plus the scores if asked.

    Example:

    >>> block = TransformerEncoderBlock(intermediate_dim=32, num_heads=2)
    >>> block(np.zeros((1, 4, 8), "float32")).shape
    TensorShape([1, 4, 8])
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
        self.activation = keras.activations.get(activation)
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
        layer = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
        )
        layer.build(shape)
        return layer

    def build(self, inputs_shape):
        hidden_dim = inputs_shape[-1]
        head_dim = head_dim_for(hidden_dim, self.num_heads)
        self.self_attention = MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=head_dim,
            dropout=self.dropout,
            dtype=self.dtype_policy,
            name="self_attention",
            **self._initializers(),
        )
        self.self_attention.build(inputs_shape, inputs_shape)
        self.self_attention_layer_norm = self._layer_norm("self_attention_layer_norm", inputs_shape)
        self.self_attention_dropout = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="self_attention_dropout"
        )
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
            hidden_dim,
            dtype=self.dtype_policy,
            name="feedforward_output_dense",
            **self._initializers(),
        )
        self.feedforward_output_dense.build(tuple(inputs_shape[:-1]) + (self.intermediate_dim,))
        self.feedforward_dropout = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="feedforward_dropout"
        )
        self.built = True

    def call(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
    ):
        x = inputs
        mask = merge_padding_and_attention_mask(inputs, padding_mask, attention_mask)

        residual = x
        if self.normalize_first:
            x = self.self_attention_layer_norm(x)
        x = self.self_attention(
            x,
            x,
            attention_mask=mask,
            return_attention_scores=return_attention_scores,
            training=training,
        )
        if return_attention_scores:
            x, scores = x
        x = self.self_attention_dropout(x, training=training) + residual
        if not self.normalize_first:
            x = self.self_attention_layer_norm(x)

        residual = x
        if self.normalize_first:
            x = self.feedforward_layer_norm(x)
        x = self.feedforward_output_dense(self.feedforward_intermediate_dense(x))
        x = self.feedforward_dropout(x, training=training) + residual
        if not self.normalize_first:
            x = self.feedforward_layer_norm(x)
        if return_attention_scores:
            return x, scores
        return x

    def load_keras_hub_weights(self, layer):
        """Copies the weights of a built `keras_hub.layers.TransformerEncoder`."""
        copy_sublayer_weights(
            self,
            layer,
            {
                "self_attention": "_self_attention_layer",
                "self_attention_layer_norm": "_self_attention_layer_norm",
                "feedforward_layer_norm": "_feedforward_layer_norm",
                "feedforward_intermediate_dense": "_feedforward_intermediate_dense",
                "feedforward_output_dense": "_feedforward_output_dense",
            },
        )

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

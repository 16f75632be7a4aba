"""Transformer encoder block (self-attention + feed-forward), pre- or post-layer-norm."""

import keras

from tfllm.layers._block_utils import TransformerBlock, copy_sublayer_weights
from tfllm.layers.masks import merge_padding_and_attention_mask


@keras.saving.register_keras_serializable(package="tfllm")
class TransformerEncoderBlock(TransformerBlock):
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

    def build(self, inputs_shape):
        self.self_attention = self._attention("self_attention", inputs_shape, inputs_shape)
        self.self_attention_layer_norm = self._layer_norm("self_attention_layer_norm", inputs_shape)
        self.self_attention_dropout = self._dropout("self_attention_dropout")
        self._build_feedforward(inputs_shape)
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

        x = self._feedforward(x, training)
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

"""Transformer decoder block: causal self-attention, optional cross-attention, feed-forward."""

import keras
from keras import ops

from tfllm.layers._block_utils import TransformerBlock, copy_sublayer_weights
from tfllm.layers.masks import combine_masks, compute_causal_mask, merge_padding_and_attention_mask


@keras.saving.register_keras_serializable(package="tfllm")
class TransformerDecoderBlock(TransformerBlock):
    """Transformer decoder block with key/value caches for incremental decoding.

    Mirrors `keras_hub.layers.TransformerDecoder` (same arguments, call
    arguments, return conventions and numbers) on top of
    `tfllm.layers.MultiHeadAttention`. The block has cross-attention when it is
    first called (built) with an `encoder_sequence`; a block built without one
    is decoder-only (GPT style), and the choice cannot change afterwards.

    Args:
        intermediate_dim: hidden size of the feed-forward network.
        num_heads: number of attention heads; head size is `hidden // num_heads`.
        dropout: dropout rate of attention probabilities and residual branches.
        activation: activation of the feed-forward network.
        layer_norm_epsilon: epsilon of the layer normalizations.
        kernel_initializer: initializer of dense and attention kernels.
        bias_initializer: initializer of dense and attention biases.
        normalize_first: pre-layer-norm if `True`, post-layer-norm if `False`.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        decoder_sequence: `(batch, length, hidden)`.
        encoder_sequence: `(batch, encoder_length, encoder_hidden)`; required
            for a block with cross-attention unless a `cross_attention_cache`
            is passed with `cross_attention_cache_update_index=None`.
        decoder_padding_mask: `(batch, length)`; defaults to the Keras mask
            of `decoder_sequence`.
        decoder_attention_mask: `(batch, length, length)`.
        encoder_padding_mask: `(batch, encoder_length)`; defaults to the Keras
            mask of `encoder_sequence`.
        encoder_attention_mask: `(batch, length, encoder_length)`.
        self_attention_cache: `(batch, 2, max_length, num_heads, head_dim)`.
        self_attention_cache_update_index: where the current tokens go in
            `self_attention_cache` (their position in the sequence).
        cross_attention_cache: `(batch, 2, encoder_length, num_heads, head_dim)`.
        cross_attention_cache_update_index: `0` to fill the cross cache from
            `encoder_sequence`, `None` to reuse it.
        use_causal_mask: whether token `i` only sees tokens `<= i`.
        return_cross_attention_scores: also return the cross-attention
            probabilities, float32 `(batch, num_heads, length, encoder_length)`
            (a block with cross-attention, called without caches).
        training: whether dropout is active.

    Returns:
        `outputs`; `(outputs, self_attention_cache)` with a self cache and no
        cross-attention; `(outputs, self_attention_cache, cross_attention_cache)`
        with both caches; `(outputs, cross_attention_scores)` with
        `return_cross_attention_scores`.

    Example:

    >>> block = TransformerDecoderBlock(intermediate_dim=32, num_heads=2)
    >>> block(np.zeros((1, 4, 8), "float32")).shape
    TensorShape([1, 4, 8])
    """

    def build(self, decoder_sequence_shape, encoder_sequence_shape=None):
        self.self_attention = self._attention("self_attention", decoder_sequence_shape, decoder_sequence_shape)
        self.self_attention_layer_norm = self._layer_norm("self_attention_layer_norm", decoder_sequence_shape)
        self.self_attention_dropout = self._dropout("self_attention_dropout")
        self.cross_attention = None
        if encoder_sequence_shape is not None:
            self.cross_attention = self._attention("cross_attention", decoder_sequence_shape, encoder_sequence_shape)
            self.cross_attention_layer_norm = self._layer_norm("cross_attention_layer_norm", decoder_sequence_shape)
            self.cross_attention_dropout = self._dropout("cross_attention_dropout")
        self._build_feedforward(decoder_sequence_shape)
        self.built = True

    def _check_call_args(self, encoder_sequence, self_cache, cross_cache, cross_index, return_scores):
        has_cross = self.cross_attention is not None
        if return_scores and (not has_cross or self_cache is not None):
            raise ValueError(
                "return_cross_attention_scores needs a block with cross-attention called "
                "without caches. Received: "
                f"cross-attention={has_cross}, self_attention_cache is None={self_cache is None}"
            )
        if not has_cross and (encoder_sequence is not None or cross_cache is not None):
            raise ValueError(
                "This block was built without cross-attention; call it on the decoder "
                "sequence only, or build it with `block(decoder_sequence, encoder_sequence)`. "
                "Received: encoder_sequence or cross_attention_cache"
            )
        if has_cross:
            if encoder_sequence is None and (cross_cache is None or cross_index is not None):
                raise ValueError(
                    "This block has cross-attention: pass `encoder_sequence`, or a filled "
                    "`cross_attention_cache` with `cross_attention_cache_update_index=None`. "
                    "Received: encoder_sequence=None"
                )
            if (self_cache is None) != (cross_cache is None):
                raise ValueError(
                    "With cross-attention, `self_attention_cache` and `cross_attention_cache` "
                    "must be both set or both None. Received: "
                    f"self_attention_cache is None={self_cache is None}, "
                    f"cross_attention_cache is None={cross_cache is None}"
                )

    def call(
        self,
        decoder_sequence,
        encoder_sequence=None,
        decoder_padding_mask=None,
        decoder_attention_mask=None,
        encoder_padding_mask=None,
        encoder_attention_mask=None,
        self_attention_cache=None,
        self_attention_cache_update_index=None,
        cross_attention_cache=None,
        cross_attention_cache_update_index=None,
        use_causal_mask=True,
        return_cross_attention_scores=False,
        training=None,
    ):
        self._check_call_args(
            encoder_sequence, self_attention_cache, cross_attention_cache, cross_attention_cache_update_index,
            return_cross_attention_scores,
        )
        self_mask = merge_padding_and_attention_mask(
            decoder_sequence, decoder_padding_mask, decoder_attention_mask
        )
        if use_causal_mask:
            key_length = ops.shape(decoder_sequence)[1]
            if self_attention_cache is not None:
                key_length = ops.shape(self_attention_cache)[2]
            index = self_attention_cache_update_index
            causal_mask = compute_causal_mask(
                ops.shape(decoder_sequence)[1], key_length, 0 if index is None else index
            )
            self_mask = combine_masks(self_mask, causal_mask)

        x = decoder_sequence
        residual = x
        if self.normalize_first:
            x = self.self_attention_layer_norm(x)
        x = self.self_attention(
            x,
            x,
            attention_mask=self_mask,
            cache=self_attention_cache,
            cache_update_index=self_attention_cache_update_index,
            training=training,
        )
        if self_attention_cache is not None:
            x, self_attention_cache = x
        x = self.self_attention_dropout(x, training=training) + residual
        if not self.normalize_first:
            x = self.self_attention_layer_norm(x)

        if self.cross_attention is not None:
            cross_mask = merge_padding_and_attention_mask(
                encoder_sequence, encoder_padding_mask, encoder_attention_mask
            )
            residual = x
            if self.normalize_first:
                x = self.cross_attention_layer_norm(x)
            x = self.cross_attention(
                x,
                x if encoder_sequence is None else encoder_sequence,
                attention_mask=cross_mask,
                cache=cross_attention_cache,
                cache_update_index=cross_attention_cache_update_index,
                return_attention_scores=return_cross_attention_scores,
                training=training,
            )
            if cross_attention_cache is not None:
                x, cross_attention_cache = x
            if return_cross_attention_scores:
                x, cross_scores = x
            x = self.cross_attention_dropout(x, training=training) + residual
            if not self.normalize_first:
                x = self.cross_attention_layer_norm(x)

        x = self._feedforward(x, training)

        if return_cross_attention_scores:
            return x, cross_scores
        if self_attention_cache is None:
            return x
        if self.cross_attention is not None:
            return x, self_attention_cache, cross_attention_cache
        return x, self_attention_cache

    def load_keras_hub_weights(self, layer):
        """Copies the weights of a built `keras_hub.layers.TransformerDecoder`.

        Both layers must have been built on the same shapes (with or without
        an encoder sequence).
        """
        names = {
            "self_attention": "_self_attention_layer",
            "self_attention_layer_norm": "_self_attention_layer_norm",
            "feedforward_intermediate_dense": "_feedforward_intermediate_dense",
            "feedforward_output_dense": "_feedforward_output_dense",
            "feedforward_layer_norm": "_feedforward_layer_norm",
        }
        if self.cross_attention is not None:
            names.update(
                {
                    "cross_attention": "_cross_attention_layer",
                    "cross_attention_layer_norm": "_cross_attention_layer_norm",
                }
            )
        copy_sublayer_weights(self, layer, names)

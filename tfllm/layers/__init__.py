"""Keras 3 layers: embeddings, multi-head attention and Transformer blocks."""

from tfllm.layers.activations import gelu_approximate
from tfllm.layers.multi_head_attention import MultiHeadAttention
from tfllm.layers.token_and_position_embedding import TokenAndPositionEmbedding
from tfllm.layers.transformer_decoder_block import TransformerDecoderBlock
from tfllm.layers.transformer_encoder_block import TransformerEncoderBlock

__all__ = [
    "MultiHeadAttention",
    "TokenAndPositionEmbedding",
    "TransformerDecoderBlock",
    "TransformerEncoderBlock",
    "gelu_approximate",
]

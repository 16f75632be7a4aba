"""GPT-style decoder backbone built from tfllm layers, with key/value-cached decoding."""

import keras
import keras_hub
from keras import ops

from tfllm.layers.activations import gelu_approximate
from tfllm.layers.token_and_position_embedding import TokenAndPositionEmbedding
from tfllm.layers.transformer_decoder_block import TransformerDecoderBlock
from tfllm.models.encoder_backbone import check_backbone_args, truncated_normal


@keras.saving.register_keras_serializable(package="tfllm")
class DecoderBackbone(keras_hub.models.Backbone):
    """GPT-2 decoder: token + position embeddings, pre-norm causal blocks, a final layer norm.

    Inputs and outputs match `keras_hub.models.GPT2Backbone`, so a GPT-2
    checkpoint converts weight for weight (`tfllm.models.load_backbone`). The
    blocks use tanh GELU and causal self-attention without cross-attention.
    Save with `save_to_preset(dir)`, load with `DecoderBackbone.from_preset(dir)`.

    Args:
        vocabulary_size: number of token ids.
        num_layers: number of `TransformerDecoderBlock`s.
        num_heads: attention heads per block (must divide `hidden_dim`).
        hidden_dim: model width.
        intermediate_dim: feed-forward width.
        max_sequence_length: size of the position table (longest sequence).
        dropout: dropout of the embeddings, attention and residual branches.
        layer_norm_epsilon: epsilon of every layer normalization.
        dtype: dtype policy of the layers.
        **kwargs: `keras.Model` arguments (`name`, `trainable`).

    Call arguments:
        inputs: dict of int32 `(batch, length)` tensors `token_ids` and
            `padding_mask` (1 for real tokens).

    Returns:
        `(batch, length, hidden_dim)` after the final layer norm.

    Example:

    >>> backbone = DecoderBackbone(100, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16)
    >>> backbone({"token_ids": np.array([[2, 5, 0]]), "padding_mask": np.array([[1, 1, 0]])}).shape
    TensorShape([1, 3, 8])
    """

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        max_sequence_length=1024,
        dropout=0.1,
        layer_norm_epsilon=1e-5,
        dtype=None,
        **kwargs,
    ):
        check_backbone_args(vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim,
                            max_sequence_length, dropout)
        if not layer_norm_epsilon > 0:
            raise ValueError(
                f"`layer_norm_epsilon` must be positive. Received: layer_norm_epsilon={layer_norm_epsilon!r}"
            )
        self.embedding = TokenAndPositionEmbedding(
            vocabulary_size,
            max_sequence_length,
            hidden_dim,
            embeddings_initializer=truncated_normal(),
            dtype=dtype,
            name="embedding",
        )
        self.embeddings_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="embeddings_dropout")
        self.transformer_layers = [
            TransformerDecoderBlock(
                intermediate_dim,
                num_heads,
                dropout=dropout,
                activation=gelu_approximate,
                layer_norm_epsilon=layer_norm_epsilon,
                kernel_initializer=truncated_normal(),
                normalize_first=True,
                dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="layer_norm"
        )

        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        x = self.embeddings_dropout(self.embedding(token_ids))  # (batch, length, hidden)
        for block in self.transformer_layers:
            x = block(x, decoder_padding_mask=padding_mask)
        super().__init__(
            inputs={"token_ids": token_ids, "padding_mask": padding_mask},
            outputs=self.layer_norm(x),
            dtype=dtype,
            **kwargs,
        )
        self.token_embedding = self.embedding.token_embedding
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.max_sequence_length = max_sequence_length
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon

    def empty_cache(self, batch_size, length):
        """Zero key/value caches: a tuple of `(batch, 2, length, heads, head_dim)` per block."""
        shape = (batch_size, 2, length, self.num_heads, self.hidden_dim // self.num_heads)
        return tuple(ops.zeros(shape, dtype=self.compute_dtype) for _ in self.transformer_layers)

    def call_with_cache(self, token_ids, cache, index):
        """Runs `token_ids` placed at position `index`, reading and updating `cache`.

        Args:
            token_ids: int `(batch, length)`.
            cache: the tuple of `empty_cache` (or of a previous call).
            index: position of the first of `token_ids` (int or scalar tensor).

        Returns:
            `(hidden (batch, length, hidden_dim), cache)`.
        """
        x = self.embedding(token_ids, start_index=index)
        updated = []
        for block, layer_cache in zip(self.transformer_layers, cache):
            x, layer_cache = block(x, self_attention_cache=layer_cache, self_attention_cache_update_index=index)
            updated.append(layer_cache)
        return self.layer_norm(x), tuple(updated)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "max_sequence_length": self.max_sequence_length,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config

"""GPT-style decoder-only language model with cached generation."""

import keras
from keras import ops

from tfllm._validation import check_divisible, check_positive_ints, check_rates
from tfllm.generation import CompiledDecoders
from tfllm.layers import TokenAndPositionEmbedding, TransformerDecoderBlock
from tfllm.models.causal_generation import CausalGenerationMixin
from tfllm.models.language_model import LanguageModelMixin


@keras.saving.register_keras_serializable(package="tfllm")
class CausalLM(CausalGenerationMixin, LanguageModelMixin, keras.Model):
    """Decoder-only Transformer language model (GPT-2 layout) with `generate()`.

    Pre-norm `TransformerDecoderBlock`s without cross-attention over learned
    token and position embeddings; the output projection is tied to the token
    embedding. `compile()` defaults to a padding-masked cross-entropy and
    reports perplexity.

    Args:
        vocabulary_size: number of token ids.
        sequence_length: longest sequence (prompt + generated) the model sees.
        num_layers: number of decoder blocks.
        num_heads: attention heads per block.
        hidden_dim: embedding and model width.
        intermediate_dim: feed-forward width.
        dropout: dropout rate inside the blocks.
        position: "learned" or "sinusoidal" position embeddings.
        pad_token_id: padding id (masked in the loss and perplexity).
        end_token_id: id that ends a generated sequence, or None.

    Call arguments:
        token_ids: int tensor (batch, length).
        padding_mask: optional bool tensor (batch, length); defaults to
            `token_ids != pad_token_id`.
        training: whether dropout is active.

    Returns:
        Logits (batch, length, vocabulary_size), float32.

    Example:

    ```python
    lm = CausalLM(vocabulary_size=1000, sequence_length=64)
    lm.compile("adam")
    lm.fit(token_ids[:, :-1], token_ids[:, 1:])
    lm.generate([[5, 17, 9]], max_length=20)
    ```
    """

    def __init__(
        self,
        vocabulary_size,
        sequence_length,
        num_layers=2,
        num_heads=4,
        hidden_dim=128,
        intermediate_dim=512,
        dropout=0.1,
        position="learned",
        pad_token_id=0,
        end_token_id=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_ints(
            vocabulary_size=vocabulary_size,
            sequence_length=sequence_length,
            num_layers=num_layers,
            num_heads=num_heads,
            hidden_dim=hidden_dim,
            intermediate_dim=intermediate_dim,
        )
        check_divisible(hidden_dim=hidden_dim, num_heads=num_heads)
        check_rates(dropout=dropout)
        self.vocabulary_size = int(vocabulary_size)
        self.sequence_length = int(sequence_length)
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.hidden_dim = int(hidden_dim)
        self.intermediate_dim = int(intermediate_dim)
        self.dropout = float(dropout)
        self.position = position
        self.pad_token_id = int(pad_token_id)
        self.end_token_id = None if end_token_id is None else int(end_token_id)

        self.embedding = TokenAndPositionEmbedding(
            self.vocabulary_size,
            self.sequence_length,
            self.hidden_dim,
            position=position,
            dtype=self.dtype_policy,
            name="embedding",
        )
        self.blocks = [
            TransformerDecoderBlock(
                self.intermediate_dim,
                self.num_heads,
                dropout=self.dropout,
                activation="gelu",
                normalize_first=True,
                dtype=self.dtype_policy,
                name=f"block_{i}",
            )
            for i in range(self.num_layers)
        ]
        self.final_norm = keras.layers.LayerNormalization(
            epsilon=1e-5, dtype=self.dtype_policy, name="final_norm"
        )
        self._decoders = CompiledDecoders()

    def build(self, input_shape=None):
        shape = (None, None)
        self.embedding.build(shape)
        for block in self.blocks:
            block.build((None, None, self.hidden_dim))
        self.final_norm.build((None, None, self.hidden_dim))
        self.built = True

    def _logits(self, x):
        # Tied projection: logits are similarities to the token embeddings.
        return ops.cast(self.embedding.token_embedding(x, reverse=True), "float32")

    def call(self, token_ids, padding_mask=None, training=None):
        if padding_mask is None:
            padding_mask = ops.not_equal(token_ids, self.pad_token_id)
        x = self.embedding(token_ids)
        for block in self.blocks:
            x = block(x, decoder_padding_mask=padding_mask, training=training)
        return self._logits(self.final_norm(x))

    # Cached decoding.

    def empty_cache(self, batch_size, length):
        """Zero key/value caches: a tuple of (batch, 2, length, heads, head_dim) per block."""
        shape = (batch_size, 2, length, self.num_heads, self.hidden_dim // self.num_heads)
        return tuple(ops.zeros(shape, dtype=self.compute_dtype) for _ in self.blocks)

    def call_with_cache(self, token_ids, cache, index):
        """Runs `token_ids` placed at position `index`, reading and updating `cache`.

        Returns:
            (logits (batch, len, vocab), cache).
        """
        x = self.embedding(token_ids, start_index=index)
        updated = []
        for block, layer_cache in zip(self.blocks, cache):
            x, layer_cache = block(
                x, self_attention_cache=layer_cache, self_attention_cache_update_index=index
            )
            updated.append(layer_cache)
        return self._logits(self.final_norm(x)), tuple(updated)

    def logits_for(self, token_ids, padding_mask):
        """Logits of one full forward pass (the uncached decoding reference)."""
        return self(token_ids, padding_mask=padding_mask)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "sequence_length": self.sequence_length,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "position": self.position,
                "pad_token_id": self.pad_token_id,
                "end_token_id": self.end_token_id,
            }
        )
        return config

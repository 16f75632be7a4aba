"""BERT-style encoder backbone built from tfllm layers, saved and loaded as a keras-hub preset."""

import keras
import keras_hub

from tfllm._validation import check_divisible, check_positive_ints, check_rates
from tfllm.layers.activations import get_activation
from tfllm.layers.token_and_position_embedding import TokenAndPositionEmbedding
from tfllm.layers.transformer_encoder_block import TransformerEncoderBlock


def truncated_normal(stddev=0.02):
    """The initializer of BERT and GPT-2 (truncated normal, stddev 0.02)."""
    return keras.initializers.TruncatedNormal(stddev=stddev)


def check_backbone_args(vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim,
                        max_sequence_length, dropout):
    """Checks the sizes shared by the encoder and decoder backbones."""
    check_positive_ints(
        vocabulary_size=vocabulary_size,
        num_layers=num_layers,
        num_heads=num_heads,
        hidden_dim=hidden_dim,
        intermediate_dim=intermediate_dim,
        max_sequence_length=max_sequence_length,
    )
    check_divisible(hidden_dim=hidden_dim, num_heads=num_heads)
    check_rates(dropout=dropout)


@keras.saving.register_keras_serializable(package="tfllm")
class EncoderBackbone(keras_hub.models.Backbone):
    """BERT encoder: token + position + segment embeddings, post-norm encoder blocks, a pooler.

    Inputs and outputs match `keras_hub.models.BertBackbone`, so a BERT
    checkpoint converts weight for weight (`tfllm.models.load_backbone`). The
    backbone is a functional Keras model: use it with `compile()`/`fit()`, save
    it with `save_to_preset(dir)` and load it with `EncoderBackbone.from_preset(dir)`.

    Args:
        vocabulary_size: number of token ids.
        num_layers: number of `TransformerEncoderBlock`s.
        num_heads: attention heads per block (must divide `hidden_dim`).
        hidden_dim: model width.
        intermediate_dim: feed-forward width.
        max_sequence_length: size of the position table.
        num_segments: number of segment ids (2 for sentence pairs).
        dropout: dropout of the embeddings, attention and residual branches.
        activation: feed-forward activation; BERT checkpoints use
            `"gelu_approximate"` (tanh GELU).
        layer_norm_epsilon: epsilon of every layer normalization.
        dtype: dtype policy of the layers.
        **kwargs: `keras.Model` arguments (`name`, `trainable`).

    Call arguments:
        inputs: dict of int32 `(batch, length)` tensors `token_ids`,
            `segment_ids` and `padding_mask` (1 for real tokens).

    Returns:
        dict with `sequence_output` `(batch, length, hidden_dim)` and
        `pooled_output` `(batch, hidden_dim)` (tanh dense over the first token).

    Example:

    >>> backbone = EncoderBackbone(100, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16)
    >>> out = backbone({"token_ids": np.array([[2, 5, 0]]), "segment_ids": np.zeros((1, 3), "int32"),
    ...                 "padding_mask": np.array([[1, 1, 0]])})
    >>> out["pooled_output"].shape
    TensorShape([1, 8])
    """

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        max_sequence_length=512,
        num_segments=2,
        dropout=0.1,
        activation="gelu",
        layer_norm_epsilon=1e-12,
        dtype=None,
        **kwargs,
    ):
        check_backbone_args(vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim,
                            max_sequence_length, dropout)
        check_positive_ints(num_segments=num_segments)
        get_activation(activation)  # fails early on an unknown name
        if not layer_norm_epsilon > 0:
            raise ValueError(
                f"`layer_norm_epsilon` must be positive. Received: layer_norm_epsilon={layer_norm_epsilon!r}"
            )
        self.embedding = TokenAndPositionEmbedding(
            vocabulary_size,
            max_sequence_length,
            hidden_dim,
            num_segments=num_segments,
            embeddings_initializer=truncated_normal(),
            dtype=dtype,
            name="embedding",
        )
        self.embeddings_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="embeddings_layer_norm"
        )
        self.embeddings_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="embeddings_dropout")
        self.transformer_layers = [
            TransformerEncoderBlock(
                intermediate_dim,
                num_heads,
                dropout=dropout,
                activation=get_activation(activation),
                layer_norm_epsilon=layer_norm_epsilon,
                kernel_initializer=truncated_normal(),
                normalize_first=False,
                dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]
        self.pooled_dense = keras.layers.Dense(
            hidden_dim,
            activation="tanh",
            kernel_initializer=truncated_normal(),
            dtype=dtype,
            name="pooled_dense",
        )

        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        segment_ids = keras.Input(shape=(None,), dtype="int32", name="segment_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        x = self.embedding((token_ids, segment_ids))  # (batch, length, hidden)
        x = self.embeddings_dropout(self.embeddings_layer_norm(x))
        for block in self.transformer_layers:
            x = block(x, padding_mask=padding_mask)
        pooled = self.pooled_dense(x[:, 0, :])  # the first ([CLS]) token, (batch, hidden)
        super().__init__(
            inputs={"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask},
            outputs={"sequence_output": x, "pooled_output": pooled},
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
        self.num_segments = num_segments
        self.dropout = dropout
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon

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
                "num_segments": self.num_segments,
                "dropout": self.dropout,
                "activation": self.activation,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config

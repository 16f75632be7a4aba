"""Transformer-encoder text classifier built from tfllm layers."""

import keras
from keras import ops

from tfllm._validation import check_divisible, check_positive_ints, check_rates
from tfllm.layers.token_and_position_embedding import TokenAndPositionEmbedding
from tfllm.layers.transformer_encoder_block import TransformerEncoderBlock


@keras.saving.register_keras_serializable(package="tfllm")
class TransformerClassifier(keras.Model):
    """Token + position embeddings, a stack of encoder blocks, masked mean pooling, softmax.

    Args:
        vocabulary_size: number of token ids (id 0 is padding).
        num_classes: number of output classes.
        sequence_length: longest input accepted (size of the position table).
        embedding_dim: model width.
        num_layers: number of `TransformerEncoderBlock`s.
        num_heads: attention heads per block (must divide `embedding_dim`).
        intermediate_dim: width of each block's feed-forward layer.
        dropout: dropout inside the blocks and before the classifier.
        normalize_first: pre-layer-norm blocks (more stable when deep).
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: int token ids `(batch, length)`, right-padded with 0,
            `length <= sequence_length`.
        training: whether dropout is active.

    Returns:
        float32 class probabilities `(batch, num_classes)`.

    Example:
    >>> model = TransformerClassifier(100, 2, sequence_length=16, embedding_dim=8,
    ...                               num_heads=2, intermediate_dim=16)
    >>> model(np.array([[4, 9, 2, 0]])).shape
    TensorShape([1, 2])
    """

    def __init__(
        self,
        vocabulary_size,
        num_classes,
        sequence_length,
        embedding_dim=64,
        num_layers=1,
        num_heads=2,
        intermediate_dim=128,
        dropout=0.1,
        normalize_first=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_ints(
            vocabulary_size=vocabulary_size,
            num_classes=num_classes,
            sequence_length=sequence_length,
            embedding_dim=embedding_dim,
            num_layers=num_layers,
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
        )
        check_divisible(embedding_dim=embedding_dim, num_heads=num_heads)
        check_rates(dropout=dropout)
        self.vocabulary_size = vocabulary_size
        self.num_classes = num_classes
        self.sequence_length = sequence_length
        self.embedding_dim = embedding_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.normalize_first = normalize_first

        self.embedding = TokenAndPositionEmbedding(
            vocabulary_size, sequence_length, embedding_dim, mask_zero=True, name="embedding"
        )
        self.encoder_blocks = [
            TransformerEncoderBlock(
                intermediate_dim,
                num_heads,
                dropout=dropout,
                normalize_first=normalize_first,
                name=f"encoder_block_{index}",
            )
            for index in range(num_layers)
        ]
        self.final_norm = (
            keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm") if normalize_first else None
        )
        self.dropout_layer = keras.layers.Dropout(dropout, name="dropout")
        self.classifier = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="classifier")

    def call(self, inputs, training=None):
        ids = ops.cast(inputs, "int32")
        padding_mask = ops.not_equal(ids, 0)
        x = self.embedding(ids)  # (batch, length, embedding_dim)
        for block in self.encoder_blocks:
            x = block(x, padding_mask=padding_mask, training=training)
        if self.final_norm is not None:
            x = self.final_norm(x)
        weights = ops.cast(padding_mask, x.dtype)[:, :, None]  # (batch, length, 1)
        pooled = ops.sum(x * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)
        return self.classifier(self.dropout_layer(pooled, training=training))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "num_classes": self.num_classes,
                "sequence_length": self.sequence_length,
                "embedding_dim": self.embedding_dim,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "normalize_first": self.normalize_first,
            }
        )
        return config

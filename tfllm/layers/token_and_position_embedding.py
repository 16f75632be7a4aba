"""Token + position (+ segment) embeddings, the input layer of a Transformer."""

import math

import keras
from keras import ops

_POSITIONS = ("learned", "sinusoidal")


def sinusoidal_position_encoding(positions, dim, max_wavelength=10000.0):
    """Sinusoidal encodings of Vaswani et al. (2017), `(len(positions), dim)`, float32.

    Even features are `sin(p / max_wavelength^(2i/dim))`, odd ones the matching `cos`.
    """
    positions = ops.cast(positions, "float32")
    index = ops.arange(dim, dtype="int32")
    # Pairs (2i, 2i + 1) share one frequency.
    exponent = ops.cast(2 * (index // 2), "float32") / float(dim)
    inverse_frequency = ops.exp(-math.log(max_wavelength) * exponent)
    angles = ops.expand_dims(positions, 1) * ops.expand_dims(inverse_frequency, 0)
    return ops.where(ops.expand_dims(index % 2 == 0, 0), ops.sin(angles), ops.cos(angles))


@keras.saving.register_keras_serializable(package="tfllm")
class TokenAndPositionEmbedding(keras.layers.Layer):
    """Sums token, position and (BERT-style) segment embeddings.

    The token embedding is a `keras.layers.ReversibleEmbedding` exposed as
    `token_embedding`, so an output projection can reuse its matrix:
    `layer.token_embedding(hidden, reverse=True)` gives vocabulary logits.

    Args:
        vocabulary_size: number of token ids.
        sequence_length: maximum sequence length (size of the position table).
        embedding_dim: size of every embedding.
        num_segments: number of segment ids; `0` disables segment embeddings.
        position: `"learned"` (a trainable table) or `"sinusoidal"` (fixed).
        mask_zero: whether token id 0 is padding; the output then carries a
            Keras mask that attention layers honour.
        embeddings_initializer: initializer of the token, position and
            segment tables.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: int token ids `(batch, length)`, or a tuple
            `(token_ids, segment_ids)` when `num_segments > 0`.
        start_index: position of the first token (for cached decoding).

    Returns:
        `(batch, length, embedding_dim)` embeddings.

    Example:

    >>> layer = TokenAndPositionEmbedding(100, 16, 8, mask_zero=True)
    >>> layer(np.array([[5, 7, 0]])).shape
    TensorShape([1, 3, 8])
    """

    def __init__(
        self,
        vocabulary_size,
        sequence_length,
        embedding_dim,
        num_segments=0,
        position="learned",
        mask_zero=False,
        embeddings_initializer="uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("vocabulary_size", vocabulary_size),
            ("sequence_length", sequence_length),
            ("embedding_dim", embedding_dim),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
        if isinstance(num_segments, bool) or not isinstance(num_segments, int) or num_segments < 0:
            raise ValueError(
                f"`num_segments` must be a non-negative integer. Received: num_segments={num_segments!r}"
            )
        if position not in _POSITIONS:
            raise ValueError(f"`position` must be one of {_POSITIONS}. Received: position={position!r}")
        self.vocabulary_size = vocabulary_size
        self.sequence_length = sequence_length
        self.embedding_dim = embedding_dim
        self.num_segments = num_segments
        self.position = position
        self.mask_zero = mask_zero
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.supports_masking = mask_zero

    def build(self, inputs_shape=None):
        self.token_embedding = keras.layers.ReversibleEmbedding(
            self.vocabulary_size,
            self.embedding_dim,
            embeddings_initializer=self.embeddings_initializer,
            dtype=self.dtype_policy,
            name="token_embedding",
        )
        self.token_embedding.build()
        self.position_embeddings = None
        if self.position == "learned":
            self.position_embeddings = self.add_weight(
                name="position_embeddings",
                shape=(self.sequence_length, self.embedding_dim),
                initializer=self.embeddings_initializer,
            )
        self.segment_embedding = None
        if self.num_segments:
            self.segment_embedding = keras.layers.Embedding(
                self.num_segments,
                self.embedding_dim,
                embeddings_initializer=self.embeddings_initializer,
                dtype=self.dtype_policy,
                name="segment_embedding",
            )
            self.segment_embedding.build()
        self.built = True

    def _split_inputs(self, inputs):
        if self.num_segments:
            if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
                raise ValueError(
                    "With `num_segments > 0` call the layer on `(token_ids, segment_ids)`. "
                    f"Received: num_segments={self.num_segments}"
                )
            return inputs[0], inputs[1]
        if isinstance(inputs, (tuple, list)):
            raise ValueError(
                "Segment ids need `num_segments > 0`; call the layer on token ids only. "
                f"Received: num_segments={self.num_segments}"
            )
        return inputs, None

    def call(self, inputs, start_index=0):
        token_ids, segment_ids = self._split_inputs(inputs)
        length = ops.shape(token_ids)[-1]
        static_length = token_ids.shape[-1]
        if (
            isinstance(start_index, int)
            and static_length is not None
            and start_index + static_length > self.sequence_length
        ):
            raise ValueError(
                f"Positions {start_index}..{start_index + static_length - 1} exceed "
                f"`sequence_length`. Received: sequence_length={self.sequence_length}"
            )
        x = self.token_embedding(token_ids)
        if self.position == "learned":
            positions = ops.slice(
                self.position_embeddings, (start_index, 0), (length, self.embedding_dim)
            )  # (length, embedding_dim)
        else:
            positions = sinusoidal_position_encoding(
                ops.arange(length, dtype="int32") + start_index, self.embedding_dim
            )
        x = x + ops.cast(positions, x.dtype)
        if segment_ids is not None:
            x = x + self.segment_embedding(segment_ids)
        return x

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        token_ids, _ = self._split_inputs(inputs)
        return ops.not_equal(token_ids, 0)

    def compute_output_shape(self, inputs_shape):
        if self.num_segments:
            inputs_shape = inputs_shape[0]
        return tuple(inputs_shape) + (self.embedding_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "sequence_length": self.sequence_length,
                "embedding_dim": self.embedding_dim,
                "num_segments": self.num_segments,
                "position": self.position,
                "mask_zero": self.mask_zero,
                "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
            }
        )
        return config

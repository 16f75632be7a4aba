"""Embedding + (bidirectional) LSTM + softmax classifier, the classic text-classification baseline."""

import logging

import keras
from keras import ops

from tfllm._validation import check_positive_ints, check_rates

logger = logging.getLogger(__name__)


def cudnn_blockers(activation, recurrent_activation, recurrent_dropout, unroll, use_bias):
    """Names the options that keep Keras' LSTM off its cuDNN kernel (empty if none)."""
    blockers = []
    if keras.activations.get(activation) is not keras.activations.tanh:
        blockers.append(f"activation={activation!r} (cuDNN needs 'tanh')")
    if keras.activations.get(recurrent_activation) is not keras.activations.sigmoid:
        blockers.append(f"recurrent_activation={recurrent_activation!r} (cuDNN needs 'sigmoid')")
    if recurrent_dropout:
        blockers.append(f"recurrent_dropout={recurrent_dropout!r} (cuDNN needs 0)")
    if unroll:
        blockers.append("unroll=True (cuDNN needs False)")
    if not use_bias:
        blockers.append("use_bias=False (cuDNN needs True)")
    return blockers


@keras.saving.register_keras_serializable(package="tfllm")
class LSTMClassifier(keras.Model):
    """Text classifier: token embedding, stacked (bi)LSTM layers, softmax.

    With the defaults every LSTM runs on the fused cuDNN kernel on GPU. Options
    that force the slower generic loop (`recurrent_dropout > 0`, non-default
    activations, `unroll=True`, `use_bias=False`) log a warning naming them.
    cuDNN also needs right-padded masks: pad sequences at the end (as
    `tfllm.text` does); left-padded batches silently fall back to the generic
    loop.

    Args:
        vocabulary_size: number of token ids (id 0 is padding when `mask_zero`).
        num_classes: number of output classes.
        embedding_dim: size of the token embeddings.
        units: LSTM units (per direction).
        bidirectional: wrap each LSTM in `keras.layers.Bidirectional`.
        dropout: dropout on each LSTM's inputs.
        recurrent_dropout: dropout on the recurrent state (disables cuDNN).
        num_layers: number of stacked LSTM layers.
        mask_zero: treat token id 0 as padding.
        activation: LSTM cell activation.
        recurrent_activation: LSTM gate activation.
        use_bias: whether the LSTM cells have biases.
        unroll: unroll the recurrence (disables cuDNN).
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: int token ids `(batch, length)`.
        training: whether dropout is active.

    Returns:
        float32 class probabilities `(batch, num_classes)`, also under mixed
        precision.

    Example:

    >>> model = LSTMClassifier(vocabulary_size=100, num_classes=2, units=8)
    >>> model(np.array([[4, 9, 2, 0]])).shape
    TensorShape([1, 2])
    """

    def __init__(
        self,
        vocabulary_size,
        num_classes,
        embedding_dim=128,
        units=128,
        bidirectional=False,
        dropout=0.2,
        recurrent_dropout=0.0,
        num_layers=1,
        mask_zero=True,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        unroll=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_ints(
            vocabulary_size=vocabulary_size,
            num_classes=num_classes,
            embedding_dim=embedding_dim,
            units=units,
            num_layers=num_layers,
        )
        check_rates(dropout=dropout, recurrent_dropout=recurrent_dropout)
        self.vocabulary_size = vocabulary_size
        self.num_classes = num_classes
        self.embedding_dim = embedding_dim
        self.units = units
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.num_layers = num_layers
        self.mask_zero = mask_zero
        self.activation = activation
        self.recurrent_activation = recurrent_activation
        self.use_bias = use_bias
        self.unroll = unroll

        blockers = cudnn_blockers(activation, recurrent_activation, recurrent_dropout, unroll, use_bias)
        if blockers:
            logger.warning(
                "LSTMClassifier will not use the cuDNN LSTM kernel on GPU because of %s.",
                ", ".join(blockers),
            )

        self.embedding = keras.layers.Embedding(
            vocabulary_size, embedding_dim, mask_zero=mask_zero, name="embedding"
        )
        self.recurrent_layers = []
        for index in range(num_layers):
            layer = keras.layers.LSTM(
                units,
                activation=activation,
                recurrent_activation=recurrent_activation,
                use_bias=use_bias,
                dropout=dropout,
                recurrent_dropout=recurrent_dropout,
                unroll=unroll,
                return_sequences=index < num_layers - 1,
                name=f"lstm_{index}",
            )
            if bidirectional:
                layer = keras.layers.Bidirectional(layer, name=f"bidirectional_lstm_{index}")
            self.recurrent_layers.append(layer)
        # float32 probabilities even under mixed precision: a bfloat16 softmax
        # rounds confident probabilities to 1.0 and breaks log-loss.
        self.classifier = keras.layers.Dense(
            num_classes, activation="softmax", dtype="float32", name="classifier"
        )

    def call(self, inputs, training=None):
        x = self.embedding(ops.cast(inputs, "int32"))
        for layer in self.recurrent_layers:
            x = layer(x, training=training)
        return self.classifier(x)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "num_classes": self.num_classes,
                "embedding_dim": self.embedding_dim,
                "units": self.units,
                "bidirectional": self.bidirectional,
                "dropout": self.dropout,
                "recurrent_dropout": self.recurrent_dropout,
                "num_layers": self.num_layers,
                "mask_zero": self.mask_zero,
                "activation": self.activation,
                "recurrent_activation": self.recurrent_activation,
                "use_bias": self.use_bias,
                "unroll": self.unroll,
            }
        )
        return config

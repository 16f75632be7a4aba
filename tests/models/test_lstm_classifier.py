import logging
import os

import keras
import numpy as np
import pytest

from tfllm.models.lstm_classifier import LSTMClassifier

LOGGER = "tfllm.models.lstm_classifier"


def toy_data(n=64, length=8, seed=0):
    """Label 1 iff token 3 occurs; right-padded with zeros."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(4, 20, size=(n, length))
    labels = rng.integers(0, 2, size=n)
    for row, label in enumerate(labels):
        if label:
            tokens[row, rng.integers(0, length - 2)] = 3
        tokens[row, rng.integers(length - 2, length + 1) :] = 0
    return tokens.astype("int32"), labels


def test_fits_and_round_trips_through_keras_file(tmp_path):
    tokens, labels = toy_data()
    model = LSTMClassifier(vocabulary_size=20, num_classes=2, embedding_dim=8, units=8, dropout=0.0)
    model.compile(optimizer=keras.optimizers.Adam(0.03), loss="sparse_categorical_crossentropy")
    history = model.fit(tokens, labels, epochs=6, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.8 * losses[0]

    probabilities = model.predict(tokens, verbose=0)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)

    path = os.path.join(tmp_path, "lstm.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, LSTMClassifier)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.predict(tokens, verbose=0), probabilities)


def test_bidirectional_stack_and_padding_invariance():
    model = LSTMClassifier(
        vocabulary_size=20, num_classes=3, embedding_dim=8, units=4, bidirectional=True, num_layers=2
    )
    tokens = np.array([[5, 6, 7, 0, 0], [5, 6, 7, 0, 0]], "int32")
    longer = np.array([[5, 6, 7, 0, 0, 0, 0, 0]], "int32")
    out = model(tokens)
    assert out.shape == (2, 3)
    # Masked (zero) padding leaves the prediction unchanged.
    np.testing.assert_allclose(model(longer), out[:1], atol=1e-6)


def test_mixed_bfloat16_returns_float32_probabilities():
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = LSTMClassifier(vocabulary_size=20, num_classes=2, embedding_dim=8, units=4)
    out = model(np.array([[4, 5, 0]], "int32"))
    assert out.dtype == "float32"


def test_default_options_stay_on_the_cudnn_path(caplog):
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        LSTMClassifier(vocabulary_size=20, num_classes=2, bidirectional=True, num_layers=2, dropout=0.3)
    assert not [r for r in caplog.records if r.name == LOGGER]


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"recurrent_dropout": 0.2}, "recurrent_dropout=0.2"),
        ({"unroll": True}, "unroll=True"),
        ({"activation": "relu"}, "activation='relu'"),
        ({"recurrent_activation": "hard_sigmoid"}, "recurrent_activation='hard_sigmoid'"),
        ({"use_bias": False}, "use_bias=False"),
    ],
)
def test_each_option_leaving_the_cudnn_path_is_named(caplog, kwargs, named):
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        LSTMClassifier(vocabulary_size=20, num_classes=2, **kwargs)
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(messages) == 1
    assert named in messages[0] and "cuDNN" in messages[0]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_classes": 0}, "Received: num_classes=0"),
        ({"units": -3}, "Received: units=-3"),
        ({"dropout": 1.5}, "Received: dropout=1.5"),
    ],
)
def test_invalid_arguments_are_rejected(kwargs, message):
    args = {"vocabulary_size": 20, "num_classes": 2, **kwargs}
    with pytest.raises(ValueError, match=f"{message}$"):
        LSTMClassifier(**args)

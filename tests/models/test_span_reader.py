"""SpanReader: masked logits, padding that changes nothing, save/load, and a span it learns to find."""

import keras
import numpy as np
import pytest

from tfllm.models.span_predictor import span_loss
from tfllm.models.span_reader import SpanReader

QUERY = 4  # question tokens per window


def windows(count=64, length=20, seed=0):
    """`[CLS] q q q q [SEP] context... [SEP]` windows; the answer is the one context token the question holds."""
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(5, 40, (count, length)).astype("int32")
    token_ids[:, 0], token_ids[:, QUERY + 1], token_ids[:, -1] = 2, 3, 3
    segment_ids = np.zeros_like(token_ids)
    segment_ids[:, QUERY + 2:] = 1
    answer = rng.integers(QUERY + 2, length - 1, count)
    token_ids[np.arange(count), answer] = token_ids[:, 1]  # the first question word, once more in the context
    segment_ids[np.arange(count), answer] = 2
    inputs = {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": np.ones_like(token_ids)}
    return inputs, np.stack([answer, answer], axis=1).astype("int32")


def reader(**kwargs):
    return SpanReader(40, **{"embedding_dim": 16, "hidden_dim": 16, "num_layers": 2, "max_query_length": QUERY,
                             "dropout": 0.0, **kwargs})


def test_logits_are_masked_outside_the_context_except_cls():
    inputs, _ = windows(count=3)
    logits = keras.ops.convert_to_numpy(reader()(inputs))
    assert logits.shape == (3, 20, 2) and logits.dtype == np.float32
    np.testing.assert_array_equal(logits[:, 1:QUERY + 2], -1e4)
    assert (logits[:, 0] > -1e4).all() and (logits[:, QUERY + 2:] > -1e4).all()


def test_right_padding_leaves_the_logits_unchanged():
    inputs, _ = windows(count=2)
    model = reader()
    plain = keras.ops.convert_to_numpy(model(inputs))
    padded = {key: np.pad(value, [(0, 0), (0, 7)]) for key, value in inputs.items()}
    logits = keras.ops.convert_to_numpy(model(padded))
    np.testing.assert_allclose(logits[:, :20], plain, atol=1e-5)
    np.testing.assert_array_equal(logits[:, 20:], -1e4)


def test_keras_file_round_trip_keeps_the_outputs(tmp_path):
    inputs, _ = windows(count=2)
    model = reader(dropout=0.2)
    expected = keras.ops.convert_to_numpy(model(inputs))
    model.save(tmp_path / "reader.keras")
    loaded = keras.saving.load_model(tmp_path / "reader.keras")
    assert loaded.get_config()["num_layers"] == 2 and loaded.dropout == 0.2
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(inputs)), expected, atol=1e-6)


@pytest.mark.slow
def test_learns_to_point_at_the_matched_context_token():
    keras.utils.set_random_seed(0)
    inputs, targets = windows(count=256)
    model = reader()
    model.compile(keras.optimizers.Adam(1e-2), loss=span_loss)
    history = model.fit(inputs, targets, epochs=15, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    test_inputs, test_targets = windows(count=64, seed=1)
    predicted = keras.ops.convert_to_numpy(model(test_inputs)).argmax(axis=1)
    assert (predicted == test_targets).mean() > 0.8


def test_odd_hidden_dim_is_refused():
    with pytest.raises(ValueError, match="hidden_dim must be even"):
        SpanReader(40, hidden_dim=15)

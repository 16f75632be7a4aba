"""LSTMSeq2Seq: state-cached decoding equals recomputation, batching, training, saving."""

import keras
import numpy as np
import pytest

from tfllm.models.lstm_seq2seq import LSTMSeq2Seq

VOCAB, START, END = 40, 4, 5
SOURCES = [[9, 10, 11], [12, 13, 14, 15, 16, 17], [18]]


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    model = LSTMSeq2Seq(VOCAB, 16, 10, hidden_dim=16, start_token_id=START, end_token_id=END)
    model.build()
    return model


@pytest.fixture(scope="module")
def greedy(model):
    return model.generate(SOURCES, stop_token_ids=None, jit_compile=False)


def test_cached_greedy_equals_recomputation_and_batching(model, greedy):
    assert [len(row) for row in greedy] == [9, 9, 9]
    assert model.generate(SOURCES, stop_token_ids=None, use_cache=False, jit_compile=False) == greedy
    alone = [model.generate([s], stop_token_ids=None, jit_compile=False)[0] for s in SOURCES]
    assert alone == greedy


def test_beam_width_one_equals_greedy(model, greedy):
    beam = model.generate(SOURCES, strategy="beam", num_beams=1, stop_token_ids=None, jit_compile=False)
    assert beam == greedy


@pytest.mark.slow
def test_xla_generation_matches(model, greedy):
    assert model.generate(SOURCES, stop_token_ids=None) == greedy


def test_source_padding_is_masked(model):
    x = {"encoder_token_ids": np.array([[9, 10, 0, 0]]), "decoder_token_ids": np.array([[START, 7]])}
    shorter = {"encoder_token_ids": np.array([[9, 10]]), "decoder_token_ids": np.array([[START, 7]])}
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(model(shorter)), atol=1e-5)


def test_fit_and_keras_save_round_trip(model, tmp_path):
    trained = LSTMSeq2Seq.from_config(model.get_config())
    trained.compile(keras.optimizers.Adam(1e-2), jit_compile=False)
    rng = np.random.default_rng(0)
    x = {
        "encoder_token_ids": rng.integers(6, VOCAB, (8, 7)),
        "decoder_token_ids": np.concatenate([np.full((8, 1), START), rng.integers(6, VOCAB, (8, 5))], 1),
    }
    y = np.concatenate([x["decoder_token_ids"][:, 1:], np.full((8, 1), END)], 1)
    history = trained.fit(x, y, epochs=3, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    assert "perplexity" in history
    path = str(tmp_path / "lstm.keras")
    trained.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(restored(x)), np.asarray(trained(x)), atol=1e-5)


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match="hidden_dim=0"):
        LSTMSeq2Seq(VOCAB, 8, 8, hidden_dim=0)
    with pytest.raises(ValueError, match="dropout=1"):
        LSTMSeq2Seq(VOCAB, 8, 8, dropout=1)

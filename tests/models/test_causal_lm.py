"""CausalLM: cached decoding equals recomputation, batching, samplers, training, saving."""

import math

import keras
import numpy as np
import pytest

from tfllm.models.causal_lm import CausalLM

VOCAB, LENGTH = 40, 32
PROMPTS = [[5, 6, 7], [8, 9, 10, 11, 12], [13]]


@pytest.fixture(scope="module")
def lm():
    keras.utils.set_random_seed(1)
    model = CausalLM(
        VOCAB, LENGTH, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32, end_token_id=2
    )
    model.build()
    return model


@pytest.fixture(scope="module")
def greedy(lm):
    return lm.generate(PROMPTS, 20, stop_token_ids=None)


@pytest.mark.slow
def test_cached_greedy_equals_full_recomputation(lm, greedy):
    assert all(len(row) == 20 for row in greedy)
    assert [row[: len(p)] for row, p in zip(greedy, PROMPTS)] == PROMPTS
    assert lm.generate(PROMPTS, 20, stop_token_ids=None, use_cache=False) == greedy


@pytest.mark.slow
def test_batched_prompts_equal_one_at_a_time_without_recompiling(lm, greedy):
    traces = lm._decoders.tracing_count()
    # Batch 1, and lengths 1..5 fall in one (batch, length) bucket: one new trace.
    alone = [lm.generate([p], 20, stop_token_ids=None)[0] for p in PROMPTS]
    assert alone == greedy
    assert lm._decoders.tracing_count() == traces + 1


def test_beam_width_one_and_top_k_one_equal_greedy(lm, greedy):
    beam = lm.generate(PROMPTS, 20, strategy="beam", num_beams=1, stop_token_ids=None, jit_compile=False)
    top_k = lm.generate(PROMPTS, 20, strategy="top_k", k=1, seed=0, stop_token_ids=None, jit_compile=False)
    assert beam == greedy
    assert top_k == greedy


def test_stop_token_ends_the_sequence(lm, greedy):
    row = greedy[0]
    stop = next(t for t in row[4:] if t not in row[3:4])
    out = lm.generate([PROMPTS[0]], 20, stop_token_ids=(stop,), jit_compile=False)[0]
    assert out == row[: row.index(stop, 3)]
    assert lm.generate([PROMPTS[0]], 20, stop_token_ids=(stop,), strip_prompt=True, jit_compile=False)[0] == out[3:]


def test_beam_search_scores_at_least_greedy(lm, greedy):
    """Wider beams never find a less likely sequence (length_penalty=0: raw log-prob)."""

    def log_prob(row, start):
        logp = np.asarray(keras.ops.log_softmax(lm(np.array([row])), axis=-1))[0]
        return sum(logp[i - 1, row[i]] for i in range(start, len(row)))

    beam = lm.generate([PROMPTS[1]], 12, strategy="beam", num_beams=4, length_penalty=0.0,
                       stop_token_ids=None, jit_compile=False)[0]
    short_greedy = lm.generate([PROMPTS[1]], 12, stop_token_ids=None, jit_compile=False)[0]
    assert len(beam) == 12
    assert log_prob(beam, 5) >= log_prob(short_greedy, 5) - 1e-4


def test_fit_reports_perplexity(lm):
    model = CausalLM.from_config(lm.get_config())
    model.compile(keras.optimizers.Adam(1e-3), jit_compile=False)
    x = np.random.default_rng(0).integers(1, VOCAB, (8, 17))
    history = model.fit(x[:, :-1], x[:, 1:], epochs=1, verbose=0).history
    assert math.isclose(history["perplexity"][0], math.exp(history["loss"][0]), rel_tol=1e-3)
    assert history["perplexity"][0] > 1


def test_keras_save_round_trip(lm, tmp_path, greedy):
    path = str(tmp_path / "lm.keras")
    lm.save(path)
    restored = keras.models.load_model(path)
    x = np.array([[5, 6, 7, 8]])
    np.testing.assert_allclose(np.asarray(restored(x)), np.asarray(lm(x)), atol=1e-6)
    assert restored.get_config() == lm.get_config()


def test_bad_arguments_name_the_value(lm):
    with pytest.raises(ValueError, match="max_length=64"):
        lm.generate(PROMPTS, 64)
    with pytest.raises(ValueError, match="prompt 1 has 0 tokens"):
        lm.generate([[3], []], 10)
    with pytest.raises(ValueError, match="hidden_dim=10, num_heads=4"):
        CausalLM(VOCAB, LENGTH, num_heads=4, hidden_dim=10)

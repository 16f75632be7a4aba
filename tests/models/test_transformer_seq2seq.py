"""TransformerSeq2Seq: cached decoding equals recomputation, batching, embeddings, saving."""

import keras
import numpy as np
import pytest

from tfllm.models.transformer_seq2seq import TransformerSeq2Seq

VOCAB = 40
START, END = 4, 5
SOURCES = [[9, 10, 11], [12, 13, 14, 15, 16, 17], [18]]


def make(**kwargs):
    args = dict(
        vocabulary_size=VOCAB, encoder_sequence_length=16, decoder_sequence_length=12,
        num_encoder_layers=1, num_decoder_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32, start_token_id=START, end_token_id=END,
    )
    args.update(kwargs)
    model = TransformerSeq2Seq(**args)
    model.build()
    return model


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(2)
    return make()


@pytest.fixture(scope="module")
def greedy(model):
    return model.generate(SOURCES, stop_token_ids=None)


@pytest.mark.slow
def test_cached_greedy_equals_full_recomputation(model, greedy):
    assert [len(row) for row in greedy] == [11, 11, 11]
    assert model.generate(SOURCES, stop_token_ids=None, use_cache=False) == greedy


def test_batched_sources_of_different_lengths_equal_one_at_a_time(model, greedy):
    alone = [model.generate([s], stop_token_ids=None, jit_compile=False)[0] for s in SOURCES]
    assert alone == greedy


def test_beam_width_one_equals_greedy_and_stop_tokens_end(model, greedy):
    beam = model.generate(SOURCES, strategy="beam", num_beams=1, stop_token_ids=None, jit_compile=False)
    assert beam == greedy
    row = greedy[1]
    stop = next(t for t in row[1:] if t != row[0])
    out = model.generate([SOURCES[1]], stop_token_ids=(stop,), jit_compile=False)[0]
    assert out == row[: row.index(stop)]
    wide = model.generate(SOURCES, strategy="beam", num_beams=3, jit_compile=False)
    assert len(wide) == 3 and all(len(r) <= 11 for r in wide)


def test_padding_in_sources_does_not_change_outputs(model, greedy):
    padded = np.zeros((3, 10), "int32")
    for i, s in enumerate(SOURCES):
        padded[i, : len(s)] = s
    assert model.generate(padded, stop_token_ids=None) == greedy


def test_shared_and_separate_embeddings_and_tied_output():
    shared = make()
    separate = make(share_embeddings=False, target_vocabulary_size=30, tie_output=False)
    assert shared.encoder_embedding is shared.decoder_embedding
    # One embedding table (no output matrix) versus two tables plus a dense head.
    names = lambda m: {w.path.split("/")[1] for w in m.weights}
    assert "output_dense" not in names(shared)
    assert {"encoder_embedding", "decoder_embedding", "output_dense"} <= names(separate)
    x = {"encoder_token_ids": np.array([[9, 10, 0]]), "decoder_token_ids": np.array([[START, 7]])}
    assert tuple(separate(x).shape) == (1, 2, 30)
    with pytest.raises(ValueError, match="target_vocabulary_size=30"):
        make(target_vocabulary_size=30)


def test_fit_and_keras_save_round_trip(model, tmp_path):
    trained = TransformerSeq2Seq.from_config(model.get_config())
    trained.compile(keras.optimizers.Adam(1e-3), jit_compile=False)
    rng = np.random.default_rng(0)
    x = {
        "encoder_token_ids": rng.integers(6, VOCAB, (8, 7)),
        "decoder_token_ids": np.concatenate([np.full((8, 1), START), rng.integers(6, VOCAB, (8, 5))], 1),
    }
    y = np.concatenate([x["decoder_token_ids"][:, 1:], np.full((8, 1), END)], 1)
    history = trained.fit(x, y, epochs=2, verbose=0).history
    assert history["loss"][1] < history["loss"][0]
    path = str(tmp_path / "s2s.keras")
    trained.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(restored(x)), np.asarray(trained(x)), atol=1e-5)


def test_generate_needs_a_start_token():
    with pytest.raises(ValueError, match="start_token_id=None"):
        make(start_token_id=None).generate([[9]])

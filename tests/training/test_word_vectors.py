"""Skip-gram word vectors: pair generation, learning co-occurrence, errors."""

import numpy as np
import pytest

from tfllm.training.word_vectors import skipgram_pairs, train_word_vectors


def test_pairs_stay_inside_a_text_and_the_window():
    ids = np.arange(10)
    text_index = np.array([0] * 4 + [1] * 6)
    centre, context = skipgram_pairs(ids, text_index, window=2, rng=np.random.default_rng(0))
    assert len(centre) > 0
    assert np.all(text_index[centre] == text_index[context])  # ids double as positions here
    assert np.all(np.abs(centre - context) <= 2) and np.all(centre != context)


def test_window_one_gives_every_neighbour_pair_both_ways():
    ids = np.array([5, 6, 7])
    centre, context = skipgram_pairs(ids, np.zeros(3, int), window=1, rng=np.random.default_rng(0))
    assert sorted(zip(centre.tolist(), context.tolist())) == [(5, 6), (6, 5), (6, 7), (7, 6)]


def test_words_that_share_contexts_get_similar_vectors():
    # Two topics that never meet: words 1-10 co-occur, words 11-20 co-occur.
    rng = np.random.default_rng(0)
    texts = [rng.integers(1, 11, 12) for _ in range(300)] + [rng.integers(11, 21, 12) for _ in range(300)]
    vectors = train_word_vectors(texts, 21, 16, epochs=3, batch_size=512, learning_rate=0.02, subsample=0, seed=0,
                                 log=lambda message: None)
    assert vectors.shape == (21, 16) and vectors.dtype == np.float32
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = unit @ unit.T
    same = np.mean([similarity[i, j] for i in range(1, 11) for j in range(1, 11) if i != j])
    across = np.mean([similarity[i, j] for i in range(1, 11) for j in range(11, 21)])
    assert same > across + 0.5, (same, across)


def test_skipped_ids_keep_their_initial_rows_and_seeds_repeat():
    texts = [[0, 1, 2, 3, 0, 0]] * 50
    a = train_word_vectors(texts, 4, 8, epochs=1, subsample=0, seed=3, log=lambda message: None)
    b = train_word_vectors(texts, 4, 8, epochs=1, subsample=0, seed=3, log=lambda message: None)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a[0]).max() <= 0.5 / 8  # padding: never trained


@pytest.mark.parametrize("texts, message", [([[]], "at least one token"), ([[1, 9]], r"\[0, 5\)")])
def test_bad_token_ids_raise(texts, message):
    with pytest.raises(ValueError, match=message):
        train_word_vectors(texts, 5, 4, log=lambda message: None)

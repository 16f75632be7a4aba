"""Entity decoding inside the graph: tags of words -> entity strings, types, character offsets, scores."""

import numpy as np
import pytest
import tensorflow as tf

from tfllm.serving import signatures as sig
from tfllm.tasks.tagger_export import decode_entities
from tfllm.text.words import split_words

TAGS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


def decode(texts, tag_rows, score_rows=None):
    words, starts, ends = split_words(tf.constant(texts, tf.string))
    ids = tf.ragged.constant([[TAGS.index(t) for t in row] for row in tag_rows], tf.int64, ragged_rank=1,
                             row_splits_dtype=tf.int64)
    assert ids.row_lengths().numpy().tolist() == words.row_lengths().numpy().tolist()
    scores = score_rows or [[0.5] * len(row) for row in tag_rows]
    scores = tf.ragged.constant(scores, tf.float32, ragged_rank=1, row_splits_dtype=tf.int64)
    out = decode_entities(tf.constant(texts, tf.string), starts, ends, ids, scores, TAGS)
    return {key: value.numpy() for key, value in out.items()}


def test_entities_follow_conlleval_rules():
    texts = ["Anna Maria Berg met Tom in Den Haag", "Zürich and Bern", "nothing", ""]
    tags = [["B-PER", "I-PER", "I-PER", "O", "I-PER", "O", "B-LOC", "B-LOC"],  # I- after O starts one
            ["B-LOC", "O", "I-PER"], ["O"], []]
    scores = [[0.9, 0.6, 0.3, 0.1, 0.8, 0.1, 0.7, 0.5], [0.4, 0.1, 0.2], [0.9], []]
    out = decode(texts, tags, scores)
    assert out[sig.ENTITY_COUNT].tolist() == [4, 2, 0, 0]
    assert out[sig.ENTITY_TEXT].shape == (4, 4)
    assert [t.decode() for t in out[sig.ENTITY_TEXT][0]] == ["Anna Maria Berg", "Tom", "Den", "Haag"]
    assert [t.decode() for t in out[sig.ENTITY_TYPE][0]] == ["PER", "PER", "LOC", "LOC"]
    assert out[sig.ENTITY_START][0].tolist() == [0, 20, 27, 31]
    assert out[sig.ENTITY_END][0].tolist() == [15, 23, 30, 35]
    np.testing.assert_allclose(out[sig.ENTITY_SCORE][0], [0.6, 0.8, 0.7, 0.5], rtol=1e-6)
    # Character offsets in non-ASCII text; padding after the row's entities.
    assert [t.decode() for t in out[sig.ENTITY_TEXT][1][:2]] == ["Zürich", "Bern"]
    assert out[sig.ENTITY_START][1].tolist() == [0, 11, -1, -1] and out[sig.ENTITY_END][1].tolist()[:2] == [6, 15]
    assert texts[1][11:15] == "Bern"
    assert out[sig.ENTITY_TYPE][2].tolist() == [b""] * 4 and out[sig.ENTITY_SCORE][3].tolist() == [0.0] * 4


def test_a_type_change_inside_a_run_splits_it():
    out = decode(["Anna Oslo"], [["B-PER", "I-LOC"]])
    assert [t.decode() for t in out[sig.ENTITY_TYPE][0]] == ["PER", "LOC"]


@pytest.mark.parametrize("texts", [[], [""]])
def test_no_words_no_entities(texts):
    out = decode(texts, [[] for _ in texts])
    assert out[sig.ENTITY_COUNT].tolist() == [0] * len(texts) and out[sig.ENTITY_TEXT].shape == (len(texts), 0)


def test_constrained_decoding_never_starts_an_entity_inside():
    import itertools

    from tfllm.tasks.tagger_export import allowed_transitions, constrained_decode

    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(len(TAGS)) * 0.3, size=(6, 4)).astype("float32")
    lengths = np.array([4, 3, 1, 4, 2, 4])
    best = constrained_decode(tf.constant(probabilities), tf.constant(lengths, tf.int64), TAGS).numpy()
    start, transitions = allowed_transitions(TAGS)
    for row, length in enumerate(lengths):
        # Brute force over every sequence: the decoded one is the best valid one.
        def score(path):
            total = start[path[0]] + sum(transitions[a, b] for a, b in zip(path, path[1:]))
            return total + sum(np.log(probabilities[row, t, tag] + 1e-9) for t, tag in enumerate(path))
        expected = max(itertools.product(range(len(TAGS)), repeat=int(length)), key=score)
        assert tuple(best[row, :length]) == expected
        assert score(expected) > -1e8  # a valid sequence: no I- after O or another type

"""Windows with offsets and the best span across windows, inside the graph."""

import numpy as np
import pytest
import tensorflow as tf

from tfllm.tasks.span_features import SpanFeaturizer, best_spans

VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "who", "won", "the", "game", "?", ",", ".", "zurich",
              "is", "in", "switzerland", "##s", "cafe", "near", "alps", "a", "b", "c", "d", "e", "f"]


def featurizer(**settings):
    options = dict(max_seq_length=16, doc_stride=4, max_query_length=4)
    return SpanFeaturizer(VOCABULARY, **{**options, **settings})


def test_tokens_carry_the_byte_offsets_of_their_words_in_the_original_text():
    text = "Zürich, near the Alps."
    ids, starts, ends = featurizer().tokenize(tf.constant([text]))
    tokens = [VOCABULARY[i] for i in ids[0].numpy()]
    assert tokens == ["zurich", ",", "near", "the", "alps", "."]  # lower-cased, accents stripped
    raw = text.encode()
    assert [raw[s:e].decode() for s, e in zip(starts[0].numpy(), ends[0].numpy())] == \
        ["Zürich", ",", "near", "the", "Alps", "."]


def test_long_contexts_are_cut_into_overlapping_windows_that_cover_every_token():
    context = " ".join("abcdef"[i % 6] for i in range(20))  # 20 context tokens
    windows = featurizer().windows(tf.constant(["who won ?", "who"]), tf.constant([context, "the game ."]))
    example, starts = windows["example"].numpy(), windows["starts"].numpy()
    segments, ids = windows["segment_ids"].numpy(), windows["token_ids"].numpy()
    # 16 - 3 - 3 question tokens = 10 context tokens a window, a new window every 4: starts 0, 4, 8, 12.
    assert example.tolist() == [0, 0, 0, 0, 1]
    covered = sorted({s for row in starts[:4] for s in row if s >= 0})
    assert covered == [2 * i for i in range(20)]  # every word's byte offset (one letter + a space)
    assert [row[row >= 0][0] for row in starts[:4]] == [0, 8, 16, 24]
    first = ids[0][ids[0] > 0]
    assert [VOCABULARY[i] for i in first[:5]] == ["[CLS]", "who", "won", "?", "[SEP]"]
    assert VOCABULARY[first[-1]] == "[SEP]" and len(first) == 16
    assert segments[0][:5].tolist() == [0] * 5 and segments[0][5:16].tolist() == [1] * 11
    assert windows["padding_mask"].numpy()[4].sum() == 2 + 1 + 3 + 1


def test_the_best_span_over_all_windows_maps_back_to_characters():
    context = "Zürich is a cafe near the Alps , the cafes d e f a b c"
    questions = tf.constant(["who is ?"])
    windows = featurizer().windows(questions, tf.constant([context]))
    starts = windows["starts"].numpy()
    logits = np.zeros(starts.shape + (2,), np.float32)
    near = len("Zürich is a cafe ".encode())
    alps = len("Zürich is a cafe near the ".encode())
    # "near the Alps" in the second window that holds it; a better-looking but too long span elsewhere.
    rows = [w for w in range(len(starts)) if near in starts[w] and alps in starts[w]]
    logits[rows[-1], list(starts[rows[-1]]).index(near), 0] = 5.0
    logits[rows[-1], list(starts[rows[-1]]).index(alps), 1] = 5.0
    logits[0, list(starts[0]).index(0), 0] = 9.0  # "Zürich" ...
    last = len(starts) - 1
    logits[last, np.flatnonzero(starts[last] >= 0)[-1], 1] = 9.0  # ... to the end: longer than 5 tokens
    out = best_spans(tf.constant(logits), windows, tf.constant([context]), max_answer_length=5)
    start, end = int(out["start"][0]), int(out["end"][0])
    assert out["answer"][0].numpy().decode() == context[start:end] == "near the Alps"
    assert 0.0 < float(out["score"][0]) <= 1.0


def test_settings_that_leave_no_room_for_the_context_are_refused():
    with pytest.raises(ValueError, match="max_query_length"):
        featurizer(max_query_length=13)
    with pytest.raises(ValueError, match="doc_stride"):
        featurizer(doc_stride=20)


def test_context_words_the_question_holds_get_segment_2_unless_stop_words():
    windows = featurizer(max_seq_length=24).windows(tf.constant(["Who won the game, Zurich?"]),
                                                    tf.constant(["The game is in Zürich, near the Alps."]))
    ids, segments = windows["token_ids"].numpy()[0], windows["segment_ids"].numpy()[0]
    context = [(VOCABULARY[i], s) for i, s in zip(ids, segments) if s > 0][:-1]  # the last [SEP] aside
    assert context == [("the", 1), ("game", 2), ("is", 1), ("in", 1), ("zurich", 2), (",", 1), ("near", 1),
                       ("the", 1), ("alps", 1), (".", 1)]
    plain = featurizer(max_seq_length=24, mark_matches=False).windows(
        tf.constant(["Who won the game?"]), tf.constant(["The game."]))
    assert plain["segment_ids"].numpy().max() == 1


def test_a_backbone_gets_a_wider_segment_table_with_its_other_weights_kept():
    import backbones

    from tfllm.models.span_predictor import with_segments

    narrow = backbones.encoder()
    wide = with_segments(narrow, 3)
    table = wide.embedding.segment_embedding.embeddings.numpy()
    old = narrow.embedding.segment_embedding.embeddings.numpy()
    assert table.shape[0] == 3 and np.array_equal(table[:2], old) and np.array_equal(table[2], old[1])
    batch = backbones.encoder_batch()
    np.testing.assert_allclose(wide(batch)["sequence_output"], narrow(batch)["sequence_output"], rtol=1e-5, atol=1e-5)
    assert with_segments(wide, 2) is wide

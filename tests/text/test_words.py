"""The in-graph word splitter (offsets included) and the word + character + case featurizer."""

import tensorflow as tf

from tfllm.text.words import WordFeaturizer, build_word_vocabularies, char_offsets, split_words


def _split(text):
    words, starts, ends = split_words(tf.constant([text]))
    return [w.decode() for w in words.to_list()[0]], starts.to_list()[0], ends.to_list()[0]


def test_splits_punctuation_but_keeps_abbreviations():
    words, _, _ = _split('John Smith\'s car ("red") was in Paris. He met U.S. officials, said Mr. Jones.')
    # One mark comes off each side of a word.
    assert words == ["John", "Smith", "'s", "car", "(", '"red"', ")", "was", "in", "Paris", ".", "He", "met",
                     "U.S.", "officials", ",", "said", "Mr.", "Jones", "."]


def test_offsets_index_the_text_and_conll_sentences_split_back_into_their_words():
    sentence = ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."]
    text = " ".join(sentence)
    words, starts, ends = _split(text)
    assert words == sentence
    assert [text[s:e] for s, e in zip(starts, ends)] == sentence


def test_character_offsets_of_non_ascii_text():
    text = "  Zürich ist schön!"
    words, starts, ends = split_words(tf.constant([text]))
    chars = char_offsets(tf.constant([text] * 4), tf.constant(starts.to_list()[0], tf.int64)).numpy().tolist()
    assert words.to_list()[0] == ["Zürich".encode(), b"ist", "schön".encode(), b"!"]
    assert chars == [2, 9, 13, 18] and [text[c] for c in chars] == ["Z", "i", "s", "!"]


def test_featurizer_ids_cases_and_padding():
    words, chars = build_word_vocabularies([["Paris", "paris", "1996"], ["Paris"]], min_count=2)
    assert words == ["[PAD]", "[UNK]", "paris"]  # "0000" (from 1996) was seen once
    featurizer = WordFeaturizer(words, chars, max_chars=3)
    batch = tf.ragged.constant([["PARIS", "Paris", "2001", "x"], []])
    features = featurizer(batch)
    assert features["word_ids"].numpy().tolist() == [[2, 2, 1, 1], [0, 0, 0, 0]]
    # upper, title, number, lower (ids from CASE_PATTERNS), then padding.
    assert features["case_ids"].numpy().tolist() == [[3, 4, 1, 2], [0, 0, 0, 0]]
    assert features["char_ids"].shape == (2, 4, 3)
    assert features["char_ids"].numpy()[0, 3].tolist()[1:] == [0, 0]

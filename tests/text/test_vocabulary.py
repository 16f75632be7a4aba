"""WordPiece and word vocabularies: building, saving, loading, and export with the tokenizer inside."""

import numpy as np
import pytest
import tensorflow as tf
import keras

from tfllm.data import load_sample
from tfllm.text import (
    RESERVED_TOKENS,
    ClassifierPacker,
    build_word_vectorizer,
    build_wordpiece_vocabulary,
    load_vocabulary,
    load_word_vectorizer,
    make_wordpiece_tokenizer,
    save_vocabulary,
    save_word_vectorizer,
)

RAW = ["What a wonderful, moving film!", "Terrible plot; I left early.", "zyxqv ünïcödé 42", ""]


@pytest.fixture(scope="module")
def texts():
    return list(load_sample("sentiment").text)


@pytest.fixture(scope="module")
def vocabulary(texts):
    return build_wordpiece_vocabulary(texts, 500)


def test_wordpiece_vocabulary_starts_with_reserved_tokens(vocabulary):
    assert vocabulary[: len(RESERVED_TOKENS)] == list(RESERVED_TOKENS)
    assert vocabulary[0] == "[PAD]"
    assert len(vocabulary) <= 500 and len(set(vocabulary)) == len(vocabulary)
    assert "film" in vocabulary and "Film" not in vocabulary  # lower-cased


def test_vocabulary_from_a_seeded_sample(texts):
    small = build_wordpiece_vocabulary(texts, 200, max_texts=50)
    assert small == build_wordpiece_vocabulary(texts, 200, max_texts=50)
    assert small != build_wordpiece_vocabulary(texts, 200, max_texts=50, seed=1)


def test_reserved_token_checks(texts):
    with pytest.raises(ValueError, match="must start with '\\[PAD\\]'"):
        build_wordpiece_vocabulary(texts, 100, reserved_tokens=("[UNK]", "[PAD]"))
    with pytest.raises(ValueError, match="must include '\\[UNK\\]'"):
        build_wordpiece_vocabulary(texts, 100, reserved_tokens=("[PAD]",))


def test_vocabulary_round_trip_and_tokenizer_from_file(tmp_path, vocabulary):
    path = tmp_path / "model" / "vocab.txt"
    save_vocabulary(vocabulary, path)
    assert load_vocabulary(path) == vocabulary
    unusual = ["[PAD]", "", " spaced ", "ünï", "##x"]
    save_vocabulary(unusual, tmp_path / "odd.txt")
    assert load_vocabulary(tmp_path / "odd.txt") == unusual
    with pytest.raises(ValueError, match="line break"):
        save_vocabulary(["a\nb"], tmp_path / "bad.txt")
    with pytest.raises(FileNotFoundError, match="no such vocabulary file"):
        load_vocabulary(tmp_path / "missing.txt")
    from_list = make_wordpiece_tokenizer(vocabulary)
    from_file = make_wordpiece_tokenizer(path)
    # Eager calls run keras_hub's Python path and return lists; tf.data and
    # models run the TF ops, checked against it here.
    eager = from_list(RAW)
    graph = tf.function(lambda t: from_file(t).to_tensor())(tf.constant(RAW)).numpy()
    for row, expected in zip(graph, eager):
        assert row[: len(expected)].tolist() == list(expected)
    assert list(from_list(["\u2603"])[0]) == [vocabulary.index("[UNK]")]


def test_fixed_length_tokenizer_pads_with_zero(vocabulary):
    tokenizer = make_wordpiece_tokenizer(vocabulary, sequence_length=8)
    ids = np.asarray(tokenizer(["good", "a b c d e f g h i j"]))
    assert ids.shape == (2, 8) and ids[0, 1:].tolist() == [0] * 7


def test_special_tokens_in_strings(vocabulary):
    tokenizer = make_wordpiece_tokenizer(vocabulary, special_tokens_in_strings=True)
    ids = list(tokenizer(["good [SEP] bad"])[0])
    assert vocabulary.index("[SEP]") in ids


@pytest.mark.slow
def test_model_with_tokenizer_inside_exports_and_reloads(tmp_path, vocabulary):
    tokenizer = make_wordpiece_tokenizer(vocabulary)
    inputs = keras.Input(shape=(), dtype="string")
    ids = ClassifierPacker(16, start_value=vocabulary.index("[CLS]"))(tokenizer(inputs))
    x = keras.layers.Embedding(len(vocabulary), 8, mask_zero=True)(ids)
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    raw = tf.constant(RAW)
    expected = model.predict(raw, verbose=0)

    model.export(str(tmp_path / "export"), verbose=False)
    import tensorflow_text  # noqa: F401  (registers the WordPiece ops the SavedModel uses)

    reloaded = tf.saved_model.load(str(tmp_path / "export"))
    np.testing.assert_allclose(reloaded.serve(raw).numpy(), expected, rtol=1e-6, atol=1e-7)
    signature = reloaded.signatures["serving_default"]
    (output,) = signature(**{next(iter(signature.structured_input_signature[1])): raw}).values()
    np.testing.assert_allclose(output.numpy(), expected, rtol=1e-6, atol=1e-7)

    model.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(restored.predict(raw, verbose=0), expected, rtol=1e-6, atol=1e-7)


def test_word_vectorizer_round_trip(tmp_path, texts):
    vectorizer = build_word_vectorizer(texts, 300, ngrams=2)
    vocab = vectorizer.get_vocabulary()
    assert vocab[:2] == ["", "[UNK]"] and len(vocab) <= 300
    path = tmp_path / "word_vectorizer.json"
    save_word_vectorizer(vectorizer, path)
    restored = load_word_vectorizer(path)
    assert restored.get_vocabulary() == vocab
    batch = tf.constant(RAW)
    np.testing.assert_array_equal(restored(batch).numpy(), vectorizer(batch).numpy())
    with pytest.raises(ValueError, match="standardize"):
        build_word_vectorizer(texts, 100, standardize=lambda x: x)
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match="broken.json: not valid JSON"):
        load_word_vectorizer(tmp_path / "broken.json")

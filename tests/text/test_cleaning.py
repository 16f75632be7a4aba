"""NLTK-style cleaning: offline fallbacks, the warning said once, NLTK data used when present."""

import logging

import pytest

from tfllm.text import cleaning
from tfllm.text import clean_text, english_stopwords, sent_tokenize, word_tokenize


@pytest.fixture()
def fresh_backend():
    cleaning._backend.cache_clear()
    cleaning.english_stopwords.cache_clear()
    yield
    cleaning._backend.cache_clear()
    cleaning.english_stopwords.cache_clear()


def _nltk_data_installed():
    import nltk

    try:
        nltk.word_tokenize("probe")
        return True
    except LookupError:
        return False


def test_word_tokenize_follows_treebank_conventions():
    assert word_tokenize("I don't like it.") == ["I", "do", "n't", "like", "it", "."]
    assert word_tokenize('Mr. Smith said "hi." Then he left!') == [
        "Mr.", "Smith", "said", "``", "hi", ".", "''", "Then", "he", "left", "!",
    ]
    assert word_tokenize("") == []
    with pytest.raises(TypeError, match="Expected a string"):
        word_tokenize(None)


def test_sentence_split_keeps_abbreviations():
    assert sent_tokenize("Dr. Who arrived. it rained! Did it? Yes.") == [
        "Dr. Who arrived.", "it rained!", "Did it?", "Yes.",
    ]


def test_clean_text_matches_the_reference_preprocessing():
    # Reference: lower-case, word_tokenize, drop NLTK English stop words, join with spaces.
    assert clean_text("I love this movie!") == "love movie !"
    assert clean_text("This is a terrible movie. It was not good.") == "terrible movie . good ."
    assert clean_text("The Movie is GREAT", lowercase=False) == "Movie GREAT"
    assert clean_text("This is it", remove_stopwords=False) == "this is it"


def test_builtin_stopwords_are_nltks_english_list():
    words = english_stopwords()
    assert len(words) == 179
    assert {"the", "isn't", "ourselves", "wouldn't"} <= words and "movie" not in words


@pytest.mark.skipif(_nltk_data_installed(), reason="NLTK data is installed here")
def test_fallback_warns_once(fresh_backend, caplog):
    with caplog.at_level(logging.WARNING, logger="tfllm.text"):
        for _ in range(3):
            clean_text("Some text. More text.")
    messages = [r.getMessage() for r in caplog.records]
    assert sum("'punkt' data is not installed" in m for m in messages) == 1
    assert sum("'stopwords' data is not installed" in m for m in messages) == 1


def test_nltk_data_is_used_when_installed(fresh_backend, monkeypatch):
    import nltk

    monkeypatch.setattr(nltk, "word_tokenize", lambda text: ["<nltk>", *text.split()])
    assert word_tokenize("a b") == ["<nltk>", "a", "b"]

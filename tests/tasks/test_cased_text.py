"""Cased generation: a vocabulary that keeps case, and detokenization that restores spacing."""

import json

import pytest
import tensorflow as tf

from tfllm import text
from tfllm.tasks.text_generator import detokenize
from tfllm.tasks.text_to_text import TextToTextConfig, run_cased

SENTENCES = [
    "I'm here, Anna.",
    "Emma will pick Tom up at 8:30 tonight!",
    "It's a well-known place (near the station); it costs $5.",
    "Don't worry: Anna's brother said 2.5% isn't much?",
    "¿Dónde está la estación? ¡Feliz cumpleaños, Ana!",
]


@pytest.fixture(scope="module")
def vocabularies():
    corpus = SENTENCES * 3
    return {
        cased: text.build_wordpiece_vocabulary(corpus, vocabulary_size=150, lowercase=not cased)
        for cased in (True, False)
    }


def round_trip(vocabulary, cased, sentences):
    tokenizer = text.make_wordpiece_tokenizer(vocabulary, lowercase=not cased)
    ids = tokenizer(tf.constant(sentences))
    ids = ids if isinstance(ids, tf.RaggedTensor) else tf.ragged.constant(ids)
    return [s.decode("utf-8") for s in detokenize(tokenizer, ids).numpy()]


def test_cased_vocabulary_round_trips_exact_strings(vocabularies):
    assert "A" in vocabularies[True] and "A" not in vocabularies[False]
    assert round_trip(vocabularies[True], True, SENTENCES) == SENTENCES


def test_lowercase_vocabulary_round_trips_lower_cased_strings(vocabularies):
    assert round_trip(vocabularies[False], False, SENTENCES[:1]) == ["i'm here, anna."]


def test_generation_is_cased_by_default_and_old_runs_are_not(tmp_path):
    assert TextToTextConfig().cased is True
    assert run_cased(tmp_path) is False  # No config.json.
    (tmp_path / "config.json").write_text(json.dumps({"model": "transformer"}))
    assert run_cased(tmp_path) is False  # Written before the option existed: lower-cased.
    (tmp_path / "config.json").write_text(json.dumps({"cased": True}))
    assert run_cased(tmp_path) is True

"""Generation metrics against hand-computed values."""

import math

import numpy as np
import pytest

from tfllm.metrics.generation import (
    Perplexity,
    bleu,
    distinct_n,
    lead3_rouge,
    lead_n,
    perplexity,
    response_scores,
    rouge,
    split_sentences,
)


def test_rouge_f1_by_hand():
    scores = rouge(["the cat sat on the mat"], ["the cat sat"])
    # ROUGE-1: 3 shared unigrams, P = 3/3, R = 3/6 -> F = 2/3.
    assert scores["rouge1"] == pytest.approx(2 / 3)
    # ROUGE-2: 2 shared bigrams, P = 2/2, R = 2/5 -> F = 4/7.
    assert scores["rouge2"] == pytest.approx(4 / 7)
    # ROUGE-L: longest common subsequence 3 -> same as ROUGE-1 here.
    assert scores["rougeL"] == pytest.approx(2 / 3)


def test_rouge_uses_stemming_and_averages_examples():
    assert rouge(["cats running"], ["cat runs"])["rouge1"] == pytest.approx(1.0)
    scores = rouge(["a b", "c d"], ["a b", "x y"])
    assert scores["rouge1"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="len\\(references\\)=2, len\\(predictions\\)=1"):
        rouge(["a", "b"], ["a"])


def test_lead3_takes_the_first_three_utterances():
    dialogue = "Anna: hi\nTom: hello\nAnna: cinema at 7?\nTom: sure"
    assert split_sentences(dialogue)[3] == "Tom: sure"
    assert lead_n(dialogue) == "Anna: hi\nTom: hello\nAnna: cinema at 7?"
    assert lead_n("One. Two! Three? Four.", 3) == "One.\nTwo!\nThree?"
    expected = rouge(["anna and tom meet at 7"], [lead_n(dialogue)])
    assert lead3_rouge([dialogue], ["anna and tom meet at 7"]) == expected


def test_bleu_by_hand():
    assert bleu(["the cat sat"], ["the cat sat"], 2) == pytest.approx(1.0)
    # BLEU-1: unigram precision 1/2, no brevity penalty (same length).
    assert bleu(["the cat"], ["the dog"], 1) == pytest.approx(0.5)
    # BLEU-2: no bigram matches; method1 smoothing counts 0.1 of 1 bigram.
    assert bleu(["the cat"], ["the dog"], 2) == pytest.approx(math.sqrt(0.5 * 0.1))
    # Brevity penalty exp(1 - 6/2) on a 2-word hypothesis of a 6-word reference.
    assert bleu(["the cat sat on the mat"], ["the cat"], 1) == pytest.approx(math.exp(-2))
    assert bleu(["x"], [""], 1) == 0.0


def test_distinct_n_by_hand():
    predictions = ["a b a", "a b"]
    assert distinct_n(predictions, 1) == pytest.approx(2 / 5)
    assert distinct_n(predictions, 2) == pytest.approx(2 / 3)
    assert distinct_n([""], 2) == 0.0


def test_response_scores_gather_bleu_and_distinct():
    scores = response_scores(["the cat", "a b"], ["the dog", "a b"])
    assert scores == {
        "bleu1": round((0.5 + 1.0) / 2, 4),
        "bleu2": round((math.sqrt(0.5 * 0.1) + 1.0) / 2, 4),
        "distinct1": round(distinct_n(["the dog", "a b"], 1), 4),
        "distinct2": 1.0,
    }


def test_perplexity_function_and_metric():
    assert perplexity(2 * math.log(4), 2) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="num_tokens=0"):
        perplexity(1.0, 0)
    metric = Perplexity(from_logits=True, mask_token_id=0)
    # Uniform logits over 4 tokens: perplexity 4 on the unmasked targets.
    metric.update_state(np.array([[1, 2, 0]]), np.zeros((1, 3, 4), "float32"))
    assert float(metric.result()) == pytest.approx(4.0, rel=1e-5)
    # A confident correct prediction lowers it; the masked target is ignored.
    logits = np.zeros((1, 3, 4), "float32")
    logits[0, 0, 1] = logits[0, 1, 2] = 50.0
    metric.reset_state()
    metric.update_state(np.array([[1, 2, 0]]), logits)
    assert float(metric.result()) == pytest.approx(1.0, rel=1e-4)
    assert Perplexity.from_config(metric.get_config()).mask_token_id == 0

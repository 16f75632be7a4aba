"""SQuAD exact match / F1 as the official v1.1 script computes them, and the sliding-window baseline."""

import pytest

from tfllm.metrics.sliding_window import sliding_window_answer
from tfllm.metrics.squad import exact_match_score, f1_score, normalize_answer, squad_scores


def test_normalization_drops_case_punctuation_articles_and_extra_spaces():
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert normalize_answer("an apple, a pear") == "apple pear"
    # Only whole-word articles go; punctuation goes before articles are matched.
    assert normalize_answer("Theatre") == "theatre"
    assert normalize_answer("the-the") == "thethe"


def test_f1_is_the_token_overlap_and_exact_match_compares_normalised_text():
    assert exact_match_score("the Broncos.", "Broncos")
    assert not exact_match_score("Denver Broncos", "Broncos")
    # 1 shared token: precision 1/2, recall 1/1 -> F1 2/3.
    assert f1_score("Denver Broncos", "Broncos") == pytest.approx(2 / 3)
    assert f1_score("a", "the") == 0.0  # both normalise to nothing
    assert f1_score("red red white", "red white white") == pytest.approx(2 / 3)


def test_scores_take_the_best_reference_and_count_missing_predictions_as_zero():
    references = {"q1": ["Denver Broncos", "Broncos"], "q2": ["1712"], "q3": ["red and white"]}
    scores = squad_scores({"q1": "Broncos", "q2": "in 1712"}, references)
    assert scores["exact_match"] == pytest.approx(100 / 3, abs=0.01)
    # q1: 1.0, q2: 2/3, q3 missing: 0.
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3, abs=0.01)
    assert scores["questions"] == 3


def test_sliding_window_picks_the_words_beside_the_question_words():
    context = ("The town has a museum. The old lighthouse was painted red in 1890. "
               "A ferry leaves every morning.")
    answer, start, end = sliding_window_answer("When was the old lighthouse painted red?", context)
    assert answer == "1890" and context[start:end] == answer
    assert sliding_window_answer("Anything?", "...") == ("", 0, 0)

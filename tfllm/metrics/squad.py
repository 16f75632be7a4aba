"""SQuAD v1.1 exact match and F1, as the official evaluation script (`evaluate-v1.1.py`) defines them.

An answer is normalised (lower-cased, punctuation removed, the articles
"a", "an", "the" removed, whitespace collapsed); exact match is 1 when the
normalised prediction equals a normalised reference, F1 is the harmonic mean
of token precision and recall (bag of tokens); each question takes the best
score over its references, and the figures are percentages over questions.
"""

import collections
import re
import string

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text):
    """Lower case, no punctuation, no articles, single spaces (the official `normalize_answer`)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match_score(prediction, reference):
    return normalize_answer(prediction) == normalize_answer(reference)


def f1_score(prediction, reference):
    """Token F1 of two answers after normalisation (0 when they share no token)."""
    predicted = normalize_answer(prediction).split()
    expected = normalize_answer(reference).split()
    same = sum((collections.Counter(predicted) & collections.Counter(expected)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(expected)
    return 2 * precision * recall / (precision + recall)


def max_over_references(metric, prediction, references):
    return max(metric(prediction, reference) for reference in references)


def squad_scores(predictions, references):
    """`{"exact_match", "f1", "questions"}`: percentages over the questions of `references`.

    Args:
        predictions: `{question id: predicted answer text}`; a question
            without a prediction scores 0, as in the official script.
        references: `{question id: [reference answer texts]}`.
    """
    exact = f1 = 0.0
    for qid, answers in references.items():
        if qid not in predictions:
            continue
        exact += max_over_references(exact_match_score, predictions[qid], answers)
        f1 += max_over_references(f1_score, predictions[qid], answers)
    total = max(len(references), 1)
    return {"exact_match": round(100.0 * exact / total, 2), "f1": round(100.0 * f1 / total, 2),
            "questions": len(references)}

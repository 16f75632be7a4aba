"""Metrics for generated text: ROUGE, Lead-3, BLEU, chrF, distinct-n and perplexity.

ROUGE uses Google's `rouge-score` (Porter stemming on, F1 reported, as in the
summarization literature). BLEU uses NLTK's `sentence_bleu` averaged over
sentences with `SmoothingFunction().method1` (an epsilon count for n-gram
orders without matches), the usual choice for short dialogue replies.
Tokenizing for BLEU and distinct-n is lower-cased Treebank tokenization,
which needs no NLTK data. Translation is scored with `sacrebleu`'s corpus
BLEU and chrF (its default 13a tokenization, cased), so the figures compare
with published ones.
"""

import math
import re

import keras
from keras import ops

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
BLEU_SMOOTHING = "nltk SmoothingFunction().method1, sentence-level, averaged"

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def word_tokenize(text):
    """Lower-cased Treebank word tokens (no NLTK data needed)."""
    from nltk.tokenize import TreebankWordTokenizer

    return TreebankWordTokenizer().tokenize(str(text).lower())


def split_sentences(text):
    """Splits `text` into sentences: its lines if it has several, else punctuation.

    Dialogues (SAMSum) are one utterance per line, so lines come first. NLTK's
    punkt model is used when its data is installed, a regular expression
    otherwise.
    """
    text = str(text).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 1:
        return lines
    try:
        import nltk

        return nltk.sent_tokenize(text)
    except LookupError:
        return [s for s in _SENTENCE_END.split(text) if s]


def lead_n(text, n=3):
    """The first `n` sentences (utterances, for dialogues) of `text`, joined by newlines."""
    return "\n".join(split_sentences(text)[:n])


def rouge(references, predictions, rouge_types=ROUGE_TYPES):
    """Mean ROUGE F1 (in [0, 1]) of `predictions` against `references`, stemming on.

    Returns:
        dict like {"rouge1": 0.31, "rouge2": 0.09, "rougeL": 0.29}.
    """
    try:
        from rouge_score import rouge_scorer
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError("ROUGE needs the rouge-score package: pip install rouge-score") from error
    references, predictions = list(references), list(predictions)
    _check_pairs(references, predictions)
    scorer = rouge_scorer.RougeScorer(list(rouge_types), use_stemmer=True)
    totals = dict.fromkeys(rouge_types, 0.0)
    for reference, prediction in zip(references, predictions):
        scores = scorer.score(str(reference), str(prediction))
        for name in rouge_types:
            totals[name] += scores[name].fmeasure
    return {name: total / max(len(references), 1) for name, total in totals.items()}


def lead3_rouge(sources, references, rouge_types=ROUGE_TYPES):
    """ROUGE F1 of the Lead-3 baseline: the first three sentences of each source."""
    return rouge(references, [lead_n(source, 3) for source in sources], rouge_types)


def bleu(references, predictions, max_order=2):
    """Average sentence BLEU-`max_order` (uniform weights), smoothed, in [0, 1]."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    references, predictions = list(references), list(predictions)
    _check_pairs(references, predictions)
    if not references:
        return 0.0
    weights = (1.0 / max_order,) * max_order
    smoothing = SmoothingFunction().method1
    total = 0.0
    for reference, prediction in zip(references, predictions):
        hypothesis = word_tokenize(prediction)
        if not hypothesis:
            continue
        total += sentence_bleu(
            [word_tokenize(reference)], hypothesis, weights=weights, smoothing_function=smoothing
        )
    return total / len(references)


def corpus_bleu_chrf(references, predictions):
    """sacrebleu corpus BLEU and chrF (0-100, 13a tokenization, one reference per row).

    Returns:
        dict like {"bleu": 41.3, "chrf": 60.2}.
    """
    import sacrebleu

    references, predictions = [str(r) for r in references], [str(p) for p in predictions]
    _check_pairs(references, predictions)
    if not references:
        return {"bleu": 0.0, "chrf": 0.0}
    return {
        "bleu": sacrebleu.corpus_bleu(predictions, [references]).score,
        "chrf": sacrebleu.corpus_chrf(predictions, [references]).score,
    }


def distinct_n(predictions, n):
    """Distinct n-grams over all n-grams in `predictions` (Li et al., 2016); 0 if none."""
    seen, total = set(), 0
    for prediction in predictions:
        tokens = word_tokenize(prediction)
        grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        seen.update(grams)
        total += len(grams)
    return len(seen) / total if total else 0.0


def response_scores(references, predictions):
    """BLEU-1/2 and distinct-1/2 of generated replies, rounded to 4 places (dialogue metrics)."""
    return {
        "bleu1": round(bleu(references, predictions, 1), 4),
        "bleu2": round(bleu(references, predictions, 2), 4),
        "distinct1": round(distinct_n(predictions, 1), 4),
        "distinct2": round(distinct_n(predictions, 2), 4),
    }


def perplexity(total_nll, num_tokens):
    """exp(total negative log-likelihood / number of tokens)."""
    if num_tokens <= 0:
        raise ValueError(f"perplexity needs at least one token. Received: num_tokens={num_tokens}")
    return math.exp(total_nll / num_tokens)


def _check_pairs(references, predictions):
    if len(references) != len(predictions):
        raise ValueError(
            "references and predictions must have the same length. Received: "
            f"len(references)={len(references)}, len(predictions)={len(predictions)}"
        )


@keras.saving.register_keras_serializable(package="tfllm")
class Perplexity(keras.metrics.Metric):
    """Perplexity of logits against integer targets, skipping `mask_token_id`.

    Args:
        from_logits: whether predictions are logits (else probabilities).
        mask_token_id: target id excluded from the average (padding), or None.

    Example:

    ```python
    model.compile("adam", loss=..., metrics=[Perplexity(mask_token_id=0)])
    ```
    """

    def __init__(self, from_logits=True, mask_token_id=None, name="perplexity", **kwargs):
        super().__init__(name=name, **kwargs)
        self.from_logits = from_logits
        self.mask_token_id = mask_token_id
        self.total_nll = self.add_variable(shape=(), initializer="zeros", name="total_nll")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        nll = keras.losses.sparse_categorical_crossentropy(
            y_true, ops.cast(y_pred, "float32"), from_logits=self.from_logits
        )
        weight = ops.ones_like(nll)
        if self.mask_token_id is not None:
            weight = weight * ops.cast(ops.not_equal(y_true, self.mask_token_id), "float32")
        if sample_weight is not None:
            weight = weight * ops.cast(sample_weight, "float32")
        self.total_nll.assign_add(ops.sum(nll * weight))
        self.count.assign_add(ops.sum(weight))

    def result(self):
        return ops.exp(ops.divide_no_nan(self.total_nll, self.count))

    def reset_state(self):
        self.total_nll.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        config = super().get_config()
        config.update({"from_logits": self.from_logits, "mask_token_id": self.mask_token_id})
        return config

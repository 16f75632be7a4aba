"""The sliding-window baseline of extractive question answering (Rajpurkar et al. 2016, section 5).

Rajpurkar et al. take every constituent of the paragraph's parse as a
candidate, keep those whose sentence overlaps most with the question
(unigrams and bigrams, the candidate itself excluded), and choose among them
with the sliding window of Richardson et al. (2013). Without a parser this
version's candidates are the spans of 1 to `max_words` words inside a
sentence that contain no question word and neither start nor end with a
stop word; the rest follows the paper:

1. overlap: question unigrams (stop words aside) and bigrams found in the
   candidate's sentence outside the candidate; only the candidates with the
   largest overlap stay;
2. sliding window: with T the question's and the candidate's words, a window
   of |T| words slides over the paragraph and scores the sum of
   log(1 + 1 / count(w)) over its words in T (rare words weigh more); the
   candidate with the best window wins (ties: the shorter, then the earlier).

`sliding_window_answer(question, context)` returns the answer's text and
character offsets.
"""

import math
import re

import numpy as np

_WORD = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]")
_SENTENCE_END = frozenset(".!?")
STOP_WORDS = frozenset(
    "a an the of in on at to for from by with and or but as is are was were be been being it its this that "
    "these those which who whom whose what when where why how do does did has have had not no than then so "
    "such into over under about after before during between there their they them he she his her him i we "
    "you your our us my me".split()
)


def _words(text):
    return [(match.group().lower(), match.start(), match.end()) for match in _WORD.finditer(text)]


def _sentences(words):
    """`(start, end)` word ranges of the sentences (split after . ! ?)."""
    ranges, start = [], 0
    for index, (word, _, _) in enumerate(words):
        if word in _SENTENCE_END:
            ranges.append((start, index + 1))
            start = index + 1
    if start < len(words):
        ranges.append((start, len(words)))
    return ranges


def _bigrams(tokens):
    return set(zip(tokens, tokens[1:]))


def sliding_window_answer(question, context, max_words=4):
    """`(answer text, start, end)` chosen by the baseline; character offsets into `context`.

    An empty `("", 0, 0)` when the context has no candidate.
    """
    words = _words(context)
    tokens = [word for word, _, _ in words]
    asked = [word for word, _, _ in _words(question) if word.isalnum() or "-" in word]
    asked_set = set(asked)
    content = asked_set - STOP_WORDS
    asked_bigrams = _bigrams(asked)
    counts = {}
    for token in tokens:
        counts[token] = counts.get(token, 0) + 1
    weight = np.array([math.log(1.0 + 1.0 / counts[token]) for token in tokens])
    in_question = np.array([token in asked_set for token in tokens], bool)

    def usable(token):
        return token.isalnum() or "-" in token

    candidates = []  # (overlap, start word, end word)
    for first, last in _sentences(words):
        for start in range(first, last):
            if not usable(tokens[start]) or tokens[start] in STOP_WORDS or tokens[start] in asked_set:
                continue
            for end in range(start + 1, min(start + max_words, last) + 1):
                if tokens[end - 1] in asked_set or not usable(tokens[end - 1]):
                    break
                if tokens[end - 1] in STOP_WORDS:
                    continue
                rest = tokens[first:start] + ["\0"] + tokens[end:last]
                overlap = len(content & set(rest)) + len(asked_bigrams & _bigrams(rest))
                candidates.append((overlap, start, end))
    if not candidates:
        return "", 0, 0
    best_overlap = max(overlap for overlap, _, _ in candidates)
    best, best_key = None, None
    for overlap, start, end in candidates:
        if overlap != best_overlap:
            continue
        targets = in_question.copy()
        span = set(tokens[start:end])
        targets |= np.array([token in span for token in tokens], bool)
        size = min(len(asked_set | span), len(tokens))
        sums = np.concatenate([[0.0], np.cumsum(weight * targets)])
        window = float(np.max(sums[size:] - sums[:-size]))
        key = (window, -(end - start), -start)
        if best_key is None or key > best_key:
            best, best_key = (start, end), key
    start_char, end_char = words[best[0]][1], words[best[1] - 1][2]
    return context[start_char:end_char], start_char, end_char

"""NLTK-style text cleaning (lower-casing, word tokenization, stop-word removal).

Uses NLTK's data (punkt, stopwords) when it is installed. Without it, which is
the usual offline case, word tokenization falls back to NLTK's data-free
Treebank-style tokenizer (the one `nltk.word_tokenize` applies to each
sentence) after a rule-based sentence split, and stop-word removal to a
built-in copy of NLTK's English list. A warning says so once.
"""

import functools
import logging
import re

logger = logging.getLogger("tfllm.text")

# NLTK's English stop-word list (nltk_data corpora/stopwords/english, 179 words).
ENGLISH_STOPWORDS = frozenset(
    """
    i me my myself we our ours ourselves you you're you've you'll you'd your
    yours yourself yourselves he him his himself she she's her hers herself it
    it's its itself they them their theirs themselves what which who whom this
    that that'll these those am is are was were be been being have has had
    having do does did doing a an the and but if or because as until while of
    at by for with about against between into through during before after above
    below to from up down in out on off over under again further then once here
    there when where why how all any both each few more most other some such no
    nor not only own same so than too very s t can will just don don't should
    should've now d ll m o re ve y ain aren aren't couldn couldn't didn didn't
    doesn doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma mightn
    mightn't mustn mustn't needn needn't shan shan't shouldn shouldn't wasn
    wasn't weren weren't won won't wouldn wouldn't
    """.split()
)

# A sentence ends at . ! or ? (plus closing quotes/brackets) and white space,
# unless the period ends a common abbreviation or an initial ("Mr.", "J.").
# Enough to keep the Treebank rule that only a sentence-final period is split
# off; punkt, when installed, does better.
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*\s+")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs etc e.g i.e mt ft no fig approx dept est inc ltd co corp "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)


def sent_tokenize(text):
    """Splits text into sentences (NLTK punkt when installed, else rules)."""
    return _backend()[1](text)


def _rule_sentences(text):
    text = text.strip()
    sentences, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        words = text[start : match.start()].split()
        last = words[-1].lower() if words else ""
        if text[match.start()] == "." and (last in _ABBREVIATIONS or len(last) == 1):
            continue
        sentences.append(text[start : match.end()].strip())
        start = match.end()
    if start < len(text):
        sentences.append(text[start:])
    return sentences


@functools.lru_cache(maxsize=None)
def _backend():
    """Returns (word_tokenize, sent_tokenize), resolved once per process."""
    import nltk

    try:
        nltk.word_tokenize("Probe sentence. Another one.")
        return nltk.word_tokenize, nltk.sent_tokenize
    except LookupError:
        pass
    from nltk.tokenize.destructive import NLTKWordTokenizer

    tokenizer = NLTKWordTokenizer()
    logger.warning(
        "NLTK 'punkt' data is not installed: word_tokenize uses NLTK's data-free "
        "Treebank tokenizer with a rule-based sentence split "
        "(install it with `python -m nltk.downloader punkt_tab` to use punkt)"
    )

    def word_tokenize(text):
        return [token for sentence in _rule_sentences(text) for token in tokenizer.tokenize(sentence)]

    return word_tokenize, _rule_sentences


@functools.lru_cache(maxsize=None)
def english_stopwords():
    """Returns NLTK's English stop words (the built-in copy without NLTK data)."""
    try:
        from nltk.corpus import stopwords

        return frozenset(stopwords.words("english"))
    except LookupError:
        logger.warning(
            "NLTK 'stopwords' data is not installed: using tfllm's built-in copy "
            "of NLTK's English stop-word list"
        )
        return ENGLISH_STOPWORDS


def word_tokenize(text):
    """Splits text into words and punctuation, as `nltk.word_tokenize` does.

    Example:
        >>> word_tokenize("I don't like it.")
        ['I', 'do', "n't", 'like', 'it', '.']
    """
    if not isinstance(text, str):
        raise TypeError(f"Expected a string. Received: {type(text).__name__}")
    return _backend()[0](text)


def clean_text(text, *, lowercase=True, remove_stopwords=True):
    """Cleans text as the reference NLTK example does.

    Lower-cases, word-tokenizes, drops English stop words and joins the
    tokens with single spaces.

    Args:
        text: a string.
        lowercase: lower-case before tokenizing.
        remove_stopwords: drop NLTK's English stop words (compared lower-cased).

    Returns:
        The cleaned string.

    Example:
        >>> clean_text("This is a terrible movie.")
        'terrible movie .'
    """
    if not isinstance(text, str):
        raise TypeError(f"Expected a string. Received: {type(text).__name__}")
    tokens = word_tokenize(text.lower() if lowercase else text)
    if remove_stopwords:
        stop = english_stopwords()
        tokens = [token for token in tokens if token.lower() not in stop]
    return " ".join(tokens)

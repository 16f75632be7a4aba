"""Words with character offsets, and word + character + case features, inside the graph.

`split_words(texts)` is the word tokenizer a tagger's export runs on raw text
(and the table reader runs on training texts, so both agree): whitespace
splits words, then one leading `( [ { "` and one trailing `, ; : ! ? ) ] } "`
or `'s` come off as words of their own, and a trailing period comes off the
last word of a text or a word of 4+ letters ("Paris." -> "Paris" ".", while
"U.S.", "Inc." and "M." keep theirs, as CoNLL-2003 writes them).

`WordFeaturizer` maps words to the ids a `tfllm.models.LSTMTagger` reads:
lower-cased words with digits as 0 (1 = unknown, 0 = padding), a case class
per word, and up to `max_chars` character ids per word.
"""

import collections

import tensorflow as tf

PAD, UNK = "[PAD]", "[UNK]"
# Case classes (0 is padding): what the lower-cased word id no longer says.
CASE_PATTERNS = (
    ("number", r"[\d.,:/\-]*\d[\d.,:/\-]*"),
    ("lower", r"[^\p{Lu}]*\p{Ll}[^\p{Lu}]*"),
    ("upper", r"[^\p{Ll}]*\p{Lu}[^\p{Ll}]*"),
    ("title", r"\p{Lu}[^\p{Lu}]*"),
    ("mixed", r".*\pL.*"),
)
NUM_CASES = len(CASE_PATTERNS) + 2  # padding, the patterns, anything else (punctuation)
_LEAD = r'[(\[{"].+'
_TRAIL_ONE = r'.+[,;:!?)\]}"]'
_TRAIL_PERIOD_WORD = r"\pL{4,}\."
_TRAIL_PERIOD_LAST = r"[^.]+\."
_POSSESSIVE = r".+'s"


def split_words(texts):
    """Words of each text and their byte offsets: `(words, starts, ends)`, ragged `[batch, (words)]`.

    Args:
        texts: a tf.string tensor `[batch]`.

    Returns:
        `words` (tf.string), `starts` and `ends` (int64 byte offsets into
        each text, end exclusive), all `tf.RaggedTensor`s with equal row
        lengths.
    """
    import tensorflow_text as tf_text

    texts = tf.convert_to_tensor(texts, tf.string)
    tokens, starts, ends = tf_text.WhitespaceTokenizer().tokenize_with_offsets(texts)
    flat = tokens.flat_values
    start, end = tf.cast(starts.flat_values, tf.int64), tf.cast(ends.flat_values, tf.int64)
    rows = tokens.value_rowids()
    length = end - start
    last = tf.equal(tf.range(tf.size(flat, out_type=tf.int64)) + 1,
                    tf.gather(tokens.row_splits[1:], rows))
    lead = tf.cast(tf.strings.regex_full_match(flat, _LEAD), tf.int64)
    rest = tf.strings.substr(flat, tf.cast(lead, tf.int32), tf.cast(length - lead, tf.int32))
    trail = tf.where(
        tf.strings.regex_full_match(rest, _POSSESSIVE), tf.constant(2, tf.int64),
        tf.cast(
            tf.strings.regex_full_match(rest, _TRAIL_ONE)
            | tf.strings.regex_full_match(rest, _TRAIL_PERIOD_WORD)
            | (last & tf.strings.regex_full_match(rest, _TRAIL_PERIOD_LAST)),
            tf.int64,
        ),
    )
    # (tokens, 3): the leading mark, the word, the trailing mark.
    piece_starts = tf.stack([start, start + lead, end - trail], axis=1)
    piece_ends = tf.stack([start + lead, end - trail, end], axis=1)
    keep = piece_ends > piece_starts
    kept_per_token = tf.reduce_sum(tf.cast(keep, tf.int64), axis=1)
    row_lengths = tf.math.unsorted_segment_sum(kept_per_token, rows, tokens.nrows())
    piece_starts = tf.boolean_mask(piece_starts, keep)
    piece_ends = tf.boolean_mask(piece_ends, keep)
    piece_rows = tf.repeat(tf.repeat(rows, 3), tf.reshape(tf.cast(keep, tf.int64), [-1]))
    words = tf.strings.substr(tf.gather(texts, piece_rows), piece_starts, piece_ends - piece_starts)

    def ragged(values):
        return tf.RaggedTensor.from_row_lengths(values, row_lengths, validate=False)

    return ragged(words), ragged(piece_starts), ragged(piece_ends)


def char_offsets(texts, byte_offsets):
    """Byte offsets into texts as character (code point) offsets; `texts` and `byte_offsets` of one shape."""
    prefix = tf.strings.substr(texts, tf.zeros_like(byte_offsets), byte_offsets)
    return tf.cast(tf.strings.length(prefix, unit="UTF8_CHAR"), tf.int64)


def normalize_word(word):
    """The form a word's vocabulary entry has: lower case, every digit 0 (Python side)."""
    return "".join("0" if ch.isdigit() else ch for ch in word.lower())


def build_word_vocabularies(sentences, min_count=2):
    """`(words, chars)`: the word and character vocabularies of training sentences (lists of words).

    Words seen fewer than `min_count` times stay out, so the unknown-word
    vector learns from rare words; every character seen is in. Both start
    with padding and unknown.
    """
    word_counts = collections.Counter(normalize_word(word) for words in sentences for word in words)
    char_counts = collections.Counter(ch for words in sentences for word in words for ch in word)
    words = sorted((w for w, c in word_counts.items() if c >= min_count), key=lambda w: (-word_counts[w], w))
    chars = sorted(char_counts, key=lambda ch: (-char_counts[ch], ch))
    return [PAD, UNK, *words], [PAD, UNK, *chars]


def _table(vocabulary):
    keys = tf.constant(list(vocabulary[2:]), tf.string)
    values = tf.range(2, len(vocabulary), dtype=tf.int64)
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), default_value=1)


class WordFeaturizer(tf.Module):
    """Words (ragged tf.string `[batch, (words)]`) -> the dense inputs of a word + character tagger.

    Returns `{"word_ids": [batch, words], "case_ids": [batch, words],
    "char_ids": [batch, words, chars]}` (int32, 0 = padding), with at least
    one word column so a batch of empty texts still runs.

    Args:
        words: the word vocabulary (`build_word_vocabularies`).
        chars: the character vocabulary.
        max_chars: characters kept per word (its first ones).
    """

    def __init__(self, words, chars, max_chars=20):
        super().__init__(name="word_featurizer")
        self.words = list(words)
        self.chars = list(chars)
        self.max_chars = int(max_chars)
        self._word_table = _table(self.words)
        self._char_table = _table(self.chars)

    def __call__(self, words):
        if not isinstance(words, tf.RaggedTensor):
            words = tf.RaggedTensor.from_tensor(words, padding="")
        flat = words.flat_values
        normalized = tf.strings.regex_replace(tf.strings.lower(flat, encoding="utf-8"), r"\d", "0")
        word_ids = self._word_table.lookup(normalized)
        case_ids = tf.fill(tf.shape(flat), tf.constant(NUM_CASES - 1, tf.int64))
        for index, (_, pattern) in reversed(list(enumerate(CASE_PATTERNS, start=1))):
            case_ids = tf.where(tf.strings.regex_full_match(flat, pattern), tf.constant(index, tf.int64), case_ids)
        chars = tf.strings.unicode_split(flat, "UTF-8")[:, : self.max_chars]
        char_ids = chars.with_flat_values(self._char_table.lookup(chars.flat_values))

        def dense(values):
            tensor = tf.cast(words.with_flat_values(values).to_tensor(0), tf.int32)
            missing = tf.maximum(1 - tf.shape(tensor)[1:], 0)
            return tf.pad(tensor, tf.concat([[[0, 0]], tf.stack([tf.zeros_like(missing), missing], 1)], 0))

        return {"word_ids": dense(word_ids), "case_ids": dense(case_ids), "char_ids": dense(char_ids)}

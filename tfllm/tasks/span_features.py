"""Question + context strings -> BERT windows with offsets, and start/end logits -> answer spans, in graph.

`SpanFeaturizer` is a `tf.Module` that runs inside the export and, eagerly,
on the training data, so both see the same tokens:

1. words: the text is split on whitespace, punctuation and CJK characters
   (keras-hub's WordPiece pre-tokenization patterns), keeping each word's
   byte offsets in the original string; each word is then lower-cased and
   stripped of accents (when the vocabulary was) and cut into WordPiece ids;
   every piece carries its word's offsets.
2. windows: `[CLS] question [SEP] context-window [SEP]` with segment ids 0
   for the question part and 1 for the context part (the token, position and
   segment embeddings of BERT). With `mark_matches`, context tokens whose
   word also occurs in the question (stop words and punctuation aside) get
   segment id 2 instead: the exact-match feature of DrQA (Chen et al. 2017),
   given to every layer through the segment embedding, which a small model
   trained on a few thousand questions learns to use far sooner than it
   learns to match words through attention. A context longer than the room
   left beside the question is cut into overlapping windows, one every
   `doc_stride` tokens, the last reaching the context's end.

`best_spans` picks, for every question, the span whose start + end logit is
largest over all its windows, with at most `max_answer_length` tokens, and
maps it back to character offsets of the original context.
"""

import tensorflow as tf
import tensorflow_text as tf_text

from tfllm.serving import signatures

# keras-hub's WordPiece splitting: whitespace and invisible controls split
# and disappear, punctuation and CJK characters split and stay.
_PUNCTUATION = r"[!-/]|[:-@]|[\[-`]|[{-~]|[\p{P}]"
_CJK = (r"[\x{4E00}-\x{9FFF}]|[\x{3400}-\x{4DBF}]|[\x{20000}-\x{2A6DF}]|[\x{2A700}-\x{2B73F}]|"
        r"[\x{2B740}-\x{2B81F}]|[\x{2B820}-\x{2CEAF}]|[\x{F900}-\x{FAFF}]|[\x{2F800}-\x{2FA1F}]")
_SPLIT = rf"\s|\p{{Cc}}|\p{{Cf}}|{_PUNCTUATION}|{_CJK}"
_KEEP = rf"{_PUNCTUATION}|{_CJK}"
NOT_CONTEXT = -1  # the offset of tokens outside the context ([CLS], question, [SEP], padding)
# Question words that do not mark a context word as a match (after normalisation).
STOP_WORDS = (
    "a", "an", "the", "of", "in", "on", "at", "to", "for", "from", "by", "with", "and", "or", "as", "is", "are",
    "was", "were", "be", "been", "it", "its", "this", "that", "these", "those", "which", "who", "whom", "whose",
    "what", "when", "where", "why", "how", "do", "does", "did", "has", "have", "had", "not", "s", "than",
)


def normalize_words(words, lowercase=True, strip_accents=True):
    """Words as the WordPiece vocabulary sees them (keras-hub's normalisation)."""
    if strip_accents:
        words = tf.strings.regex_replace(tf_text.normalize_utf8(words, "NFD"), r"\p{Mn}", "")
    if lowercase:
        words = tf_text.case_fold_utf8(words)
    return words


def split_words(texts):
    """`(words, starts, ends)`: ragged `[batch, words]` strings and their byte offsets."""
    return tf_text.regex_split_with_offsets(texts, _SPLIT, _KEEP)


class SpanFeaturizer(tf.Module):
    """Tokenizes questions and contexts with offsets and packs them into BERT windows.

    Args:
        vocabulary: WordPiece tokens; must hold "[CLS]", "[SEP]" and "[UNK]"
            ("[PAD]" first, id 0).
        lowercase, strip_accents: the vocabulary's normalisation.
        max_seq_length: tokens per window, special tokens included.
        doc_stride: context tokens between the starts of two windows.
        max_query_length: question tokens kept (the rest is cut).
        mark_matches: give context tokens whose word is in the question segment id 2.
    """

    def __init__(self, vocabulary, *, lowercase=True, strip_accents=True, max_seq_length=256, doc_stride=96,
                 max_query_length=32, mark_matches=True, name="span_featurizer"):
        super().__init__(name=name)
        vocabulary = [str(token) for token in vocabulary]
        for token in ("[CLS]", "[SEP]", "[UNK]"):
            if token not in vocabulary:
                raise ValueError(f"the vocabulary has no {token} token")
        if max_query_length + 3 >= max_seq_length:
            raise ValueError(f"max_query_length ({max_query_length}) + 3 must be below max_seq_length "
                             f"({max_seq_length}), leaving room for the context")
        if not 0 < doc_stride <= max_seq_length - max_query_length - 3:
            raise ValueError(f"doc_stride must be between 1 and the context room "
                             f"({max_seq_length - max_query_length - 3}). Received: doc_stride={doc_stride}")
        self.vocabulary_size = len(vocabulary)
        self.lowercase, self.strip_accents = bool(lowercase), bool(strip_accents)
        self.max_seq_length, self.doc_stride, self.max_query_length = max_seq_length, doc_stride, max_query_length
        self.mark_matches = bool(mark_matches)
        self.num_segments = 3 if self.mark_matches else 2
        self.cls_id, self.sep_id = vocabulary.index("[CLS]"), vocabulary.index("[SEP]")
        self.wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=vocabulary, suffix_indicator="##", unknown_token="[UNK]", token_out_type=tf.int32,
            no_pretokenization=True, support_detokenization=False,
        )

    def settings(self):
        """The keyword arguments that rebuild this featurizer (with its vocabulary)."""
        return {"lowercase": self.lowercase, "strip_accents": self.strip_accents,
                "max_seq_length": self.max_seq_length, "doc_stride": self.doc_stride,
                "max_query_length": self.max_query_length, "mark_matches": self.mark_matches}

    def tokenize(self, texts):
        """`(ids, starts, ends)`: ragged `[batch, pieces]`, each piece with its word's byte offsets."""
        return self._tokenize(texts)[:3]

    def _tokenize(self, texts):
        words, starts, ends = split_words(texts)
        words = normalize_words(words, self.lowercase, self.strip_accents)
        pieces = self.wordpiece.tokenize(words)
        word_of_piece = pieces.values.value_rowids()  # (total pieces,) index into the batch's words
        ids = pieces.merge_dims(1, 2)
        return (ids, ids.with_flat_values(tf.gather(starts.flat_values, word_of_piece)),
                ids.with_flat_values(tf.gather(ends.flat_values, word_of_piece)), words, word_of_piece)

    @staticmethod
    def _matches(question_words, context_words, context_ids, word_of_piece):
        """int64 ragged `[batch, pieces]`: 1 where a context piece's word is a question word."""
        content = tf.logical_and(tf.strings.regex_full_match(question_words, r".*\w.*"), tf.logical_not(
            tf.reduce_any(tf.equal(question_words[..., None], tf.constant(STOP_WORDS)), axis=-1)))
        asked = tf.where(content, question_words, "").to_tensor("")  # (batch, question words)
        context = context_words.to_tensor("\0")  # (batch, context words); never equal to ""
        found = tf.reduce_any(tf.equal(context[:, :, None], asked[:, None, :]), axis=2)
        found = tf.RaggedTensor.from_tensor(found, lengths=context_words.row_lengths())
        return context_ids.with_flat_values(tf.cast(tf.gather(found.flat_values, word_of_piece), tf.int64))

    def windows(self, questions, contexts):
        """The windows of a batch of (question, context) pairs.

        Returns:
            dict of `token_ids`, `segment_ids`, `padding_mask` (int32
            `(windows, length)`, right-padded), `starts` / `ends` (int64 byte
            offsets in the context of each token, `NOT_CONTEXT` elsewhere) and
            `example` (int64 `(windows,)`: the pair each window belongs to).
        """
        question_ids, _, _, question_words, _ = self._tokenize(questions)
        question_ids = question_ids[:, : self.max_query_length]
        context_ids, starts, ends, context_words, word_of_piece = self._tokenize(contexts)
        if self.mark_matches:
            matches = self._matches(question_words, context_words, context_ids, word_of_piece)
        else:
            matches = tf.zeros_like(context_ids, tf.int64)
        question_length = question_ids.row_lengths()
        context_length = context_ids.row_lengths()
        room = self.max_seq_length - 3 - question_length  # context tokens per window
        stride = tf.constant(self.doc_stride, tf.int64)
        # Windows start every `stride` tokens until one reaches the context's end.
        count = 1 + (tf.maximum(context_length - room, 0) + stride - 1) // stride
        example = tf.repeat(tf.range(tf.size(count, out_type=tf.int64)), count)  # (windows,)
        first = tf.ragged.range(count).flat_values * stride
        length = tf.minimum(tf.gather(room, example), tf.gather(context_length, example) - first)
        positions = tf.ragged.range(first, first + tf.maximum(length, 0))  # [windows, (tokens)]
        flat = positions + tf.expand_dims(tf.gather(context_ids.row_starts(), example), 1)

        def take(values):
            return tf.gather(values.flat_values, flat)

        windows = tf.shape(example, out_type=tf.int64)[0]
        one = tf.RaggedTensor.from_tensor(tf.ones([windows, 1], tf.int64))
        question = tf.gather(question_ids, example)
        context = take(context_ids)
        token_ids = tf.concat([one * self.cls_id, tf.cast(question, tf.int64), one * self.sep_id,
                               tf.cast(context, tf.int64), one * self.sep_id], axis=1)
        segment_ids = tf.concat([one * 0, tf.zeros_like(question, tf.int64), one * 0,
                                 1 + take(matches), one], axis=1)

        def offsets(values):
            outside = one * NOT_CONTEXT
            return tf.concat([outside, tf.ones_like(question, tf.int64) * NOT_CONTEXT, outside,
                              take(values), outside], axis=1).to_tensor(NOT_CONTEXT)

        token_ids = tf.cast(token_ids.to_tensor(0), tf.int32)
        return {
            "token_ids": token_ids,
            "segment_ids": tf.cast(segment_ids.to_tensor(0), tf.int32),
            "padding_mask": tf.cast(tf.not_equal(token_ids, 0), tf.int32),
            "starts": offsets(starts),
            "ends": offsets(ends),
            "example": example,
        }


def best_spans(logits, windows, contexts, max_answer_length):
    """The best answer of every question over its windows.

    Args:
        logits: float `(windows, length, 2)` start and end logits.
        windows: what `SpanFeaturizer.windows` returned.
        contexts: the `(batch,)` context strings.
        max_answer_length: the most tokens an answer spans.

    Returns:
        dict of `answer` (strings), `score` (float32: the span's probability
        in its window, start and end softmax over the context tokens),
        `start` / `end` (int64 character offsets; `answer == context[start:end]`).
    """
    valid = tf.greater_equal(windows["starts"], 0)  # (windows, length)
    logits = tf.cast(logits, tf.float32)
    very_negative = tf.constant(-1e9, tf.float32)
    start_logits = tf.where(valid, logits[..., 0], very_negative)
    end_logits = tf.where(valid, logits[..., 1], very_negative)
    length = tf.shape(start_logits)[1]
    # Spans (i, j) with i <= j < i + max_answer_length.
    band = tf.linalg.band_part(tf.ones([length, length], tf.bool), 0, max_answer_length - 1)
    pair = start_logits[:, :, None] + end_logits[:, None, :]  # (windows, length, length)
    pair = tf.where(band[None], pair, very_negative * 2)
    flat = tf.reshape(pair, [tf.shape(pair)[0], -1])
    best_flat = tf.argmax(flat, axis=1, output_type=tf.int32)  # (windows,)
    best = tf.reduce_max(flat, axis=1)
    start_token, end_token = best_flat // length, best_flat % length
    log_probability = (best - tf.reduce_logsumexp(start_logits, axis=1) - tf.reduce_logsumexp(end_logits, axis=1))
    batch = tf.shape(contexts, out_type=tf.int64)[0]
    per_question = tf.RaggedTensor.from_value_rowids(best, windows["example"], nrows=batch)
    window = per_question.row_starts() + tf.argmax(per_question.to_tensor(-3e9), axis=1)  # (batch,)

    def at(values, token):
        return tf.gather_nd(values, tf.stack([window, tf.cast(tf.gather(token, window), tf.int64)], axis=1))

    byte_start = tf.maximum(at(windows["starts"], start_token), 0)
    byte_end = tf.maximum(at(windows["ends"], end_token), byte_start)
    answer = tf.strings.substr(contexts, byte_start, byte_end - byte_start, unit="BYTE")
    start = tf.cast(tf.strings.length(tf.strings.substr(contexts, tf.zeros_like(byte_start), byte_start, unit="BYTE"), unit="UTF8_CHAR"),
                    tf.int64)
    return {
        signatures.ANSWER: answer,
        signatures.SCORE: tf.exp(tf.gather(log_probability, window)),
        signatures.START: start,
        signatures.END: start + tf.cast(tf.strings.length(answer, unit="UTF8_CHAR"), tf.int64),
    }

"""Vocabularies and tokenizer layers that run inside the graph.

Tokenizers built here are Keras layers: put them inside a model so that the
exported SavedModel takes raw strings. A SavedModel holding a WordPiece
tokenizer needs `import tensorflow_text` before `tf.saved_model.load` (TF
Serving links those ops already).
"""

import json
import os

import keras
import keras_hub
import numpy as np
import pandas as pd
import tensorflow as tf

from tfllm._files import write_text_atomically

RESERVED_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[START]", "[END]")
PAD, UNK = "[PAD]", "[UNK]"


def _text_dataset(texts, batch_size=1024):
    if isinstance(texts, tf.data.Dataset):
        return texts
    if isinstance(texts, (pd.Series, pd.Index)):
        texts = texts.to_numpy()
    if isinstance(texts, (str, bytes)):
        raise ValueError("`texts` must be a sequence of strings, not a single string")
    texts = [t for t in texts]
    if not texts:
        raise ValueError("`texts` is empty")
    return tf.data.Dataset.from_tensor_slices(tf.constant(texts, tf.string)).batch(batch_size)


def build_wordpiece_vocabulary(
    texts,
    vocabulary_size=8000,
    *,
    lowercase=True,
    reserved_tokens=RESERVED_TOKENS,
    max_texts=None,
    seed=0,
):
    """Learns a WordPiece subword vocabulary from a corpus.

    Wraps `keras_hub.tokenizers.compute_word_piece_vocabulary`. Its learner
    is pure Python: a couple of thousand reviews take a minute on two cores,
    so pass `max_texts` to learn from a seeded random sample of a large corpus.

    Args:
        texts: strings (list, array, pandas Series) or a `tf.data.Dataset`
            of (batches of) strings.
        vocabulary_size: the most tokens, reserved tokens included.
        lowercase: lower-case (and case-fold) text first; the tokenizer must
            use the same setting.
        reserved_tokens: tokens placed first, in order. "[PAD]" must come
            first (id 0 is padding everywhere in tfllm) and "[UNK]" must be
            among them.
        max_texts: learn from at most this many texts, drawn at random with
            `seed` (None: all). Not for a `tf.data.Dataset`.
        seed: seed of that sample.

    Returns:
        The vocabulary as a list of strings; `vocab[0] == "[PAD]"`.

    Example:
        >>> vocab = build_wordpiece_vocabulary(frame.text, 8000)
        >>> tokenizer = make_wordpiece_tokenizer(vocab)
    """
    reserved_tokens = list(reserved_tokens)
    if not reserved_tokens or reserved_tokens[0] != PAD:
        raise ValueError(
            f"reserved_tokens must start with {PAD!r} (padding id 0). "
            f"Received: reserved_tokens={reserved_tokens}"
        )
    if UNK not in reserved_tokens:
        raise ValueError(
            f"reserved_tokens must include {UNK!r}. Received: reserved_tokens={reserved_tokens}"
        )
    if vocabulary_size <= len(reserved_tokens):
        raise ValueError(
            "vocabulary_size must exceed the number of reserved tokens. "
            f"Received: vocabulary_size={vocabulary_size}"
        )
    if max_texts is not None:
        if isinstance(texts, tf.data.Dataset):
            raise ValueError("`max_texts` needs a sequence of texts, not a tf.data.Dataset")
        texts = list(texts.to_numpy() if isinstance(texts, (pd.Series, pd.Index)) else texts)
        if len(texts) > max_texts:
            chosen = np.random.default_rng(seed).choice(len(texts), int(max_texts), replace=False)
            texts = [texts[i] for i in np.sort(chosen)]
    vocabulary = keras_hub.tokenizers.compute_word_piece_vocabulary(
        _text_dataset(texts),
        vocabulary_size,
        lowercase=lowercase,
        reserved_tokens=reserved_tokens,
    )
    return [str(token) for token in vocabulary]


def save_vocabulary(vocabulary, path):
    """Writes a vocabulary, one token per line (UTF-8), atomically."""
    tokens = [str(token) for token in vocabulary]
    for index, token in enumerate(tokens):
        if "\n" in token or "\r" in token:
            raise ValueError(f"Token {index} contains a line break: {token!r}")
    write_text_atomically(path, "".join(token + "\n" for token in tokens))


def load_vocabulary(path):
    """Reads a vocabulary written by `save_vocabulary` (one token per line)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such vocabulary file")
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    if not text:
        raise ValueError(f"{path}: vocabulary file is empty")
    return text[:-1].split("\n") if text.endswith("\n") else text.split("\n")


def make_wordpiece_tokenizer(
    vocabulary,
    sequence_length=None,
    lowercase=True,
    *,
    special_tokens_in_strings=False,
):
    """Returns a keras_hub `WordPieceTokenizer` layer for `vocabulary`.

    The layer maps strings to int32 ids: a batch gives a ragged tensor, or a
    dense `(batch, sequence_length)` one right-padded with 0 when
    `sequence_length` is set. It runs in tf.data and inside models.

    Args:
        vocabulary: a token list (from `build_wordpiece_vocabulary`) or the
            path of a vocabulary file.
        sequence_length: pad/truncate outputs to this length (None: ragged).
        lowercase: must match the setting the vocabulary was built with.
        special_tokens_in_strings: map reserved tokens written in the text
            (e.g. "[SEP]" between dialogue turns) to their ids.

    Example:
        >>> tokenizer = make_wordpiece_tokenizer(vocab)
        >>> ids = tokenizer(tf.constant(["a great film"]))
    """
    if isinstance(vocabulary, (str, os.PathLike)):
        vocabulary = load_vocabulary(vocabulary)
    vocabulary = list(vocabulary)
    if UNK not in vocabulary:
        raise ValueError(f"The vocabulary has no {UNK!r} token")
    special = [token for token in RESERVED_TOKENS if token in vocabulary]
    return keras_hub.tokenizers.WordPieceTokenizer(
        vocabulary=vocabulary,
        sequence_length=sequence_length,
        lowercase=lowercase,
        oov_token=UNK,
        special_tokens=special if special_tokens_in_strings else None,
        special_tokens_in_strings=special_tokens_in_strings,
    )


def build_word_vectorizer(
    texts,
    max_tokens=20000,
    *,
    standardize="lower_and_strip_punctuation",
    ngrams=None,
    ragged=False,
):
    """Builds and adapts a word-level `keras.layers.TextVectorization`.

    The word tokenizer of the LSTM baseline: id 0 is padding, id 1 is "[UNK]",
    then words by frequency.

    Args:
        texts: strings (list, array, Series) or a `tf.data.Dataset` of them.
        max_tokens: vocabulary size, padding and OOV included.
        standardize: as in `TextVectorization` (a string option or None).
        ngrams: add n-grams up to this order (None: words only).
        ragged: return ragged ids instead of dense ones padded with 0.

    Returns:
        The adapted layer, mapping strings to int64 ids of variable length.
        Save its vocabulary with `save_word_vectorizer`.
    """
    if callable(standardize):
        raise ValueError(
            "Pass `standardize` as a string option or None so the vectorizer can be "
            "saved and reloaded"
        )
    layer = keras.layers.TextVectorization(
        max_tokens=max_tokens,
        standardize=standardize,
        ngrams=ngrams,
        output_mode="int",
        output_sequence_length=None,
        ragged=ragged,
    )
    layer.adapt(_text_dataset(texts))
    return layer


_VECTORIZER_KEYS = ("max_tokens", "standardize", "split", "ngrams", "ragged")


def save_word_vectorizer(vectorizer, path):
    """Writes a `TextVectorization`'s settings and vocabulary as JSON, atomically."""
    config = vectorizer.get_config()
    settings = {key: config.get(key) for key in _VECTORIZER_KEYS}
    if settings["ngrams"] is not None:
        settings["ngrams"] = np.asarray(settings["ngrams"]).tolist()
    vocabulary = [str(token) for token in vectorizer.get_vocabulary()]
    write_text_atomically(
        path,
        json.dumps({"config": settings, "vocabulary": vocabulary}, ensure_ascii=False) + "\n",
    )


def load_word_vectorizer(path):
    """Rebuilds a `TextVectorization` written by `save_word_vectorizer`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such vectorizer file")
    with open(path, encoding="utf-8") as f:
        try:
            saved = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error.msg})") from None
    if not isinstance(saved, dict) or "vocabulary" not in saved or "config" not in saved:
        raise ValueError(f"{path}: expected an object with 'config' and 'vocabulary'")
    return keras.layers.TextVectorization(
        vocabulary=saved["vocabulary"],
        output_mode="int",
        output_sequence_length=None,
        **saved["config"],
    )

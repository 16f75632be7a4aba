"""Character-level tokenization: one id per Unicode code point, for corpora like tiny Shakespeare."""

import keras
import keras_hub
import numpy as np

# Ids below this always exist, so ASCII text never falls into the catch-all id.
MIN_CHAR_VOCABULARY = 128


def char_vocabulary_size(texts):
    """The vocabulary size a character tokenizer needs for `texts`.

    Ids are code points; id 0 (NUL) is padding. The size covers the largest
    code point in `texts` plus one catch-all id that any larger code point
    met later maps to.
    """
    largest = 0
    for text in texts:
        if text:
            largest = max(largest, int(np.frombuffer(text.encode("utf-32-le"), np.uint32).max()))
    return max(MIN_CHAR_VOCABULARY, largest + 2)


@keras.saving.register_keras_serializable(package="tfllm")
class CharTokenizer(keras_hub.tokenizers.UnicodeCodepointTokenizer):
    """keras_hub's `UnicodeCodepointTokenizer`, savable with `save_to_preset` (it has no asset files).

    Loading it back from a preset needs this module imported (`tfllm.text.characters`).
    """

    def save_assets(self, dir_path):
        """Nothing to save: code points need no vocabulary file."""

    def load_assets(self, dir_path):
        """Nothing to load."""

    def load_preset_assets(self, preset):
        """Nothing to load (keras_hub's version expects at least one asset file)."""


def make_char_tokenizer(vocabulary_size, sequence_length=None):
    """A `CharTokenizer` that keeps case: strings -> code point ids.

    Args:
        vocabulary_size: from `char_vocabulary_size`; code points at or above
            `vocabulary_size - 1` map to that last id.
        sequence_length: pad/truncate to this length (None: ragged).

    Example:
        >>> tokenizer = make_char_tokenizer(char_vocabulary_size(texts))
        >>> tokenizer("To be")  # [84, 111, 32, 98, 101]
    """
    return CharTokenizer(
        sequence_length=sequence_length,
        lowercase=False,
        vocabulary_size=int(vocabulary_size),
        dtype="int32",
    )


def encode_chars(text, vocabulary_size):
    """`text` as an int32 array of ids, as `make_char_tokenizer` maps it (fast, for whole corpora)."""
    ids = np.frombuffer(text.encode("utf-32-le"), np.uint32).astype(np.int64)
    return np.minimum(ids, vocabulary_size - 1).astype(np.int32)

"""The tokenizer of a pre-training run: WordPiece learned on the corpus, or one id per character."""

import dataclasses
import itertools
import json
import os

import numpy as np

from tfllm._files import write_text_atomically

MASK_TOKEN = "[MASK]"


@dataclasses.dataclass
class CorpusTokenizer:
    """A keras_hub tokenizer with the ids pre-training needs.

    Attributes:
        kind: "wordpiece" or "char".
        tokenizer: the keras_hub tokenizer (strings -> ids, ids -> strings).
        vocabulary_size: ids the model embeds (a character model's [MASK] id
            comes after the tokenizer's).
        separator_id: placed between documents.
        mask_id: the [MASK] id.
        pad_id: padding (0).
    """

    kind: str
    tokenizer: object
    vocabulary_size: int
    separator_id: int
    mask_id: int
    pad_id: int = 0

    def encode(self, document):
        """The ids of one document (an int32 array)."""
        import tensorflow as tf

        from tfllm.text.characters import encode_chars

        if self.kind == "char":
            return encode_chars(document, self.tokenizer.vocabulary_size())
        lines = [line for line in document.splitlines() if line.strip()]
        if not lines:
            return np.zeros([0], np.int32)
        ids = self.tokenizer(tf.constant(lines))
        if isinstance(ids, tf.RaggedTensor):
            return ids.flat_values.numpy().astype(np.int32)
        # keras_hub tokenizers return Python lists when called eagerly.
        return np.fromiter(itertools.chain.from_iterable(ids), np.int32)


def build_tokenizer(kind, documents, vocabulary_size, run_dir, log=print):
    """The tokenizer of a run: reused from `run_dir` when the run resumes, else learned and saved there."""
    from tfllm import text
    from tfllm.text.characters import char_vocabulary_size

    settings_path = run_dir.file("tokenizer.json")
    vocabulary_path = run_dir.file("vocabulary.txt")
    # A finished run left no backup: training again starts afresh, on this corpus.
    if run_dir.resuming and os.path.exists(settings_path):
        with open(settings_path, encoding="utf-8") as file:
            settings = json.load(file)
        if settings["kind"] != kind:
            raise ValueError(f"{settings_path}: this run uses the {settings['kind']} tokenizer, not {kind}")
        log(f"reusing the tokenizer of {run_dir.path}")
    elif kind == "char":
        settings = {"kind": "char", "vocabulary_size": char_vocabulary_size(documents)}
    else:
        vocabulary = text.build_wordpiece_vocabulary(
            documents, vocabulary_size, reserved_tokens=(*text.RESERVED_TOKENS, MASK_TOKEN), max_texts=20000,
        )
        text.save_vocabulary(vocabulary, vocabulary_path)
        settings = {"kind": "wordpiece", "vocabulary_size": len(vocabulary)}
    write_text_atomically(settings_path, json.dumps(settings) + "\n")
    return corpus_tokenizer(kind, settings["vocabulary_size"], vocabulary_path)


def corpus_tokenizer(kind, vocabulary_size, vocabulary_path=None):
    """A `CorpusTokenizer` from saved settings (see `build_tokenizer`)."""
    from tfllm import text
    from tfllm.text.characters import make_char_tokenizer

    if kind == "char":
        tokenizer = make_char_tokenizer(vocabulary_size)
        return CorpusTokenizer("char", tokenizer, vocabulary_size + 1, ord("\n"), vocabulary_size)
    tokenizer = text.make_wordpiece_tokenizer(vocabulary_path)
    return CorpusTokenizer(
        "wordpiece", tokenizer, tokenizer.vocabulary_size(),
        tokenizer.token_to_id("[SEP]"), tokenizer.token_to_id(MASK_TOKEN),
    )


def from_keras_hub(tokenizer):
    """The `CorpusTokenizer` of a tokenizer `load_backbone` returned."""
    import keras_hub

    if isinstance(tokenizer, keras_hub.tokenizers.UnicodeCodepointTokenizer):
        size = tokenizer.vocabulary_size()
        return CorpusTokenizer("char", tokenizer, size + 1, ord("\n"), size)
    return CorpusTokenizer(
        "wordpiece", tokenizer, tokenizer.vocabulary_size(),
        tokenizer.token_to_id("[SEP]"), tokenizer.token_to_id(MASK_TOKEN),
    )

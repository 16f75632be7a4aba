"""tfllm.text: vocabularies, in-graph tokenizers, packers, NLTK-style cleaning and word vectors."""

from tfllm.text.cleaning import clean_text, english_stopwords, sent_tokenize, word_tokenize
from tfllm.text.packers import ClassifierPacker, Seq2SeqPacker
from tfllm.text.vocabulary import (
    RESERVED_TOKENS,
    build_word_vectorizer,
    build_wordpiece_vocabulary,
    load_vocabulary,
    load_word_vectorizer,
    make_wordpiece_tokenizer,
    save_vocabulary,
    save_word_vectorizer,
)

__all__ = [
    "RESERVED_TOKENS",
    "ClassifierPacker",
    "Seq2SeqPacker",
    "build_word_vectorizer",
    "build_wordpiece_vocabulary",
    "clean_text",
    "english_stopwords",
    "load_vocabulary",
    "load_word_vectorizer",
    "make_wordpiece_tokenizer",
    "save_vocabulary",
    "save_word_vectorizer",
    "sent_tokenize",
    "word_tokenize",
]

"""Models built from tfllm layers: classifiers, seq2seq and causal language models."""

from tfllm.models.causal_lm import CausalLM
from tfllm.models.classifier import build_classifier
from tfllm.models.lstm_classifier import LSTMClassifier
from tfllm.models.lstm_seq2seq import LSTMSeq2Seq
from tfllm.models.ngram_classifier import NGramClassifier
from tfllm.models.transformer_classifier import TransformerClassifier
from tfllm.models.transformer_seq2seq import TransformerSeq2Seq

__all__ = [
    "CausalLM",
    "LSTMClassifier",
    "LSTMSeq2Seq",
    "NGramClassifier",
    "TransformerClassifier",
    "TransformerSeq2Seq",
    "build_classifier",
]

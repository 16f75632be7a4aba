"""Models built from tfllm layers: classifiers, seq2seq, causal language models and backbones."""

from tfllm.models.backbone_heads import BackboneClassifier, BackboneTagger, MaskedLanguageModel
from tfllm.models.causal_language_model import CausalLanguageModel
from tfllm.models.causal_lm import CausalLM
from tfllm.models.checkpoints import BackboneError, decoder_from_gpt2, encoder_from_bert, load_backbone
from tfllm.models.classifier import build_classifier
from tfllm.models.decoder_backbone import DecoderBackbone
from tfllm.models.encoder_backbone import EncoderBackbone
from tfllm.models.lstm_classifier import LSTMClassifier
from tfllm.models.lstm_seq2seq import LSTMSeq2Seq
from tfllm.models.lstm_tagger import LSTMTagger
from tfllm.models.ngram_classifier import NGramClassifier
from tfllm.models.transformer_classifier import TransformerClassifier
from tfllm.models.transformer_seq2seq import TransformerSeq2Seq

__all__ = [
    "BackboneClassifier",
    "BackboneError",
    "BackboneTagger",
    "CausalLM",
    "CausalLanguageModel",
    "DecoderBackbone",
    "EncoderBackbone",
    "MaskedLanguageModel",
    "LSTMClassifier",
    "LSTMSeq2Seq",
    "LSTMTagger",
    "NGramClassifier",
    "TransformerClassifier",
    "TransformerSeq2Seq",
    "build_classifier",
    "decoder_from_gpt2",
    "encoder_from_bert",
    "load_backbone",
]

"""Tiny random backbones and tokenizers shared by the backbone tests."""

import keras
import keras_hub
import numpy as np

from tfllm.models import DecoderBackbone, EncoderBackbone

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(27)]
VOCAB = len(WORDS)
SIZES = dict(num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32)
LENGTH = 16


def randomize(model, seed=0):
    """Non-trivial weights everywhere (biases and layer norms included)."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(rng.normal(0.0, 0.3, weight.shape).astype("float32"))
    return model


def word_piece_tokenizer():
    return keras_hub.tokenizers.WordPieceTokenizer(vocabulary=WORDS, lowercase=False)


def gpt2_tokenizer():
    vocabulary = {"<|endoftext|>": 0, "a": 1, "b": 2, "ab": 3, "Ġa": 4}
    return keras_hub.models.GPT2Tokenizer(vocabulary=vocabulary, merges=["a b"])


def encoder(seed=0, dropout=0.0):
    keras.utils.set_random_seed(seed)
    return randomize(EncoderBackbone(VOCAB, max_sequence_length=LENGTH, dropout=dropout, **SIZES), seed)


def decoder(seed=0, dropout=0.0):
    keras.utils.set_random_seed(seed)
    return randomize(DecoderBackbone(VOCAB, max_sequence_length=LENGTH, dropout=dropout, **SIZES), seed)


def encoder_batch():
    """Two right-padded rows, the second a sentence pair."""
    return {
        "token_ids": np.array([[2, 7, 9, 11, 3, 0, 0], [2, 5, 3, 8, 6, 3, 0]], "int32"),
        "segment_ids": np.array([[0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1, 0]], "int32"),
        "padding_mask": np.array([[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 0]], "int32"),
    }


def decoder_batch():
    return {
        "token_ids": np.array([[5, 7, 9, 11, 0, 0], [6, 8, 10, 12, 14, 16]], "int32"),
        "padding_mask": np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], "int32"),
    }


def with_new_padding(batch, value=13):
    """The batch with every padded token (and segment) replaced."""
    changed = dict(batch)
    padded = batch["padding_mask"] == 0
    changed["token_ids"] = np.where(padded, value, batch["token_ids"]).astype("int32")
    if "segment_ids" in batch:
        changed["segment_ids"] = np.where(padded, 1, batch["segment_ids"]).astype("int32")
    return changed


def real(array, batch):
    """The rows of `array` at real (unpadded) positions."""
    return np.asarray(array)[batch["padding_mask"].astype(bool)]


def save_bert_preset(path, vocabulary, max_sequence_length=64, seed=0):
    """A tiny random keras-hub `BertBackbone` and its lower-casing WordPiece tokenizer, saved as a preset."""
    keras.utils.set_random_seed(seed)
    bert = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary), num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
        max_sequence_length=max_sequence_length, dropout=0.0,
    )
    bert.save_to_preset(path)
    keras_hub.tokenizers.WordPieceTokenizer(vocabulary=list(vocabulary), lowercase=True).save_to_preset(path)
    return path

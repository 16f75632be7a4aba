"""A small WordPiece text classifier to try the server, test it and benchmark it.

It needs no data or training: the vocabulary comes from a handful of sentences
and the weights are seeded, so two seeds give two distinguishable versions of
the same model. Its `serving_default` signature has the exact contract of the
real classifiers (`text` in; probabilities, label and label id out) and runs
the tensorflow-text ops of a keras_hub WordPieceTokenizer, like the sentiment
export does.

Example:

    from tfllm.serving.demo import export_text_classifier
    export_text_classifier("saved_models/demo")   # saved_models/demo/1
"""

import collections
import re

import keras
import keras_hub
import tensorflow as tf

from tfllm.serving import signatures as sig
from tfllm.serving.export import export_saved_model

SENTENCES = (
    "a great film with a moving story",
    "the acting was wonderful and the music beautiful",
    "i loved every minute of it",
    "a terrible film and a boring story",
    "the plot was awful and the acting worse",
    "i hated every minute of it",
)
LABELS = ("negative", "positive")
SPECIAL_TOKENS = ("[PAD]", "[UNK]")


def build_vocabulary(sentences, max_size=None):
    """Returns a WordPiece vocabulary: specials, whole words by frequency, then characters.

    Character pieces (`x` and `##x`) keep every lowercase ASCII word
    tokenizable, so unseen words split into pieces instead of `[UNK]`.
    """
    counts = collections.Counter(
        word for s in sentences for word in re.findall(r"\w+|[^\w\s]", s.lower())
    )
    words = [w for w, _ in counts.most_common(max_size)]
    chars = "abcdefghijklmnopqrstuvwxyz0123456789"
    pieces = list(chars) + ["##" + c for c in chars]
    vocab = list(SPECIAL_TOKENS)
    for token in words + pieces:
        if token not in vocab:
            vocab.append(token)
    return vocab


class TextClassifier(tf.Module):
    """WordPiece tokenizer, embedding, optional Transformer blocks, mean pool, softmax.

    Args:
        vocabulary: WordPiece vocabulary (list of strings, `[PAD]` first).
        labels: class names, index = class id.
        sequence_length: tokens kept per text (padded/truncated).
        hidden_dim: embedding width.
        num_layers: number of `keras_hub.layers.TransformerEncoder` blocks.
        seed: weight initialisation seed.
    """

    def __init__(self, vocabulary, labels=LABELS, *, sequence_length=32, hidden_dim=16,
                 num_layers=0, seed=0):
        super().__init__()
        self.labels = list(labels)
        self.tokenizer = keras_hub.tokenizers.WordPieceTokenizer(
            vocabulary=list(vocabulary), sequence_length=sequence_length, lowercase=True
        )
        keras.utils.set_random_seed(seed)
        layers = [keras.layers.Embedding(len(vocabulary), hidden_dim, mask_zero=True)]
        for _ in range(num_layers):
            layers.append(
                keras_hub.layers.TransformerEncoder(
                    intermediate_dim=2 * hidden_dim, num_heads=max(1, hidden_dim // 32)
                )
            )
        layers += [keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(len(self.labels))]
        self.network = keras.Sequential(layers)
        self.network.build((None, sequence_length))
        self.label_table = tf.constant(self.labels)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=sig.TEXT)])
    def serve(self, text):
        token_ids = self.tokenizer(text)  # (batch, sequence_length)
        logits = self.network(token_ids, training=False)  # (batch, num_labels)
        probabilities = tf.nn.softmax(logits, axis=-1)
        label_id = tf.argmax(probabilities, axis=-1)
        return {
            sig.PROBABILITIES: probabilities,
            sig.LABEL: tf.gather(self.label_table, label_id),
            sig.LABEL_ID: label_id,
        }


def export_text_classifier(base_path, *, version=None, seed=0, sentences=SENTENCES,
                           labels=LABELS, **kwargs):
    """Builds a `TextClassifier` and exports it under `base_path`; returns the version dir.

    Extra keyword arguments go to `TextClassifier`. The export carries warmup
    requests made of the first sentences.
    """
    model = TextClassifier(build_vocabulary(sentences), labels, seed=seed, **kwargs)
    return export_saved_model(
        model,
        base_path,
        {sig.SERVING_DEFAULT: model.serve},
        version=version,
        warmup_inputs={sig.TEXT: list(sentences[:3])},
    )

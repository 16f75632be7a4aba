"""Cross-attention weights of the seq2seq models and their alignment picture."""

import matplotlib.image
import numpy as np
import pytest
import tensorflow as tf

from tfllm.tasks.cross_attention import CrossAttention, plot_cross_attention

SOURCES = tf.constant([[5, 6, 7, 0], [8, 9, 10, 11]])
DECODER = tf.constant([[2, 12, 13], [2, 14, 0]])


def models():
    from tfllm.models.lstm_seq2seq import LSTMSeq2Seq
    from tfllm.models.transformer_seq2seq import TransformerSeq2Seq

    return {
        "transformer": TransformerSeq2Seq(
            30, 8, 6, num_encoder_layers=1, num_decoder_layers=3, num_heads=2, hidden_dim=8,
            intermediate_dim=16, start_token_id=2, end_token_id=3,
        ),
        "lstm": LSTMSeq2Seq(30, 8, 6, hidden_dim=8, start_token_id=2, end_token_id=3),
    }


@pytest.mark.parametrize("kind, shape", [("transformer", (3, 2)), ("lstm", (1, 1))])
def test_scores_are_distributions_over_the_unpadded_source(kind, shape):
    model = models()[kind]
    model.build()
    scores = model.cross_attention_scores(SOURCES, DECODER)
    assert len(scores) == shape[0]
    weights = np.stack([np.asarray(layer) for layer in scores])
    assert weights.shape == (shape[0], 2, shape[1], 3, 4)  # (layers, batch, heads, target, source)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-5)
    assert np.all(weights[:, 0, ..., 3] == 0)  # the padded source position


def synthetic(layers=2, heads=3, rows=4, columns=5):
    weights = np.random.default_rng(0).random((layers, heads, rows, columns)).astype("float32")
    return CrossAttention(
        text="I like apples.", output_text="Me gustan las manzanas.",
        source_tokens=["I", "like", "apple", "##s", "."][:columns],
        output_tokens=["Me", "gustan", "las", "[END]"][:rows], weights=weights / weights.sum(-1, keepdims=True),
    )


def test_picture_has_a_panel_per_layer_or_per_layer_and_head(tmp_path):
    attention = synthetic()
    mean = matplotlib.image.imread(plot_cross_attention(attention, str(tmp_path / "mean.png")))
    heads = matplotlib.image.imread(plot_cross_attention(attention, str(tmp_path / "heads.png"), per_head=True))
    assert mean.shape[0] == heads.shape[0]  # rows: one per layer in both
    assert heads.shape[1] > 2 * mean.shape[1]  # three columns of panels instead of one
    assert mean.shape[0] > mean.shape[1]  # two layers stacked
    assert not list(tmp_path.glob(".*tmp*"))  # written through a rename

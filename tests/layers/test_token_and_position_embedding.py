import harness
import keras
import numpy as np
import pytest

from tfllm.layers import TokenAndPositionEmbedding

TOKENS = np.array([[5, 3, 9, 0, 0], [1, 2, 3, 4, 6]], "int32")
SEGMENTS = np.array([[0, 0, 1, 1, 1], [0, 1, 1, 1, 0]], "int32")


@pytest.mark.parametrize("position", ["learned", "sinusoidal"])
def test_harness(tmp_path, position):
    harness.check_layer(
        lambda: TokenAndPositionEmbedding(10, 8, 6, position=position, mask_zero=True),
        TOKENS,
        tmp_path,
        expected_shape=(2, 5, 6),
    )


def test_harness_with_segments(tmp_path):
    harness.check_layer(
        lambda: TokenAndPositionEmbedding(10, 8, 6, num_segments=2),
        (TOKENS, SEGMENTS),
        tmp_path,
        call=lambda layer, tokens, segments: layer((tokens, segments)),
        expected_shape=(2, 5, 6),
    )


def test_output_is_token_plus_position_plus_segment():
    layer = TokenAndPositionEmbedding(10, 8, 6, num_segments=2)
    out = layer((TOKENS, SEGMENTS))
    tokens = layer.token_embedding.embeddings.numpy()
    positions = layer.position_embeddings.numpy()
    segments = layer.segment_embedding.embeddings.numpy()
    expected = tokens[TOKENS] + positions[None, :5] + segments[SEGMENTS]
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_segment_ids_change_outputs_only_through_segment_embedding():
    layer = TokenAndPositionEmbedding(10, 8, 6, num_segments=3)
    base = layer((TOKENS, np.zeros_like(SEGMENTS))).numpy()
    flipped = layer((TOKENS, SEGMENTS)).numpy()
    table = layer.segment_embedding.embeddings.numpy()
    np.testing.assert_allclose(flipped - base, table[SEGMENTS] - table[0], atol=1e-6)
    assert np.abs(flipped - base).max() > 0


def test_sinusoidal_matches_the_formula():
    layer = TokenAndPositionEmbedding(10, 8, 6, position="sinusoidal")
    out = layer(TOKENS).numpy() - layer.token_embedding.embeddings.numpy()[TOKENS]
    pos = np.arange(5)[:, None]
    i = np.arange(6)[None, :]
    angle = pos / np.power(10000.0, (2 * (i // 2)) / 6)
    expected = np.where(i % 2 == 0, np.sin(angle), np.cos(angle))
    np.testing.assert_allclose(out[0], expected, atol=1e-5)
    assert layer.trainable_weights == [layer.token_embedding.embeddings]


@pytest.mark.parametrize("position", ["learned", "sinusoidal"])
def test_start_index_offsets_positions(position):
    layer = TokenAndPositionEmbedding(10, 8, 6, position=position)
    full = layer(TOKENS).numpy()
    for i in range(5):
        np.testing.assert_allclose(layer(TOKENS[:, i : i + 1], start_index=i), full[:, i : i + 1], atol=1e-6)


def test_mask_zero_sets_keras_mask():
    layer = TokenAndPositionEmbedding(10, 8, 6, mask_zero=True)
    out = layer(TOKENS)
    np.testing.assert_array_equal(out._keras_mask, TOKENS != 0)
    assert getattr(TokenAndPositionEmbedding(10, 8, 6)(TOKENS), "_keras_mask", None) is None


def test_token_embedding_can_be_tied_to_an_output_projection():
    layer = TokenAndPositionEmbedding(10, 8, 6)
    hidden = layer(TOKENS)
    logits = layer.token_embedding(hidden, reverse=True)
    assert logits.shape == (2, 5, 10)
    np.testing.assert_allclose(logits, hidden.numpy() @ layer.token_embedding.embeddings.numpy().T, atol=1e-5)


def test_too_long_sequence_is_rejected():
    layer = TokenAndPositionEmbedding(10, 4, 6)
    with pytest.raises(ValueError, match="sequence_length=4"):
        layer(TOKENS)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"vocabulary_size": 0}, "Received: vocabulary_size=0"),
        ({"sequence_length": -2}, "Received: sequence_length=-2"),
        ({"num_segments": -1}, "Received: num_segments=-1"),
        ({"position": "rotary"}, "Received: position='rotary'"),
    ],
)
def test_invalid_arguments_are_rejected(kwargs, message):
    args = {"vocabulary_size": 10, "sequence_length": 8, "embedding_dim": 6, **kwargs}
    with pytest.raises(ValueError, match=f"{message}$"):
        TokenAndPositionEmbedding(**args)


def test_segments_need_num_segments():
    with pytest.raises(ValueError, match="num_segments=0"):
        TokenAndPositionEmbedding(10, 8, 6)((TOKENS, SEGMENTS))
    with pytest.raises(ValueError, match="num_segments=2"):
        TokenAndPositionEmbedding(10, 8, 6, num_segments=2)(TOKENS)


def test_mixed_bfloat16():
    keras.config.set_dtype_policy("mixed_bfloat16")
    layer = TokenAndPositionEmbedding(10, 8, 6, position="sinusoidal", num_segments=2)
    out = layer((TOKENS, SEGMENTS))
    assert out.dtype == "bfloat16"
    assert all(w.dtype == "float32" for w in layer.weights)


@pytest.mark.parametrize("position", ["learned", "sinusoidal"])
def test_tensor_start_index_compiles_with_xla(position):
    import tensorflow as tf

    layer = TokenAndPositionEmbedding(10, 8, 6, position=position)
    full = layer(TOKENS).numpy()
    step = tf.function(lambda tokens, index: layer(tokens, start_index=index), jit_compile=True)
    for i in (1, 4):
        np.testing.assert_allclose(step(TOKENS[:, i : i + 1], tf.constant(i)), full[:, i : i + 1], atol=1e-6)

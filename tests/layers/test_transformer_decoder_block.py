import harness
import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from tfllm.layers import TransformerDecoderBlock

RNG = np.random.default_rng(2)
X = RNG.normal(size=(2, 6, 8)).astype("float32")
ENCODED = RNG.normal(size=(2, 5, 8)).astype("float32")
WIDE_ENCODED = RNG.normal(size=(2, 5, 12)).astype("float32")
DECODER_PADDING = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], bool)
ENCODER_PADDING = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)


def copied_pair(encoder_sequence=None, normalize_first=False):
    reference = keras_hub.layers.TransformerDecoder(16, 2, normalize_first=normalize_first)
    reference(X, encoder_sequence)
    block = TransformerDecoderBlock(16, 2, normalize_first=normalize_first)
    block(X, encoder_sequence)
    block.load_keras_hub_weights(reference)
    return reference, block


def test_harness_decoder_only(tmp_path):
    harness.check_layer(lambda: TransformerDecoderBlock(16, 2, dropout=0.1), X, tmp_path, expected_shape=X.shape)


def test_harness_with_cross_attention(tmp_path):
    model = harness.check_layer(
        lambda: TransformerDecoderBlock(16, 2, normalize_first=True),
        (X, WIDE_ENCODED),
        tmp_path,
        call=lambda layer, x, e: layer(x, e),
        expected_shape=X.shape,
    )
    assert model.layers[-1].cross_attention is not None


@pytest.mark.parametrize("normalize_first", [False, True])
def test_decoder_only_equals_keras_hub(normalize_first):
    reference, block = copied_pair(normalize_first=normalize_first)
    np.testing.assert_allclose(block(X), reference(X), atol=1e-5)
    np.testing.assert_allclose(
        block(X, decoder_padding_mask=DECODER_PADDING),
        reference(X, decoder_padding_mask=DECODER_PADDING),
        atol=1e-5,
    )
    np.testing.assert_allclose(
        block(X, use_causal_mask=False), reference(X, use_causal_mask=False), atol=1e-5
    )


@pytest.mark.parametrize("normalize_first", [False, True])
def test_cross_attention_equals_keras_hub(normalize_first):
    reference, block = copied_pair(WIDE_ENCODED, normalize_first)
    kwargs = dict(decoder_padding_mask=DECODER_PADDING, encoder_padding_mask=ENCODER_PADDING)
    np.testing.assert_allclose(block(X, WIDE_ENCODED, **kwargs), reference(X, WIDE_ENCODED, **kwargs), atol=1e-5)
    attention = RNG.random((2, 6, 5)) > 0.3
    attention[:, :, 0] = True
    np.testing.assert_allclose(
        block(X, WIDE_ENCODED, encoder_attention_mask=attention),
        reference(X, WIDE_ENCODED, encoder_attention_mask=attention),
        atol=1e-5,
    )


def test_self_cache_decoding_equals_full_pass_and_keras_hub():
    reference, block = copied_pair()
    full = block(X, decoder_padding_mask=DECODER_PADDING)
    cache = tf.zeros((2, 2, 6, 2, 4))
    ref_cache = cache
    steps = []
    for i in range(6):
        token = X[:, i : i + 1]
        out, cache = block(token, self_attention_cache=cache, self_attention_cache_update_index=i)
        ref_out, ref_cache = reference(
            token, self_attention_cache=ref_cache, self_attention_cache_update_index=i
        )
        np.testing.assert_allclose(out, ref_out, atol=1e-5)
        steps.append(out)
    np.testing.assert_allclose(cache, ref_cache, atol=1e-5)
    # Right padding: real tokens never look at the padded tail, so they match.
    valid = DECODER_PADDING
    np.testing.assert_allclose(np.asarray(tf.concat(steps, 1))[valid], np.asarray(full)[valid], atol=1e-5)


@pytest.mark.parametrize("normalize_first", [False, True])
def test_self_and_cross_cache_decoding_equals_full_pass(normalize_first):
    block = TransformerDecoderBlock(16, 2, normalize_first=normalize_first)
    full = block(X, ENCODED, encoder_padding_mask=ENCODER_PADDING)
    self_cache = tf.zeros((2, 2, 6, 2, 4))
    cross_cache = tf.zeros((2, 2, 5, 2, 4))
    # Prefill two tokens and fill the cross cache from the encoder output once.
    out, self_cache, cross_cache = block(
        X[:, :2],
        ENCODED,
        encoder_padding_mask=ENCODER_PADDING,
        self_attention_cache=self_cache,
        self_attention_cache_update_index=0,
        cross_attention_cache=cross_cache,
        cross_attention_cache_update_index=0,
    )
    steps = [out]
    for i in range(2, 6):
        out, self_cache, cross_cache = block(
            X[:, i : i + 1],
            encoder_padding_mask=ENCODER_PADDING,
            self_attention_cache=self_cache,
            self_attention_cache_update_index=i,
            cross_attention_cache=cross_cache,
        )
        steps.append(out)
    np.testing.assert_allclose(tf.concat(steps, 1), full, atol=1e-5)


def test_cached_step_compiles_with_xla():
    block = TransformerDecoderBlock(16, 2)
    full = block(X)

    @tf.function(jit_compile=True)
    def step(token, cache, index):
        return block(token, self_attention_cache=cache, self_attention_cache_update_index=index)

    cache = tf.zeros((2, 2, 6, 2, 4))
    for i in range(6):
        out, cache = step(X[:, i : i + 1], cache, tf.constant(i))
        np.testing.assert_allclose(out, full[:, i : i + 1], atol=1e-5)


def test_causal_outputs_never_depend_on_future_tokens():
    block = TransformerDecoderBlock(16, 2)
    out = block(X, ENCODED).numpy()
    for t in range(5):
        future = X.copy()
        future[:, t + 1 :] = RNG.normal(size=future[:, t + 1 :].shape)
        new = block(future, ENCODED).numpy()
        np.testing.assert_allclose(new[:, : t + 1], out[:, : t + 1], atol=1e-5)
        assert np.abs(new[:, t + 1 :] - out[:, t + 1 :]).max() > 1e-3


def test_padded_encoder_positions_never_change_outputs():
    block = TransformerDecoderBlock(16, 2)
    out = block(X, ENCODED, encoder_padding_mask=ENCODER_PADDING).numpy()
    noisy = ENCODED.copy()
    noisy[0, 3:] = RNG.normal(size=(2, 8)) * 50
    np.testing.assert_allclose(block(X, noisy, encoder_padding_mask=ENCODER_PADDING), out, atol=1e-5)


def test_call_arguments_must_match_the_build():
    decoder_only = TransformerDecoderBlock(16, 2)
    decoder_only(X)
    with pytest.raises(ValueError, match="built without cross-attention"):
        decoder_only(X, ENCODED)
    seq2seq = TransformerDecoderBlock(16, 2)
    seq2seq(X, ENCODED)
    with pytest.raises(ValueError, match="encoder_sequence=None"):
        seq2seq(X)
    with pytest.raises(ValueError, match="both set or both None"):
        seq2seq(X, ENCODED, self_attention_cache=tf.zeros((2, 2, 6, 2, 4)), self_attention_cache_update_index=0)


def test_invalid_arguments_are_rejected():
    with pytest.raises(ValueError, match="Received: num_heads=0$"):
        TransformerDecoderBlock(16, 0)


def test_mixed_bfloat16_runs_with_float32_softmax():
    keras.config.set_dtype_policy("mixed_bfloat16")
    block = TransformerDecoderBlock(16, 2)
    out = block(X, ENCODED)
    assert out.dtype == tf.bfloat16
    assert all(w.dtype == "float32" for w in block.weights)
    _, scores = block.self_attention(
        tf.cast(X, "bfloat16"), tf.cast(X, "bfloat16"), use_causal_mask=True, return_attention_scores=True
    )
    assert scores.dtype == tf.float32
    np.testing.assert_allclose(np.sum(scores, axis=-1), 1.0, atol=1e-6)


def test_cross_attention_scores_are_the_cross_attention_probabilities():
    _, block = copied_pair(WIDE_ENCODED, normalize_first=False)
    kwargs = dict(decoder_padding_mask=DECODER_PADDING, encoder_padding_mask=ENCODER_PADDING)
    outputs, scores = block(X, WIDE_ENCODED, return_cross_attention_scores=True, **kwargs)
    np.testing.assert_allclose(outputs, block(X, WIDE_ENCODED, **kwargs), atol=1e-6)
    assert tuple(scores.shape) == (2, 2, 6, 5)
    # Recomputed from the sublayers (post-norm): the self-attention sublayer's output is the query.
    causal = np.tril(np.ones((6, 6), bool))[None] & DECODER_PADDING[:, None, :]
    query = block.self_attention_layer_norm(block.self_attention(X, X, attention_mask=causal) + X)
    cross_mask = np.broadcast_to(ENCODER_PADDING[:, None, :], (2, 6, 5))
    _, expected = block.cross_attention(query, WIDE_ENCODED, attention_mask=cross_mask, return_attention_scores=True)
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    np.testing.assert_allclose(np.sum(scores, axis=-1), 1.0, atol=1e-5)
    assert np.all(np.asarray(scores)[0, :, :, 3:] == 0)  # padded source positions
    with pytest.raises(ValueError, match="without caches"):
        block(X, WIDE_ENCODED, self_attention_cache=np.zeros((2, 2, 6, 2, 4), "float32"),
              self_attention_cache_update_index=0, cross_attention_cache=np.zeros((2, 2, 5, 2, 4), "float32"),
              cross_attention_cache_update_index=0, return_cross_attention_scores=True)

import harness
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfllm.layers import MultiHeadAttention

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 5, 8)).astype("float32")
Y = RNG.normal(size=(2, 7, 6)).astype("float32")
PADDING = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)


def copied_pair(query, value, key=None, **kwargs):
    """A keras MHA and a tfllm MHA with the same weights, built on these inputs."""
    reference = keras.layers.MultiHeadAttention(**kwargs)
    reference(query, value, key)
    layer = MultiHeadAttention(**kwargs)
    layer(query, value, key)
    layer.load_keras_weights(reference)
    return reference, layer


def close(a, b, atol=1e-5):
    np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), atol=atol, rtol=0)


def test_harness_self_attention(tmp_path):
    harness.check_layer(
        lambda: MultiHeadAttention(num_heads=2, key_dim=4, dropout=0.1),
        X,
        tmp_path,
        call=lambda layer, x: layer(x, x, use_causal_mask=True),
        expected_shape=(2, 5, 8),
    )


def test_harness_cross_attention_with_key(tmp_path):
    keys = RNG.normal(size=(2, 7, 6)).astype("float32")
    harness.check_layer(
        lambda: MultiHeadAttention(num_heads=2, key_dim=4, value_dim=3, output_shape=5),
        (X, Y, keys),
        tmp_path,
        call=lambda layer, q, v, k: layer(q, v, key=k),
        expected_shape=(2, 5, 5),
    )


def test_copied_weights_differ_before_copy():
    reference = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    assert np.abs(reference(X, X) - layer(X, X)).max() > 1e-2


@pytest.mark.parametrize("use_bias", [True, False])
def test_self_attention_equals_keras(use_bias):
    x = tf.constant(X)
    reference, layer = copied_pair(x, x, num_heads=2, key_dim=4, use_bias=use_bias)
    close(layer(x, x), reference(x, x))


def test_explicit_padding_mask_equals_keras():
    x = tf.constant(X)
    mask = np.repeat(PADDING[:, None, :], 5, axis=1)  # (batch, query_len, key_len)
    reference, layer = copied_pair(x, x, num_heads=2, key_dim=4)
    close(layer(x, x, attention_mask=mask), reference(x, x, attention_mask=mask))


def test_explicit_random_mask_equals_keras():
    x = tf.constant(X)
    mask = RNG.random((2, 5, 5)) > 0.5
    mask[:, :, 0] = True  # every query sees at least one key
    reference, layer = copied_pair(x, x, num_heads=2, key_dim=4)
    close(layer(x, x, attention_mask=mask), reference(x, x, attention_mask=mask))


@pytest.mark.parametrize("with_padding", [False, True])
def test_causal_mask_equals_keras(with_padding):
    x = tf.constant(X)
    mask = np.repeat(PADDING[:, None, :], 5, axis=1) if with_padding else None
    reference, layer = copied_pair(x, x, num_heads=2, key_dim=4)
    close(
        layer(x, x, attention_mask=mask, use_causal_mask=True),
        reference(x, x, attention_mask=mask, use_causal_mask=True),
    )


def test_implicit_keras_masks_equal_keras():
    tokens = np.array([[3, 5, 2, 0, 0], [4, 4, 1, 7, 9]])
    embedding = keras.layers.Embedding(10, 8, mask_zero=True)
    inputs = keras.Input((5,), dtype="int32")
    h = embedding(inputs)
    reference = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    ref_model = keras.Model(inputs, reference(h, h))
    model = keras.Model(inputs, layer(h, h))
    layer.load_keras_weights(reference)
    valid = tokens != 0
    # Padded query rows attend to nothing; their values are irrelevant.
    close(model(tokens)[valid], ref_model(tokens)[valid])
    # The value mask is honoured: padded keys must not matter.
    changed = tokens.copy()
    changed[0, 3:] = 0
    assert np.array_equal(model(changed)[0, :3], model(tokens)[0, :3])


def test_cross_attention_with_key_and_output_shape_equals_keras():
    keys = RNG.normal(size=(2, 7, 6)).astype("float32")
    value_mask = np.ones((2, 5, 7), bool)
    value_mask[0, :, 4:] = False
    reference, layer = copied_pair(X, Y, keys, num_heads=3, key_dim=4, value_dim=2, output_shape=(5,))
    close(layer(X, Y, key=keys, attention_mask=value_mask), reference(X, Y, key=keys, attention_mask=value_mask))
    assert "query_kernel" in [w.name for w in layer.weights]


def test_same_width_cross_attention_uses_fused_kernel_and_equals_keras():
    other = RNG.normal(size=(2, 9, 8)).astype("float32")
    reference, layer = copied_pair(X, other, num_heads=2, key_dim=4)
    assert [w.name for w in layer.weights][:2] == ["qkv_kernel", "qkv_bias"]
    close(layer(X, other), reference(X, other))


def test_attention_scores_equal_keras_and_are_float32():
    x = tf.constant(X)
    reference, layer = copied_pair(x, x, num_heads=2, key_dim=4)
    output, scores = layer(x, x, use_causal_mask=True, return_attention_scores=True)
    ref_output, ref_scores = reference(x, x, use_causal_mask=True, return_attention_scores=True)
    close(output, ref_output)
    close(scores, ref_scores)
    assert scores.dtype == tf.float32


def test_dropout_is_inactive_at_inference_and_active_in_training():
    x = tf.constant(X)
    reference, layer = copied_pair(x, x, num_heads=2, key_dim=4, dropout=0.5)
    close(layer(x, x, training=False), reference(x, x, training=False))
    assert np.abs(layer(x, x, training=True) - layer(x, x, training=False)).max() > 1e-3


def test_padded_keys_never_change_unpadded_outputs():
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    mask = np.repeat(PADDING[:, None, :], 5, axis=1)
    out = layer(X, X, attention_mask=mask)
    noisy = X.copy()
    noisy[0, 3:] = RNG.normal(size=(2, 8)) * 100
    # Padded positions may also be queries; only real (unpadded) rows are checked.
    new = layer(noisy, noisy, attention_mask=mask)
    np.testing.assert_allclose(new[0, :3], out[0, :3], atol=1e-6)
    np.testing.assert_array_equal(new[1], out[1])


def test_causal_outputs_never_depend_on_future_tokens():
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    out = layer(X, X, use_causal_mask=True)
    for t in range(5):
        future = X.copy()
        future[:, t + 1 :] = RNG.normal(size=future[:, t + 1 :].shape)
        new = layer(future, future, use_causal_mask=True)
        np.testing.assert_allclose(new[:, : t + 1], out[:, : t + 1], atol=1e-6)
        if t < 4:
            assert np.abs(new[:, t + 1 :] - out[:, t + 1 :]).max() > 1e-4


def test_cached_decoding_equals_full_forward_pass():
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    full = layer(X, X, use_causal_mask=True)
    cache = np.zeros((2, 2, 5, 2, 4), "float32")
    steps = []
    for i in range(5):
        token = tf.constant(X[:, i : i + 1])
        out, cache = layer(token, token, use_causal_mask=True, cache=cache, cache_update_index=i)
        steps.append(out)
    close(tf.concat(steps, axis=1), full)
    # The cache holds the keys/values of all five tokens; a static cache reuses them.
    reused, same_cache = layer(tf.constant(X[:, 4:]), None, cache=cache)
    close(reused, full[:, 4:])
    assert np.array_equal(same_cache, cache)


def test_prefill_then_step_equals_full_pass_under_xla():
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    full = layer(X, X, use_causal_mask=True)
    cache = np.zeros((2, 2, 5, 2, 4), "float32")
    prefix = tf.constant(X[:, :3])
    out, cache = layer(prefix, prefix, use_causal_mask=True, cache=cache, cache_update_index=0)
    close(out, full[:, :3])

    @tf.function(jit_compile=True)
    def step(token, cache, index):
        return layer(token, token, use_causal_mask=True, cache=cache, cache_update_index=index)

    for i in (3, 4):
        token = tf.constant(X[:, i : i + 1])
        out, cache = step(token, cache, tf.constant(i))
        close(out, full[:, i : i + 1])


def test_cache_equals_keras_hub_cached_attention():
    import keras_hub

    reference = keras_hub.layers.CachedMultiHeadAttention(num_heads=2, key_dim=4)
    reference(X, X)
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    layer(X, X)
    layer.load_keras_weights(reference)
    cache = RNG.normal(size=(2, 2, 5, 2, 4)).astype("float32")
    token = tf.constant(X[:, 2:3])
    mask = np.zeros((2, 1, 5), bool)
    mask[:, :, :3] = True
    out, new_cache = layer(token, token, attention_mask=mask, cache=cache, cache_update_index=2)
    ref_out, ref_cache = reference(token, token, attention_mask=mask, cache=cache, cache_update_index=2)
    close(out, ref_out)
    close(new_cache, ref_cache)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_heads": 0, "key_dim": 4}, "Received: num_heads=0"),
        ({"num_heads": 2, "key_dim": -1}, "Received: key_dim=-1"),
        ({"num_heads": 2, "key_dim": 4, "value_dim": 0}, "Received: value_dim=0"),
        ({"num_heads": 2, "key_dim": 4, "dropout": 1.0}, "Received: dropout=1.0"),
        ({"num_heads": 2, "key_dim": 4, "output_shape": (0,)}, r"Received: output_shape=\(0,\)"),
    ],
)
def test_invalid_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=f"{message}$"):
        MultiHeadAttention(**kwargs)


def test_cache_index_without_cache_is_rejected():
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    with pytest.raises(ValueError, match="cache_update_index=1"):
        layer(X, X, cache_update_index=1)


def test_mixed_bfloat16_keeps_softmax_in_float32():
    keras.config.set_dtype_policy("mixed_bfloat16")
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    output, scores = layer(X, X, use_causal_mask=True, return_attention_scores=True)
    assert output.dtype == tf.bfloat16
    assert scores.dtype == tf.float32
    assert all(w.dtype == "float32" for w in layer.weights)
    # A bfloat16 softmax would only sum to 1 within ~1e-2.
    np.testing.assert_allclose(np.sum(scores, axis=-1), 1.0, atol=1e-6)


def test_symbolic_call_with_cache_and_scores():
    query = keras.Input((1, 8))
    cache = keras.Input((2, 5, 2, 4))
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    output, scores, new_cache = layer(
        query, query, cache=cache, cache_update_index=0, return_attention_scores=True
    )
    assert tuple(output.shape) == (None, 1, 8)
    assert tuple(scores.shape) == (None, 2, 1, 5) and scores.dtype == "float32"
    assert tuple(new_cache.shape) == (None, 2, 5, 2, 4)

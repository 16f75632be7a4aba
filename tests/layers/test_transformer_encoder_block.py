import harness
import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from tfllm.layers import TokenAndPositionEmbedding, TransformerEncoderBlock

RNG = np.random.default_rng(1)
X = RNG.normal(size=(2, 6, 8)).astype("float32")
PADDING = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], bool)


def copied_pair(normalize_first, **kwargs):
    reference = keras_hub.layers.TransformerEncoder(16, 2, normalize_first=normalize_first, **kwargs)
    reference(X)
    block = TransformerEncoderBlock(16, 2, normalize_first=normalize_first, **kwargs)
    block(X)
    block.load_keras_hub_weights(reference)
    return reference, block


@pytest.mark.parametrize("normalize_first", [False, True])
def test_harness(tmp_path, normalize_first):
    harness.check_layer(
        lambda: TransformerEncoderBlock(16, 2, dropout=0.1, normalize_first=normalize_first),
        X,
        tmp_path,
        expected_shape=X.shape,
    )


@pytest.mark.parametrize("normalize_first", [False, True])
def test_equals_keras_hub_with_masks(normalize_first):
    reference, block = copied_pair(normalize_first, activation="gelu")
    assert np.abs(block(X) - TransformerEncoderBlock(16, 2, normalize_first=normalize_first)(X)).max() > 1e-2
    np.testing.assert_allclose(block(X), reference(X), atol=1e-5)
    np.testing.assert_allclose(
        block(X, padding_mask=PADDING), reference(X, padding_mask=PADDING), atol=1e-5
    )
    attention = RNG.random((2, 6, 6)) > 0.3
    attention[:, :, 0] = True
    np.testing.assert_allclose(
        block(X, padding_mask=PADDING, attention_mask=attention),
        reference(X, padding_mask=PADDING, attention_mask=attention),
        atol=1e-5,
    )
    out, scores = block(X, return_attention_scores=True)
    ref_out, ref_scores = reference(X, return_attention_scores=True)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)


def test_implicit_mask_equals_keras_hub():
    tokens = np.array([[4, 2, 7, 0, 0, 0], [1, 2, 3, 4, 5, 6]])
    inputs = keras.Input((6,), dtype="int32")
    h = TokenAndPositionEmbedding(10, 6, 8, mask_zero=True)(inputs)
    reference = keras_hub.layers.TransformerEncoder(16, 2)
    block = TransformerEncoderBlock(16, 2)
    ref_model = keras.Model(inputs, reference(h))
    model = keras.Model(inputs, block(h))
    block.load_keras_hub_weights(reference)
    model.get_layer(index=1).set_weights(ref_model.get_layer(index=1).get_weights())
    valid = tokens != 0
    np.testing.assert_allclose(np.asarray(model(tokens))[valid], np.asarray(ref_model(tokens))[valid], atol=1e-5)


@pytest.mark.parametrize("normalize_first", [False, True])
def test_padded_positions_never_change_unpadded_outputs(normalize_first):
    block = TransformerEncoderBlock(16, 2, normalize_first=normalize_first)
    out = block(X, padding_mask=PADDING).numpy()
    noisy = X.copy()
    noisy[0, 4:] = RNG.normal(size=(2, 8)) * 50
    new = block(noisy, padding_mask=PADDING).numpy()
    np.testing.assert_allclose(new[0, :4], out[0, :4], atol=1e-5)
    np.testing.assert_array_equal(new[1], out[1])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"intermediate_dim": 0, "num_heads": 2}, "Received: intermediate_dim=0"),
        ({"intermediate_dim": 8, "num_heads": 0}, "Received: num_heads=0"),
        ({"intermediate_dim": 8, "num_heads": 2, "dropout": -0.1}, "Received: dropout=-0.1"),
        ({"intermediate_dim": 8, "num_heads": 2, "layer_norm_epsilon": 0}, "Received: layer_norm_epsilon=0"),
    ],
)
def test_invalid_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=f"{message}$"):
        TransformerEncoderBlock(**kwargs)


def test_too_many_heads_is_rejected():
    with pytest.raises(ValueError, match="num_heads=16$"):
        TransformerEncoderBlock(8, 16).build((None, 6, 8))


def test_mixed_bfloat16_trains_and_keeps_softmax_and_layer_norm_in_float32():
    reference, block32 = copied_pair(False)
    keras.config.set_dtype_policy("mixed_bfloat16")
    block = TransformerEncoderBlock(16, 2)
    block(X)
    block.set_weights(block32.get_weights())
    out, scores = block(X, return_attention_scores=True)
    assert out.dtype == tf.bfloat16 and scores.dtype == tf.float32
    np.testing.assert_allclose(np.sum(scores, axis=-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(tf.cast(out, "float32"), block32(X), atol=0.1)

    # A bfloat16 mean/variance over features near 100 would be off by whole
    # units; the float32 statistics keep the error at bfloat16 output rounding.
    shifted = tf.cast(100.0 + RNG.normal(size=(2, 6, 8)), "bfloat16")
    normalized = block.self_attention_layer_norm(shifted)
    values = tf.cast(shifted, "float32").numpy()
    expected = (values - values.mean(-1, keepdims=True)) / np.sqrt(values.var(-1, keepdims=True) + 1e-5)
    gamma, beta = (w.numpy() for w in block.self_attention_layer_norm.weights)
    np.testing.assert_allclose(tf.cast(normalized, "float32"), expected * gamma + beta, atol=0.05)

    inputs = keras.Input((6, 8))
    model = keras.Model(inputs, TransformerEncoderBlock(16, 2)(inputs))
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(X, np.zeros_like(X), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.slow
def test_fits_under_mirrored_strategy_like_on_one_device(mirrored_strategy):
    tokens = RNG.integers(1, 20, size=(16, 6))
    labels = (tokens[:, 0] > 10).astype("int32")

    def build():
        keras.utils.set_random_seed(3)
        inputs = keras.Input((6,), dtype="int32")
        x = TokenAndPositionEmbedding(20, 6, 8, mask_zero=True)(inputs)
        x = TransformerEncoderBlock(16, 2)(x)
        outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling1D()(x))
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
        return model

    single = build().fit(tokens, labels, batch_size=8, epochs=2, shuffle=False, verbose=0)
    with mirrored_strategy.scope():
        mirrored = build()
    history = mirrored.fit(tokens, labels, batch_size=8, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(history.history["loss"], single.history["loss"], rtol=1e-4)

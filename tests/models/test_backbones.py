"""Encoder / decoder backbones and their heads: masks, cache, tying, training, saving."""

import json

import keras
import numpy as np
import pytest
from backbones import (
    LENGTH,
    VOCAB,
    decoder,
    decoder_batch,
    encoder,
    encoder_batch,
    gpt2_tokenizer,
    real,
    with_new_padding,
    word_piece_tokenizer,
)
from harness import check_config_round_trip

from tfllm.models import (
    BackboneClassifier,
    CausalLanguageModel,
    DecoderBackbone,
    EncoderBackbone,
    MaskedLanguageModel,
    load_backbone,
)


@pytest.fixture(scope="module")
def enc():
    return encoder()


@pytest.fixture(scope="module")
def dec():
    return decoder(seed=3)


def test_configs_round_trip(enc, dec):
    for backbone in (enc, dec):
        check_config_round_trip(backbone)
        clone = backbone.__class__.from_config(json.loads(json.dumps(backbone.get_config())))
        assert len(clone.weights) == len(backbone.weights)


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match="Received: hidden_dim=15, num_heads=2"):
        EncoderBackbone(VOCAB, 1, 2, 15, 32)
    with pytest.raises(ValueError, match="Received: num_layers=0"):
        DecoderBackbone(VOCAB, 0, 2, 16, 32)
    with pytest.raises(ValueError, match="Received: backbone=DecoderBackbone"):
        MaskedLanguageModel(decoder())


def test_padding_never_changes_real_positions(enc, dec):
    batch = encoder_batch()
    out, changed = enc(batch), enc(with_new_padding(batch))
    np.testing.assert_allclose(
        real(out["sequence_output"], batch), real(changed["sequence_output"], batch), atol=1e-6
    )
    np.testing.assert_allclose(out["pooled_output"], changed["pooled_output"], atol=1e-6)
    batch = decoder_batch()
    np.testing.assert_allclose(real(dec(batch), batch), real(dec(with_new_padding(batch)), batch), atol=1e-6)


def test_decoder_is_causal(dec):
    batch = decoder_batch()
    changed = dict(batch, token_ids=batch["token_ids"].copy())
    changed["token_ids"][:, 3] = 20
    np.testing.assert_allclose(np.asarray(dec(batch))[:, :3], np.asarray(dec(changed))[:, :3], atol=1e-6)


def test_cached_decoding_equals_a_full_forward_pass(dec):
    tokens = decoder_batch()["token_ids"][1:]
    full = np.asarray(dec({"token_ids": tokens, "padding_mask": np.ones_like(tokens)}))
    cache = dec.empty_cache(1, LENGTH)
    prefix, cache = dec.call_with_cache(tokens[:, :2], cache, 0)
    steps = [np.asarray(prefix)]
    for i in range(2, tokens.shape[1]):
        hidden, cache = dec.call_with_cache(tokens[:, i : i + 1], cache, i)
        steps.append(np.asarray(hidden))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-5)


def test_masked_lm_logits_are_tied_to_the_token_embedding(enc):
    mlm = MaskedLanguageModel(enc)
    batch = dict(encoder_batch(), mask_positions=np.array([[1, 2], [4, 0]], "int32"))
    logits = np.asarray(mlm(batch))
    assert logits.shape == (2, 2, VOCAB)
    head = mlm.mlm_head
    sequence = np.asarray(enc(encoder_batch())["sequence_output"])
    gathered = np.take_along_axis(sequence, batch["mask_positions"][:, :, None], axis=1)
    transformed = np.asarray(head._intermediate_layer_norm(head._intermediate_dense(gathered)))
    embeddings = np.asarray(enc.token_embedding.embeddings)
    np.testing.assert_allclose(logits, transformed @ embeddings.T + np.asarray(head._bias), atol=1e-4)
    # One matrix, not a copy: the head adds only its transform and a bias.
    assert len(mlm.weights) == len(enc.weights) + 5


def test_masked_lm_fits_and_reloads(tmp_path):
    mlm = MaskedLanguageModel(encoder(dropout=0.1))
    batch = dict(encoder_batch(), mask_positions=np.array([[1, 2], [4, 0]], "int32"))
    labels = np.array([[7, 9], [6, 0]], "int32")
    mlm.compile(keras.optimizers.SGD(0.05))
    before = [w.copy() for w in mlm.get_weights()]
    history = mlm.fit(batch, labels, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, mlm.get_weights()))
    path = str(tmp_path / "mlm.keras")
    mlm.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded(batch), mlm(batch))


def test_causal_lm_fits_reloads_and_generates_with_the_cache(tmp_path):
    lm = CausalLanguageModel(decoder(seed=4, dropout=0.1), end_token_id=None)
    tokens = decoder_batch()["token_ids"]
    lm.compile(keras.optimizers.SGD(0.05))
    history = lm.fit(tokens[:, :-1], tokens[:, 1:], epochs=1, verbose=0)
    assert {"loss", "perplexity"} <= set(history.history)
    path = str(tmp_path / "lm.keras")
    lm.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded(tokens), lm(tokens))
    prompts = [[5, 6, 7], [8, 9]]
    greedy = lm.generate(prompts, 10, stop_token_ids=None, jit_compile=False)
    assert greedy == lm.generate(prompts, 10, stop_token_ids=None, use_cache=False, jit_compile=False)
    assert [len(row) for row in greedy] == [10, 10]
    assert loaded.generate(prompts, 10, stop_token_ids=None, jit_compile=False) == greedy
    assert lm.generate(prompts, 10, stop_token_ids=None) == greedy  # XLA-compiled loop


def test_generation_stops_at_an_end_token_that_is_also_padding():
    backbone = decoder(seed=4)
    first = CausalLanguageModel(backbone).generate([[5, 6, 7]], 10, stop_token_ids=None, jit_compile=False)[0]
    end = first[4]  # GPT-2 style: <|endoftext|> pads and ends
    lm = CausalLanguageModel(backbone, pad_token_id=end, end_token_id=end)
    assert lm.generate([[5, 6, 7]], 10, jit_compile=False) == [first[: first.index(end, 3)]]


@pytest.mark.parametrize("pooling", [None, "mean"])
def test_classifier_on_a_decoder_pools_real_tokens(dec, pooling):
    classifier = BackboneClassifier(dec, num_classes=3, dropout=0.0, pooling=pooling)
    batch = decoder_batch()
    probabilities = np.asarray(classifier(batch))
    assert probabilities.shape == (2, 3) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(classifier(with_new_padding(batch)), probabilities, atol=1e-6)
    with pytest.raises(ValueError, match="Received: pooling='pooled'"):
        BackboneClassifier(dec, 2, pooling="pooled")


def test_classifier_fine_tunes_under_mirrored_strategy(mirrored_strategy, tmp_path):
    with mirrored_strategy.scope():
        classifier = BackboneClassifier(encoder(dropout=0.1), num_classes=2)
        classifier.compile(keras.optimizers.Adam(1e-3))
    batch = {k: np.concatenate([v, v]) for k, v in encoder_batch().items()}
    history = classifier.fit(batch, np.array([0, 1, 1, 0]), batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0]) and "accuracy" in history.history
    path = str(tmp_path / "classifier.keras")
    classifier.save(path)
    np.testing.assert_array_equal(keras.models.load_model(path)(batch), classifier(batch))


@pytest.mark.parametrize("make, tokenizer, batch", [
    (encoder, word_piece_tokenizer, encoder_batch),
    (decoder, gpt2_tokenizer, decoder_batch),
])
def test_save_to_preset_then_load_backbone_gives_identical_outputs(make, tokenizer, batch, tmp_path):
    backbone, words = make(seed=5), tokenizer()
    backbone.save_to_preset(str(tmp_path))
    words.save_to_preset(str(tmp_path))
    loaded, loaded_words = load_backbone(str(tmp_path))
    assert type(loaded) is type(backbone) and type(loaded_words) is type(words)
    assert loaded_words.get_vocabulary() == words.get_vocabulary()
    keras.tree.map_structure(np.testing.assert_array_equal, loaded(batch()), backbone(batch()))
    half, _ = load_backbone(str(tmp_path), dtype="mixed_bfloat16")
    assert half.dtype_policy.name == "mixed_bfloat16"
    assert half.transformer_layers[0].compute_dtype == "bfloat16"


@pytest.mark.slow
def test_generate_step_exports_to_a_saved_model_without_xla_ops(tmp_path):
    import tensorflow as tf

    from tfllm.serving.export import saved_model_ops

    lm = CausalLanguageModel(decoder(seed=4))
    module = tf.Module()
    module.lm = lm
    module.generate = tf.function(
        lambda tokens, lengths: lm.generate_step(tokens, lengths, 10, "greedy"),
        input_signature=[tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((None,), tf.int32)],
    )
    path = str(tmp_path / "lm")
    tf.saved_model.save(module, path)
    assert not [op for op in saved_model_ops(path) if op.startswith("Xla")]
    tokens = np.zeros((2, 16), "int32")
    tokens[0, :3], tokens[1, :2] = [5, 6, 7], [8, 9]
    loaded = tf.saved_model.load(path)
    out = loaded.generate(tokens, np.array([3, 2], "int32")).numpy()
    expected = lm.generate([[5, 6, 7], [8, 9]], 10, stop_token_ids=None, jit_compile=False)
    assert [list(row[:10]) for row in out] == expected

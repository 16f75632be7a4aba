"""Pre-training pipeline: tokenizers, windows, MLM masking, training under one and two devices, saving."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tfllm.tasks import language_modeling as lm
from tfllm.tasks.corpus_tokenizer import MASK_TOKEN, build_tokenizer, corpus_tokenizer
from tfllm.text.characters import char_vocabulary_size, encode_chars, make_char_tokenizer
from tfllm.training import runs

CORPUS = ["Twinkle, twinkle, little star,\nHow I wonder what you are!\n" * 12,
          "Jack and Jill went up the hill\nTo fetch a pail of water.\n" * 12]
TINY = dict(sequence_length=16, num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32, dropout=0.0,
            epochs=2, batch_size=8, steps_per_epoch=3, learning_rate=1e-2, verbose=0)


def quiet(message):
    pass


def test_char_tokenizer_keeps_case_and_round_trips():
    size = char_vocabulary_size(["Hello", "naïve"])
    assert size == max(128, ord("ï") + 2)
    tokenizer = make_char_tokenizer(size)
    ids = tokenizer(tf.constant(["To Be", "né"]))
    assert ids == [[84, 111, 32, 66, 101], [110, 233]]  # eager keras_hub tokenizers return lists
    assert tokenizer.detokenize(ids) == ["To Be", "né"]
    np.testing.assert_array_equal(encode_chars("To Be", size), [84, 111, 32, 66, 101])
    assert encode_chars("€", size)[0] == size - 1  # beyond the corpus: the catch-all id


def test_wordpiece_tokenizer_is_learned_once_and_reused(tmp_path):
    run_dir = runs.prepare_run_dir(str(tmp_path / "run"))
    tokenizer = build_tokenizer("wordpiece", CORPUS, 120, run_dir, quiet)
    vocabulary = tokenizer.tokenizer.get_vocabulary()
    assert vocabulary[0] == "[PAD]" and vocabulary[tokenizer.mask_id] == MASK_TOKEN
    assert vocabulary[tokenizer.separator_id] == "[SEP]"
    assert tokenizer.tokenizer.detokenize([tokenizer.encode("little star").tolist()]) == ["little star"]
    os.makedirs(run_dir.backup)
    open(os.path.join(run_dir.backup, "epoch"), "w").close()  # An interrupted run resumes.
    again = build_tokenizer("wordpiece", ["other text entirely"], 120, run_dir, quiet)
    assert again.tokenizer.get_vocabulary() == vocabulary
    with pytest.raises(ValueError, match="wordpiece"):
        build_tokenizer("char", CORPUS, 120, run_dir, quiet)


def test_a_finished_run_learns_a_new_tokenizer_when_trained_again(tmp_path):
    run_dir = runs.prepare_run_dir(str(tmp_path / "run"))
    first = build_tokenizer("wordpiece", CORPUS, 120, run_dir, quiet).tokenizer.get_vocabulary()
    again = build_tokenizer("wordpiece", ["other text entirely"], 120, run_dir, quiet).tokenizer.get_vocabulary()
    assert again != first
    assert build_tokenizer("char", CORPUS, 120, run_dir, quiet).kind == "char"


def test_causal_targets_are_the_inputs_shifted_and_padding_is_ignored():
    tokenizer = corpus_tokenizer("char", 128)
    train, val = lm.corpus_windows(CORPUS, tokenizer, 16, "causal", 0.1)
    assert train.shape[1] == 17 and not (train[:-1] == 0).any()
    inputs, targets = next(iter(lm.make_lm_dataset(train, tokenizer, "causal", 4)))
    np.testing.assert_array_equal(inputs["token_ids"][:, 1:], targets[:, :-1])
    last_inputs, last_targets = list(lm.make_lm_dataset(val, tokenizer, "causal", 64))[-1]
    assert (last_targets.numpy()[-1] == -1).any()  # the last window is padded; its targets are ignored
    assert (last_inputs["padding_mask"].numpy()[-1] == (last_inputs["token_ids"].numpy()[-1] != 0)).all()


def test_mlm_masks_15_percent_80_10_10_per_batch():
    tokenizer = corpus_tokenizer("char", 128)
    windows = np.random.default_rng(0).integers(32, 127, size=(4096, 64)).astype(np.int32)
    data = lm.make_lm_dataset(windows, tokenizer, "mlm", 4096)
    (inputs, targets), (second, _) = list(data.repeat(2).take(2))
    targets, positions = targets.numpy(), inputs["mask_positions"].numpy()
    chosen = targets >= 0
    assert chosen.sum() / windows.size == pytest.approx(0.15, abs=0.01)
    rows = np.repeat(np.arange(len(windows))[:, None], positions.shape[1], axis=1)
    np.testing.assert_array_equal(windows[rows[chosen], positions[chosen]], targets[chosen])
    shown = inputs["token_ids"].numpy()[rows[chosen], positions[chosen]]
    masked, kept = np.mean(shown == tokenizer.mask_id), np.mean(shown == targets[chosen])
    assert masked == pytest.approx(0.8, abs=0.02)
    assert kept == pytest.approx(0.1 + 0.1 / 95, abs=0.02)  # kept, or replaced by chance with itself
    assert 1 - masked - kept == pytest.approx(0.1, abs=0.02)
    # Fresh masks each batch, not one fixed mask per window.
    assert not np.array_equal(positions, second["mask_positions"].numpy())
    assert set(inputs) == {"token_ids", "segment_ids", "padding_mask", "mask_positions"}


def _train(tmp_path, name, strategy=None, **overrides):
    config = lm.LanguageModelConfig(**{**TINY, "objective": "causal", "tokenizer": "char", **overrides})
    run_dir = runs.prepare_run_dir(str(tmp_path / name))
    return lm.pretrain(config, CORPUS, run_dir=run_dir, strategy=strategy, log=quiet)


def test_causal_pretraining_saves_a_backbone_load_backbone_reads(tmp_path):
    from tfllm.models import DecoderBackbone, load_backbone

    result = _train(tmp_path, "causal")
    model, tokenizer = result.pop("trained")
    assert result["backbone_dir"] == str(tmp_path / "causal" / "backbone")
    assert result["epochs_run"] == 2 and np.isfinite(result["val_loss"]) and result["tokens_per_second"] > 0
    assert result["val_perplexity"] == pytest.approx(np.exp(result["val_loss"]), rel=1e-5)
    backbone, loaded_tokenizer = load_backbone(result["backbone_dir"])
    assert isinstance(backbone, DecoderBackbone)
    assert loaded_tokenizer("Jack").tolist() == [74, 97, 99, 107]
    loaded, _ = lm.load_pretrained(result["backbone_dir"])
    ids = np.array([[74, 97, 99, 107, 32, 97]], np.int32)
    x = {"token_ids": ids, "padding_mask": ids != 0}
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-5)


def test_mlm_pretraining_with_wordpiece_saves_an_encoder(tmp_path):
    from tfllm.models import EncoderBackbone, load_backbone

    result = _train(tmp_path, "mlm", objective="mlm", tokenizer="wordpiece", vocabulary_size=120, epochs=1)
    assert np.isfinite(result["val_loss"])
    backbone, tokenizer = load_backbone(result["backbone_dir"])
    assert isinstance(backbone, EncoderBackbone)
    assert MASK_TOKEN in tokenizer.get_vocabulary()


def test_two_device_mirrored_losses_match_one_device(tmp_path, mirrored_strategy):
    # 8 validation windows: both replicas get every batch's half (an odd one loses a row).
    _, val = lm.corpus_windows(CORPUS, corpus_tokenizer("char", 128), 16, "causal", 0.09)
    assert len(val) % 8 == 0
    one = _train(tmp_path, "one", batch_size=8, val_fraction=0.09)
    two = _train(tmp_path, "two", strategy=mirrored_strategy, batch_size=4, val_fraction=0.09)
    one.pop("trained"), two.pop("trained")
    assert two["val_loss"] == pytest.approx(one["val_loss"], rel=1e-4)
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-4)


@pytest.mark.parametrize("mode", ["float16"])  # loss scaling; bfloat16 takes the same path without it
def test_mixed_precision_pretraining_keeps_float32_logits_and_saves(tmp_path, mode):
    from tfllm.training import set_mixed_precision

    set_mixed_precision(mode)  # the conftest fixture restores float32 afterwards
    result = _train(tmp_path, mode, epochs=1, steps_per_epoch=2)
    model, _ = result.pop("trained")
    assert np.isfinite(result["val_loss"]) and os.path.isdir(result["backbone_dir"])
    ids = np.array([[74, 97, 99, 107]], np.int32)
    assert model({"token_ids": ids, "padding_mask": ids != 0}).dtype == "float32"


@pytest.mark.slow
def test_a_causal_wordpiece_model_continues_prompts_in_graph(tmp_path):
    from tfllm.tasks.causal_generator import CausalGenerator

    tokenizer = build_tokenizer("wordpiece", CORPUS, 120, runs.prepare_run_dir(str(tmp_path / "run")), quiet)
    _, model = lm.build_model(lm.LanguageModelConfig(**{**TINY, "objective": "causal"}), tokenizer.vocabulary_size)
    generator = CausalGenerator(model, tokenizer, max_length=12, strategy="top_k", k=3, seed=0)
    outputs = generator(["twinkle, twinkle", "", "how i wonder " * 10])
    assert len(outputs) == 3 and all(isinstance(text, str) for text in outputs)
    assert all(len(text.split()) <= 11 for text in outputs)

"""Fine-tuning a saved backbone through the sentiment app: train, export, predict, export again."""

import contextlib
import io
import json
import os

import harness
import numpy as np
import pandas as pd
import pytest

app = harness.load_app("sentiment")
POSITIVE = ["a wonderful film", "great acting", "i loved it", "truly wonderful fun", "brilliant and moving"]
NEGATIVE = ["a terrible film", "awful acting", "i hated it", "truly awful mess", "dull and boring"]


def run_main(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = app.main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def backbone_dir(tmp_path_factory):
    """A tiny random encoder backbone and its WordPiece tokenizer, saved as a preset directory."""
    import keras_hub
    from tfllm import text
    from tfllm.models import EncoderBackbone

    vocabulary = text.build_wordpiece_vocabulary(POSITIVE + NEGATIVE, vocabulary_size=120)
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [t for t in vocabulary if t not in
                                                                     ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")]
    path = str(tmp_path_factory.mktemp("backbone") / "preset")
    backbone = EncoderBackbone(vocabulary_size=len(vocabulary), num_layers=1, num_heads=2, hidden_dim=16,
                               intermediate_dim=32, max_sequence_length=32)
    backbone.save_to_preset(path)
    keras_hub.tokenizers.WordPieceTokenizer(vocabulary=vocabulary, lowercase=True).save_to_preset(path)
    return path


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "reviews.csv"
    rows = [(t, "pos") for t in POSITIVE] * 4 + [(t, "neg") for t in NEGATIVE] * 4
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    return str(path)


@pytest.mark.slow
def test_train_with_a_backbone_exports_a_string_in_model(backbone_dir, table, tmp_path):
    code, out, err = run_main(["train", "--data", table, "--backbone", backbone_dir, "--epochs", "2",
                               "--batch-size", "8", "--learning-rate", "1e-3", "--max-length", "16",
                               "--run-dir", str(tmp_path / "run"), "--export-dir", str(tmp_path / "export")])
    assert code == 0, err
    result = harness.last_json(out)
    assert result["model"] == "backbone" and result["backbone"] == backbone_dir
    assert result["export_path"] == str(tmp_path / "export" / "1")
    code, out, err = run_main(["predict", "--model-dir", result["export_path"], "great acting", "awful acting"])
    assert code == 0, err
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert all(set(line["probabilities"]) == {"neg", "pos"} for line in lines)
    code, out, err = run_main(["export", "--run-dir", str(tmp_path / "run"), "--export-dir", str(tmp_path / "export")])
    assert code == 0, err
    assert harness.last_json(out)["export_path"] == str(tmp_path / "export" / "2")
    # A fine-tuned backbone is a teacher like any other run.
    code, out, err = run_main(["distill", "--teacher", str(tmp_path / "run"), "--data", table, "--epochs", "1",
                               "--export-dir", str(tmp_path / "student")])
    assert code == 0, err
    assert harness.last_json(out)["export_path"] == str(tmp_path / "student" / "1")


@pytest.mark.slow
def test_a_frozen_backbone_keeps_its_weights_while_the_head_trains(backbone_dir, table, tmp_path):
    from tfllm.models import load_backbone

    config = app.TASK.config(data=table, backbone=backbone_dir, epochs=1, freeze_epochs=1, batch_size=8,
                             max_length=16, learning_rate=1e-2, run_dir=str(tmp_path / "run"), export=False,
                             verbose=0)
    result = app.TASK.train(config, log=lambda message: None)
    model = result["export"].model
    before, _ = load_backbone(backbone_dir)
    for trained, saved in zip(model.backbone.weights, before.weights):
        np.testing.assert_array_equal(np.asarray(trained), np.asarray(saved))
    assert result["epochs_run"] == 1


def test_a_missing_backbone_is_one_line(table, tmp_path):
    code, out, err = run_main(["train", "--data", table, "--backbone", str(tmp_path / "nowhere"),
                               "--run-dir", str(tmp_path / "run")])
    assert code == 2 and out == "" and "Traceback" not in err
    assert "nowhere" in err.strip().splitlines()[-1]


def test_backbone_and_word_vector_pretraining_exclude_each_other(table, tmp_path):
    code, _, err = run_main(["train", "--data", table, "--backbone", "x", "--pretrain-data", table])
    assert code == 2 and "either --backbone or --pretrain-data" in err


def test_the_schedule_warms_up_then_decays_linearly_to_zero():
    from tfllm.training.optimizers import WarmupLinearDecay

    schedule = WarmupLinearDecay(1.0, total_steps=10, warmup_steps=2)
    values = [float(schedule(step)) for step in (0, 1, 2, 6, 10, 12)]
    np.testing.assert_allclose(values, [0.0, 0.5, 1.0, 0.5, 0.0, 0.0], atol=1e-6)
    with pytest.raises(ValueError, match="warmup_steps"):
        WarmupLinearDecay(1.0, total_steps=2, warmup_steps=3)


def test_the_model_dir_of_a_pretraining_run_means_its_backbone(tmp_path):
    from tfllm.tasks.backbone_finetuning import resolve_backbone

    (tmp_path / "backbone").mkdir()
    assert resolve_backbone(str(tmp_path)) == os.path.join(str(tmp_path), "backbone")
    assert resolve_backbone("bert_tiny_en_uncased") == "bert_tiny_en_uncased"


@pytest.mark.slow
@pytest.mark.parametrize("objective, tokenizer", [("mlm", "wordpiece"), ("causal", "char")])
def test_a_pretraining_run_directory_fine_tunes_into_a_served_classifier(objective, tokenizer, table, tmp_path):
    """Pre-train with apps/language_model.py, then `sentiment.py train --backbone <its run directory>`."""
    language_model = harness.load_app("language_model")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(POSITIVE + NEGATIVE) * 6)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = language_model.main([
            "pretrain", "--objective", objective, "--tokenizer", tokenizer, "--data", str(corpus),
            "--vocabulary-size", "120", "--sequence-length", "16", "--num-layers", "1", "--num-heads", "2",
            "--hidden-dim", "16", "--intermediate-dim", "32", "--batch-size", "8", "--epochs", "1",
            "--steps-per-epoch", "2", "--run-dir", str(tmp_path / "lm"),
        ])
    assert code == 0
    code, out, err = run_main(["train", "--data", table, "--backbone", str(tmp_path / "lm"), "--epochs", "1",
                               "--batch-size", "8", "--max-length", "16", "--run-dir", str(tmp_path / "run"),
                               "--export-dir", str(tmp_path / "export")])
    assert code == 0, err
    code, out, err = run_main(["predict", "--model-dir", harness.last_json(out)["export_path"], "great acting"])
    assert code == 0, err
    assert json.loads(out)["label"] in ("neg", "pos")

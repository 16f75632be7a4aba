"""End to end: train -> export -> evaluate -> predict through `main(argv)`, and every bad input."""

import contextlib
import io
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import harness
import pytest
from tfllm.tasks import classification_recipe as recipe

REPO_ROOT = harness.REPO_ROOT

POSITIVE = ["a wonderful film", "great acting and a great story", "i loved it", "truly wonderful fun",
            "brilliant and moving", "the best film this year", "great fun for everyone", "loved every minute"]
NEGATIVE = ["a terrible film", "awful acting and a boring story", "i hated it", "truly awful mess",
            "dull and boring", "the worst film this year", "boring waste of time", "hated every minute"]
TEXTS = ["great fun, i loved it", "an awful, boring mess", ""]


app = harness.load_app("sentiment")


def run_main(argv):
    """Runs main(argv); returns (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = app.main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def binary_csv(tmp_path_factory):
    rows = [(text, 1) for text in POSITIVE] * 3 + [(text, 0) for text in NEGATIVE] * 3
    path = tmp_path_factory.mktemp("data") / "reviews.csv"
    pd.DataFrame(rows, columns=["review", "sentiment"]).to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="module")
def trained(binary_csv, tmp_path_factory):
    """One tiny model trained in-process with the app's pipeline (binary int labels)."""
    base = tmp_path_factory.mktemp("trained")
    config = app.TASK.config(
        data=binary_csv, text_column="review", label_column="sentiment", model="fasttext",
        epochs=3, batch_size=8, vocabulary_size=200, learning_rate=0.05, patience=5,
        export_dir=str(base / "export"), run_dir=str(base / "run"), verbose=0,
    )
    result = app.TASK.train(config, log=lambda message: None)
    return result


@pytest.mark.slow
def test_train_exports_a_versioned_model_with_run_artifacts(trained):
    assert trained["export_path"].endswith(os.path.join("export", "1"))
    assert os.path.exists(os.path.join(trained["export_path"], "saved_model.pb"))
    assert os.path.exists(os.path.join(trained["export_path"], "assets.extra", "tf_serving_warmup_requests"))
    run_dir = trained["run_dir"]
    for name in ("curves.png", "history.json", "labels.txt", "vocabulary.txt"):
        assert os.path.getsize(os.path.join(run_dir, name)) > 0, name
    assert os.path.exists(os.path.join(run_dir, "checkpoints", "best.weights.h5"))
    assert not os.path.exists(os.path.join(run_dir, "backup"))  # deleted once training completed
    logs = [f for _, _, files in os.walk(os.path.join(run_dir, "logs")) for f in files]
    assert any(f.startswith("events.out.tfevents") for f in logs)
    assert trained["labels"] == ["0", "1"]
    assert trained["train_examples"] + trained["val_examples"] == 48
    assert 0.0 <= trained["val_accuracy"] <= 1.0 and trained["epochs_run"] >= 1


@pytest.mark.slow
def test_saved_model_in_a_fresh_process_matches_the_in_memory_model(trained, tmp_path):
    from tfllm.serving import signatures

    expected = {key: value.numpy() for key, value in trained["export"](TEXTS).items()}
    script = (
        "import json, sys, tensorflow as tf, tensorflow_text\n"
        "m = tf.saved_model.load(sys.argv[1])\n"
        f"out = m.signatures['serving_default'](text=tf.constant({TEXTS!r}))\n"
        "print(json.dumps({k: v.numpy().tolist() if v.dtype != tf.string else "
        "[s.decode() for s in v.numpy()] for k, v in out.items()}))\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, "-c", script, trained["export_path"]],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    served = json.loads(done.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(served[signatures.PROBABILITIES], expected[signatures.PROBABILITIES], rtol=1e-6, atol=1e-7)
    assert served[signatures.LABEL_ID] == expected[signatures.LABEL_ID].tolist()
    assert served[signatures.LABEL] == [s.decode() for s in expected[signatures.LABEL]]


@pytest.mark.slow
def test_evaluate_prints_metrics_for_the_latest_version(trained, binary_csv):
    base = os.path.dirname(trained["export_path"])
    code, out, err = run_main(["evaluate", "--model-dir", base, "--data", binary_csv,
                               "--text-column", "review", "--label-column", "sentiment"])
    assert code == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["model_dir"] == trained["export_path"]
    assert report["examples"] == 48
    assert report["labels"] == ["0", "1"]
    assert np.array(report["confusion_matrix"]).sum() == 48
    assert set(report["per_class"]) == {"0", "1"}
    for key in ("accuracy", "macro_precision", "macro_recall", "macro_f1"):
        assert 0.0 <= report[key] <= 1.0


def test_predict_reads_other_encodings_with_encoding_flag(trained, tmp_path):
    table = tmp_path / "latin1.csv"
    table.write_bytes("text\nun film très réussi\n".encode("cp1252"))
    code, out, err = run_main(["predict", "--model-dir", trained["export_path"], "--data", str(table)])
    assert code == 2 and "--encoding" in err and len(err.strip().splitlines()) == 1
    code, out, err = run_main(["predict", "--model-dir", trained["export_path"], "--data", str(table),
                               "--encoding", "cp1252"])
    assert code == 0, err
    assert json.loads(out.strip())["text"] == "un film très réussi"


@pytest.mark.slow
def test_predict_texts_and_file(trained, tmp_path):
    code, out, err = run_main(["predict", "--model-dir", trained["export_path"], *TEXTS[:2]])
    assert code == 0, err
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert [line["text"] for line in lines] == TEXTS[:2]
    expected = trained["export"](TEXTS[:2])["label"].numpy()
    assert [line["label"] for line in lines] == [s.decode() for s in expected]
    for line in lines:
        assert sum(line["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert line["probability"] == max(line["probabilities"].values())

    table = tmp_path / "texts.csv"
    pd.DataFrame({"text": TEXTS[:2]}).to_csv(table, index=False)
    code, out, err = run_main(["predict", "--model-dir", trained["export_path"], "--data", str(table)])
    assert code == 0, err
    assert [json.loads(line)["label"] for line in out.strip().splitlines()] == [s.decode() for s in expected]


@pytest.mark.slow
def test_demo_trains_multiclass_sample_and_exports(tmp_path):
    export_dir = tmp_path / "models"
    (export_dir / "1").mkdir(parents=True)  # an existing version is never overwritten
    (export_dir / "1" / "saved_model.pb").write_bytes(b"")
    code, out, err = run_main(["--epochs", "1", "--run-dir", str(tmp_path / "run"), "--export-dir", str(export_dir)])
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["command"] == "demo"
    assert result["labels"] == ["negative", "neutral", "positive"]
    assert result["export_path"] == str(export_dir / "2")
    assert len(result["val_per_class"]) == 3
    # A few predictions on the demo texts, one line each.
    for text in app.DEMO_TEXTS:
        assert text in err


def test_class_weights_balance_imbalanced_labels():
    weights = recipe.class_weight_table(np.array([0, 0, 0, 0, 0, 0, 1, 1, 2]), 4)
    # n / (classes * count): 9 / (4 * 6), 9 / (4 * 2), 9 / (4 * 1); absent class 1.0.
    np.testing.assert_allclose(weights, [9 / 24, 9 / 8, 9 / 4, 1.0], rtol=1e-6)


def _error_line(code, out, err):
    assert code == 2
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line.startswith("sentiment: error:")]
    assert len(lines) == 1, err
    assert out == ""
    return lines[0]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    base = tmp_path_factory.mktemp("bad")
    no_label = base / "no_label.csv"
    no_label.write_text("text,stars\ngood,5\n")
    empty_text = base / "empty_text.csv"
    empty_text.write_text('text,label\ngood,1\n"",0\n')
    one_class = base / "one_class.csv"
    one_class.write_text("text,label\ngood,1\nfine,1\nnice,1\n")
    not_a_model = base / "not_a_model"
    not_a_model.mkdir()
    return {"base": base, "no_label": no_label, "empty_text": empty_text, "one_class": one_class,
            "not_a_model": not_a_model}


@pytest.mark.parametrize("argv, needle", [
    (["train", "--data", "{base}/missing.csv"], "missing.csv"),
    (["train", "--data", "{no_label}"], "label"),
    (["train", "--data", "{empty_text}"], "row 2"),
    (["train", "--data", "{one_class}", "--run-dir", "{base}/run"], "at least 2 distinct labels"),
    (["train", "--data", "{no_label}", "--model", "gpt"], "unknown model 'gpt'"),
    (["train"], "needs --data"),
    (["train", "--epochs", "0", "--data", "x.csv"], "--epochs"),
    (["fly"], "invalid choice"),
    (["train", "--data", "{no_label}", "--pretrain-data", "{base}/unlabeled.csv", "--pretrain-dataset", "imdb"],
     "either --pretrain-data or --pretrain-dataset"),
    (["train", "--data", "{one_class}", "--pretrain-data", "{base}/missing_texts.csv", "--run-dir", "{base}/run2"],
     "missing_texts.csv"),
    (["evaluate", "--model-dir", "{not_a_model}", "--data", "{no_label}"], "no SavedModel"),
    (["evaluate", "--model-dir", "{base}/nowhere", "--data", "{no_label}"], "nowhere"),
    (["evaluate", "--data", "{no_label}"], "--model-dir"),
    (["predict", "--model-dir", "{not_a_model}", "good", "  "], "text 2 is empty"),
    (["predict", "--model-dir", "{not_a_model}"], "TEXT arguments or --data"),
    (["predict", "--model-dir", "{not_a_model}", "good"], "no SavedModel"),
])
def test_bad_input_is_one_line_and_exit_2(bad_files, argv, needle):
    argv = [arg.format(**bad_files) for arg in argv]
    line = _error_line(*run_main(argv))
    assert needle in line


@pytest.mark.slow
def test_evaluate_with_labels_the_model_never_saw(trained, bad_files):
    path = bad_files["base"] / "other_labels.csv"
    path.write_text("text,label\ngood,1\nmeh,neutral\n")
    line = _error_line(*run_main(["evaluate", "--model-dir", trained["export_path"], "--data", str(path)]))
    assert "row 2" in line and "neutral" in line


def test_help_exits_zero(capsys):
    assert app.main(["--help"]) == 0
    assert "evaluate" in capsys.readouterr().out


@pytest.mark.slow
def test_train_under_mirrored_strategy(binary_csv, tmp_path):
    import tensorflow as tf

    if len(tf.config.list_logical_devices("CPU")) < 2:
        pytest.skip("needs the 2 logical CPU devices tests/conftest.py sets up")
    code, out, err = run_main(["train", "--data", binary_csv, "--text-column", "review", "--label-column", "sentiment",
                               "--strategy", "mirrored", "--epochs", "1", "--vocabulary-size", "200",
                               "--run-dir", str(tmp_path / "run"), "--export-dir", str(tmp_path / "export")])
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["epochs_run"] == 1 and result["export_path"].endswith("1")


@pytest.mark.slow
def test_train_pretrains_word_vectors_on_unlabeled_text(binary_csv, tmp_path):
    unlabeled = tmp_path / "unlabeled.csv"
    pd.DataFrame({"review": [f"{a} and {b}" for a in POSITIVE for b in POSITIVE]
                  + [f"{a} and {b}" for a in NEGATIVE for b in NEGATIVE]}).to_csv(unlabeled, index=False)
    code, out, err = run_main(["train", "--data", binary_csv, "--text-column", "review", "--label-column", "sentiment",
                               "--pretrain-data", str(unlabeled), "--pretrain-epochs", "1", "--epochs", "1",
                               "--vocabulary-size", "200", "--run-dir", str(tmp_path / "run"),
                               "--export-dir", str(tmp_path / "export")])
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["pretrain_seconds"] > 0
    assert "pre-training 32-d word vectors on 166 texts" in err  # 38 training + 128 unlabeled


def test_pretraining_corpus_leaves_out_validation_texts_and_repeats():
    train, val = pd.Series(["good film", "bad film"]), pd.Series(["held out"])
    unlabeled = pd.Series(["good film", "held out", "new review", "another one"])
    assert recipe.pretraining_corpus(train, val, unlabeled).tolist() == [
        "good film", "bad film", "new review", "another one"]


def test_vocabulary_sample_caps_characters_and_is_seeded():
    texts = pd.Series([f"text number {i}" for i in range(100)])
    sample = recipe.vocabulary_sample(texts, seed=1, max_chars=140)
    assert 0 < sample.str.len().sum() <= 140 and len(sample) < 100
    assert sample.tolist() == recipe.vocabulary_sample(texts, seed=1, max_chars=140).tolist()
    assert len(recipe.vocabulary_sample(pd.Series(["x" * 500]), max_chars=10)) == 1
    assert len(recipe.vocabulary_sample(texts)) == 100


def test_cli_json_line_handles_numpy_and_nan():
    from tfllm import cli

    line = cli.to_json({"a": np.float32(0.5), "b": np.arange(2), "c": float("nan"), "d": b"x", "e": "é"})
    assert "\n" not in line
    assert json.loads(line) == {"a": 0.5, "b": [0, 1], "c": None, "d": "x", "e": "é"}


def test_cli_run_maps_user_errors_and_keeps_bugs(capsys):
    from tfllm import cli
    from tfllm.data import DataError

    def fail(error):
        def command(_):
            raise error
        return command

    assert cli.run(fail(DataError("bad row\nsecond line", path="x.csv", row=3)), prog="app") == 2
    assert capsys.readouterr().err == "app: error: x.csv: row 3: bad row\\nsecond line\n"
    assert cli.run(fail(FileNotFoundError(2, "No such file or directory", "y.csv")), prog="app") == 2
    assert capsys.readouterr().err == "app: error: y.csv: No such file or directory\n"
    assert cli.run(lambda _: 3, prog="app") == 3
    # A bug is one line and exit code 1; its traceback only with debug.
    assert cli.run(lambda _: 1 / 0, prog="app") == 1
    assert capsys.readouterr().err == (
        "app: internal error: ZeroDivisionError: division by zero (run with --debug for the traceback)\n")
    with pytest.raises(ZeroDivisionError):
        cli.run(lambda _: 1 / 0, prog="app", debug=True)


def test_plot_history_writes_png(tmp_path):
    from tfllm.training import runs

    path = runs.plot_history({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8]}, tmp_path / "c.png")
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no metrics"):
        runs.plot_history({}, tmp_path / "empty.png")


@pytest.mark.slow
def test_export_writes_the_trained_run_again_as_a_new_version(trained):
    base = os.path.dirname(trained["export_path"])
    code, out, err = run_main(["export", "--run-dir", trained["run_dir"], "--export-dir", base])
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["export_path"] == os.path.join(base, "2")
    code, out, err = run_main(["predict", "--model-dir", result["export_path"], *TEXTS[:2]])
    assert code == 0, err
    expected = trained["export"](TEXTS[:2])["label"].numpy()
    assert [json.loads(line)["label"] for line in out.strip().splitlines()] == [s.decode() for s in expected]


def test_export_of_a_directory_without_a_run_is_one_line(tmp_path):
    line = _error_line(*run_main(["export", "--run-dir", str(tmp_path), "--export-dir", str(tmp_path / "e")]))
    assert "model.keras" in line and "run train first" in line


def test_an_internal_error_is_one_line_and_debug_shows_the_traceback(monkeypatch, tmp_path):
    def broken(*args, **kwargs):
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr(app.TASK, "export_run", broken)
    argv = ["export", "--run-dir", str(tmp_path)]
    code, out, err = run_main(argv)
    assert code == 1 and out == "" and "Traceback" not in err
    assert err.strip().splitlines() == [
        "sentiment: internal error: RuntimeError: broken on purpose (run with --debug for the traceback)"]
    with pytest.raises(RuntimeError):
        run_main(["--debug", *argv])


@pytest.mark.slow
def test_compress_int8_exports_a_new_version_and_reports_the_ratios(trained, binary_csv):
    base = os.path.dirname(trained["export_path"])
    code, out, err = run_main(["compress", "--method", "int8", "--model-dir", trained["run_dir"], "--data", binary_csv,
                               "--text-column", "review", "--label-column", "sentiment", "--export-dir", base])
    assert code == 0, err
    record = json.loads(out.strip().splitlines()[-1])
    assert record["command"] == "compress" and record["method"] == "int8"
    for key in ("size_ratio", "latency_ratio", "accuracy", "base_accuracy"):
        assert record[key] is not None and record[key] >= 0, key
    assert os.path.dirname(record["export_path"]) == base and os.path.isdir(record["export_path"])


@pytest.mark.parametrize("argv, needle", [
    (["compress", "--method", "prune", "--model-dir", "{base}", "--sparsity", "1.5"], "--sparsity"),
    (["compress", "--method", "distill", "--model-dir", "{base}"], "needs --data"),
    (["compress", "--method", "int8", "--model-dir", "{base}/nowhere"], "nowhere"),
    (["distill", "--teacher", "{base}/nowhere", "--data", "{no_label}"], "nowhere"),
])
def test_compress_bad_input_is_one_line_and_exit_2(bad_files, argv, needle):
    argv = [arg.format(**bad_files) for arg in argv]
    line = _error_line(*run_main(argv))
    assert needle in line

"""Summarization app: train a tiny model in process, export, reload in a fresh process."""

import io
import json
import os
import subprocess
import sys

from contextlib import redirect_stdout

import harness
import pytest

ROOT = harness.REPO_ROOT
TINY = [
    "--epochs", "1", "--vocabulary-size", "300", "--max-source-length", "64",
    "--max-target-length", "16", "--hidden-dim", "16", "--num-layers", "1", "--num-heads", "2",
    "--intermediate-dim", "32", "--batch-size", "16", "--decoding", "greedy",
]


@pytest.fixture(scope="module")
def app():
    return harness.load_app("summarization")


@pytest.fixture(scope="module")
def trained(app, tmp_path_factory):
    """Trains on 40 rows of a table, scores 6 validation rows and exports."""
    from tfllm.data import load_sample

    base = tmp_path_factory.mktemp("summarization")
    table = base / "pairs.csv"
    load_sample("summarization").iloc[:40].to_csv(table, index=False)
    args = [
        "train", "--data", str(table), "--eval-limit", "6", *TINY,
        "--run-dir", str(base / "run"), "--export-dir", str(base / "export"),
    ]
    out = io.StringIO()
    with redirect_stdout(out):
        code = app.main(args)
    assert code == 0
    return base, table, harness.last_json(out.getvalue())


@pytest.mark.slow
def test_train_reports_rouge_next_to_lead3_and_exports(trained):
    base, _, result = trained
    for key in ("rouge1", "rouge2", "rougeL", "lead3_rouge1", "lead3_rouge2", "lead3_rougeL"):
        assert 0.0 <= result[key] <= 1.0
    assert result["lead3_rouge1"] > 0  # Lead-3 always overlaps the summary a little
    assert result["export_path"] == str(base / "export" / "1")
    assert os.path.exists(os.path.join(result["export_path"], "saved_model.pb"))
    assert os.path.exists(base / "run" / "model.keras")


@pytest.mark.slow
def test_export_answers_text_in_a_fresh_process(trained):
    base, _, _ = trained
    text = "Anna: are we still on for tonight?\nTom: yes, cinema at 7"
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "apps", "summarization.py"), "predict",
         "--model-dir", str(base / "export"), text, "Mike: lost my keys"],
        capture_output=True, text=True, timeout=180, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert [line["text"] for line in lines] == [text, "Mike: lost my keys"]
    assert all(isinstance(line["output_text"], str) for line in lines)


@pytest.mark.slow
def test_signature_and_in_process_generation_agree(trained):
    """The export (tokenize, decode, detokenize in graph) equals in-process generation."""
    import tensorflow as tf

    from tfllm.tasks import text_generator, text_to_text
    from tfllm.tasks.text_generator import LoadedTextGenerator
    from tfllm.serving import signatures
    from tfllm.serving.export import check_serving_ops

    base, _, result = trained
    model, tokenizer, _ = text_to_text.load_run(base / "run")
    texts = ["Anna: hi\nTom: hello, see you at 7", "Mike: bread please\nLaura: ok", ""]
    loaded = LoadedTextGenerator(str(base / "export"))
    spec = loaded.signature.structured_input_signature[1][signatures.TEXT]
    assert spec.dtype == tf.string and spec.shape.as_list() == [None]
    # The same decoding as the export's (the app's repetition-control defaults included).
    assert loaded.generate(texts) == text_generator.generate_texts(model, tokenizer, texts, **result["decoding"])
    check_serving_ops(str(base / "export" / "1"))


@pytest.mark.slow
def test_evaluate_and_beam_export(app, trained, capsys):
    base, table, _ = trained
    assert app.main(["evaluate", "--model-dir", str(base / "export"), "--data", str(table), "--limit", "4"]) == 0
    result = harness.last_json(capsys.readouterr().out)
    assert result["examples"] == 4 and {"rouge1", "lead3_rouge1"} <= set(result)
    assert app.main(["export", "--run-dir", str(base / "run"), "--export-dir", str(base / "export"),
                     "--decoding", "beam", "--num-beams", "2"]) == 0
    result = harness.last_json(capsys.readouterr().out)
    assert result["export_path"] == str(base / "export" / "2")
    # The app's repetition defaults travel into the export unless a flag changes them.
    assert result["decoding"] == {"strategy": "beam", "num_beams": 2, "no_repeat_ngram_size": 3,
                                  "repetition_penalty": 1.2}


def test_repetition_flags_turn_the_defaults_off(app):
    from tfllm.cli.text_to_text import decoding_options

    parse = app.APP.build_parser().parse_args
    args = parse(["export", "--decoding", "greedy", "--no-repeat-ngram-size", "0", "--repetition-penalty", "1"])
    assert decoding_options(args, 48) == {"strategy": "greedy"}
    args = parse(["export", "--decoding", "top_k", "--repetition-penalty", "1.5"])
    assert decoding_options(args, 48) == {"strategy": "top_k", "k": 10, "seed": 0, "no_repeat_ngram_size": 3,
                                          "repetition_penalty": 1.5}


def test_bad_input_exits_2_with_one_line(app, tmp_path, capsys):
    bad_table = tmp_path / "bad.csv"
    bad_table.write_text("dialogue,notes\nhello,world\n")
    good_table = tmp_path / "good.csv"
    good_table.write_text("dialogue,summary\nhello,world\n")
    cases = [
        ["train", "--data", str(tmp_path / "missing.csv")],
        ["train", "--data", str(bad_table)],
        ["evaluate", "--model-dir", str(tmp_path / "nothing"), "--data", str(good_table)],
        ["predict", "--model-dir", str(tmp_path), ""],
        ["export", "--run-dir", str(tmp_path / "norun")],
        ["train", "--epochs", "0"],
    ]
    for argv in cases:
        assert app.main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("summarization: error:") and "\n" not in err, (argv, err)


@pytest.mark.slow
def test_model_server_answers_text_over_grpc(trained):
    """The tfllm model server loads the export and returns generated text over gRPC."""
    from tfllm.tasks.text_generator import LoadedTextGenerator
    from tfllm.serving import signatures
    from tfllm.serving.client import ServingClient
    from tfllm.serving.server import ModelServer

    base, _, _ = trained
    texts = ["Anna: hi\nTom: hello, see you at 7", "Mike: bread please"]
    server = ModelServer(
        model_name="summarization", model_base_path=str(base / "export"), port=0,
        file_system_poll_wait_seconds=0,
    )
    server.start()
    try:
        with ServingClient(f"127.0.0.1:{server.port}", timeout=60) as client:
            outputs = client.predict("summarization", {signatures.TEXT: texts})
    finally:
        server.stop()
    answered = [str(s) for s in outputs[signatures.OUTPUT_TEXT]]
    # The server serves the latest version, as TF Serving does by default.
    assert answered == LoadedTextGenerator(str(base / "export")).generate(texts)


@pytest.mark.slow
def test_learning_rate_drops_when_validation_loss_stalls(app, trained, tmp_path):
    _, table, _ = trained
    tiny = ["--epochs", "3", *TINY[2:]]  # TINY starts with --epochs 1
    out = io.StringIO()
    with redirect_stdout(out):
        code = app.main(["train", "--data", str(table), "--eval-limit", "2", *tiny, "--no-export",
                         "--learning-rate", "1e-7", "--patience", "3", "--reduce-lr-patience", "1",
                         "--run-dir", str(tmp_path / "run")])
    assert code == 0
    with open(tmp_path / "run" / "history.json") as f:
        rates = json.load(f)["learning_rate"]
    # A learning rate of 1e-7 cannot lower the loss by ReduceLROnPlateau's min_delta, so from the
    # second epoch on the rate is divided by 5 after every epoch (the history logs each epoch's rate).
    assert rates == pytest.approx([1e-7, 1e-7, 2e-8], rel=1e-3)

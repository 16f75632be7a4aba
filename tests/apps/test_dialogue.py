"""Dialogue app: train on DailyDialog-format text, evaluate, chat, reload in a fresh process."""

import io
import os
import subprocess
import sys
from contextlib import redirect_stdout

import harness
import pytest

ROOT = harness.REPO_ROOT
TINY = [
    "--epochs", "1", "--vocabulary-size", "300", "--max-source-length", "24",
    "--max-target-length", "12", "--hidden-dim", "16", "--num-layers", "1", "--num-heads", "2",
    "--intermediate-dim", "32", "--batch-size", "16",
]


@pytest.fixture(scope="module")
def app():
    return harness.load_app("dialogue")


@pytest.fixture(scope="module")
def trained(app, tmp_path_factory):
    """Trains on a DailyDialog-format file (utterances end with __eou__) and exports."""
    from tfllm.data import load_sample

    base = tmp_path_factory.mktemp("dialogue")
    sample = load_sample("dialogue").iloc[:60]
    dialogues = base / "dialogues_train.txt"
    dialogues.write_text(
        "".join(f"{c} __eou__ {r} __eou__\n" for c, r in zip(sample.context, sample.response))
    )
    table = base / "pairs.csv"
    sample.iloc[:8].to_csv(table, index=False)
    args = [
        "train", "--data", str(dialogues), "--eval-limit", "6", "--context-turns", "2", *TINY,
        "--run-dir", str(base / "run"), "--export-dir", str(base / "export"),
    ]
    out = io.StringIO()
    with redirect_stdout(out):
        assert app.main(args) == 0
    return base, table, harness.last_json(out.getvalue())


@pytest.mark.slow
def test_train_reports_perplexity_bleu_and_distinct(trained):
    base, _, result = trained
    assert result["train_examples"] + result["val_examples"] == 60
    assert result["perplexity"] > 1
    for key in ("bleu1", "bleu2", "distinct1", "distinct2"):
        assert 0.0 <= result[key] <= 1.0
    assert "method1" in result["bleu_smoothing"]
    assert os.path.exists(os.path.join(result["export_path"], "saved_model.pb"))


@pytest.mark.slow
def test_evaluate_uses_the_export_alone(app, trained, capsys):
    """Perplexity from the export's saved score function equals the in-process model's."""
    from tfllm.tasks import text_generator, text_to_text

    base, table, _ = trained
    assert app.main(["evaluate", "--model-dir", str(base / "export"), "--data", str(table)]) == 0
    result = harness.last_json(capsys.readouterr().out)
    assert result["examples"] == 8
    model, tokenizer, _ = text_to_text.load_run(base / "run")
    import pandas as pd

    frame = pd.read_csv(table)
    expected = text_generator.model_perplexity(model, tokenizer, frame.context, frame.response)
    assert result["perplexity"] == pytest.approx(expected, rel=1e-3)


@pytest.mark.slow
def test_chat_keeps_answering_until_quit(app, trained):
    base, _, _ = trained
    args = app.APP.build_parser().parse_args(["chat", "--model-dir", str(base / "export"), "--context-turns", "2"])
    out = io.StringIO()
    assert app.chat(app.APP, args, io.StringIO("Hi there!\nHow are you?\nquit\nignored\n"), out) == 0
    replies = out.getvalue().splitlines()
    assert len(replies) == 2 and all(line.startswith("bot> ") for line in replies)


@pytest.mark.slow
def test_export_answers_text_in_a_fresh_process(trained):
    base, _, _ = trained
    code = (
        "import sys\n"
        "from tfllm.tasks.text_generator import LoadedTextGenerator\n"
        "out = LoadedTextGenerator(sys.argv[1]).generate(['Hi there!', 'Good morning!'])\n"
        "assert len(out) == 2 and all(isinstance(s, str) for s in out)\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(base / "export")], capture_output=True, text=True,
        timeout=180, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")


def test_bad_input_exits_2_with_one_line(app, tmp_path, capsys):
    broken = tmp_path / "dialogues_bad.txt"
    broken.write_text("only one utterance __eou__\n")
    cases = [
        ["train", "--data", str(broken)],
        ["train", "--dataset", "dailydialog", "--data", str(broken)],
        ["chat", "--model-dir", str(tmp_path / "nothing")],
        ["predict", "--model-dir", str(tmp_path)],
        ["train", "--model", "gpt"],
    ]
    for argv in cases:
        assert app.main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("dialogue: error:") and "\n" not in err, (argv, err)

"""Language-model app: pretrain, generate, evaluate, export (fresh process, gRPC), resume, bad input."""

import io
import json
import os
import signal
import subprocess
import sys
import time

from contextlib import redirect_stdout

import harness
import pytest

ROOT = harness.REPO_ROOT
APP = os.path.join(ROOT, "apps", "language_model.py")
TINY = ["--sequence-length", "24", "--num-layers", "1", "--num-heads", "2", "--hidden-dim", "16",
        "--intermediate-dim", "32", "--dropout", "0", "--batch-size", "8", "--learning-rate", "0.01"]
TEXT = ("Twinkle, twinkle, little star,\nHow I wonder what you are!\nUp above the world so high,\n"
        "Like a diamond in the sky.\n") * 8
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
           PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))


@pytest.fixture(scope="module")
def app():
    return harness.load_app("language_model")


def run_app(app, argv):
    out = io.StringIO()
    with redirect_stdout(out):
        code = app.main(argv)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def pretrained(app, tmp_path_factory):
    """A character-level causal backbone, pre-trained for 2 short epochs."""
    base = tmp_path_factory.mktemp("language_model")
    corpus = base / "rhymes.txt"
    corpus.write_text(TEXT)
    code, out = run_app(app, ["pretrain", "--objective", "causal", "--tokenizer", "char", "--data", str(corpus),
                              "--epochs", "2", "--steps-per-epoch", "4", *TINY, "--run-dir", str(base / "run")])
    assert code == 0
    return base, corpus, harness.last_json(out)


def test_pretrain_names_the_backbone_and_logs_throughput_and_perplexity(pretrained):
    from tfllm.models import DecoderBackbone, load_backbone

    base, _, result = pretrained
    assert result["command"] == "pretrain" and result["backbone_dir"] == str(base / "run" / "backbone")
    backbone, _ = load_backbone(result["backbone_dir"])
    assert isinstance(backbone, DecoderBackbone) and backbone.max_sequence_length == 24
    history = json.loads((base / "run" / "history.json").read_text())
    assert len(history["tokens_per_second"]) == len(history["val_perplexity"]) == 2
    assert os.listdir(base / "run" / "logs")  # TensorBoard event files


def test_generate_and_evaluate(app, pretrained):
    base, corpus, result = pretrained
    code, out = run_app(app, ["generate", "--backbone-dir", result["backbone_dir"], "--max-length", "20",
                              "Twinkle", "How I"])
    assert code == 0
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert [line["prompt"] for line in lines] == ["Twinkle", "How I"]
    assert all(0 < len(line["output_text"]) <= 20 - len(line["prompt"]) for line in lines)
    code, out = run_app(app, ["evaluate", "--backbone-dir", result["backbone_dir"], "--data", str(corpus)])
    scores = harness.last_json(out)
    assert code == 0 and scores["tokens"] == len(TEXT) - 1 and 1 < scores["perplexity"] < 129


@pytest.mark.slow
def test_export_passes_the_op_check_and_answers_in_a_fresh_process_and_over_grpc(app, pretrained):
    from tfllm.serving.client import ServingClient
    from tfllm.serving.export import check_serving_ops
    from tfllm.serving.server import ModelServer

    base, _, result = pretrained
    export = base / "export"
    code, out = run_app(app, ["export", "--backbone-dir", result["backbone_dir"], "--export-dir", str(export),
                              "--max-length", "20"])
    assert code == 0 and harness.last_json(out)["export_path"] == str(export / "1")
    check_serving_ops(str(export / "1"))
    prompts = ["Twinkle", "a prompt longer than the twenty tokens the export keeps"]
    done = subprocess.run([sys.executable, APP, "predict", "--model-dir", str(export), *prompts],
                          capture_output=True, text=True, timeout=180, env=ENV)
    assert done.returncode == 0, done.stderr[-2000:]
    fresh = [json.loads(line)["output_text"] for line in done.stdout.strip().splitlines()]
    assert len(fresh) == 2 and all(isinstance(text, str) and text for text in fresh)
    server = ModelServer(model_config=[{"name": "lm", "base_path": str(export)}], port=0,
                         file_system_poll_wait_seconds=0)
    server.start()
    try:
        with ServingClient(f"127.0.0.1:{server.port}", timeout=60) as client:
            answer = client.predict("lm", {"text": [*prompts, ""]})  # an empty prompt starts a new line
    finally:
        server.stop()
    answer = [text.decode() if isinstance(text, bytes) else text for text in answer["output_text"]]
    assert answer[:2] == fresh and answer[2]


@pytest.mark.slow
def test_a_killed_pretrain_resumes_from_its_backup(app, pretrained, tmp_path):
    _, corpus, _ = pretrained
    epochs, run_dir = 12, tmp_path / "run"
    argv = ["pretrain", "--objective", "causal", "--tokenizer", "char", "--data", str(corpus),
            "--epochs", str(epochs), "--patience", str(epochs), "--steps-per-epoch", "2", *TINY,
            "--run-dir", str(run_dir)]
    state = run_dir / "backup" / "backup.json"
    process = subprocess.Popen([sys.executable, APP, *argv], env=ENV, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not state.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    stderr = process.communicate()[1].decode()
    assert state.exists(), stderr[-2000:]
    done = json.loads(state.read_text())["epoch"]
    assert 1 <= done < epochs
    code, out = run_app(app, argv)
    result = harness.last_json(out)
    assert code == 0 and result["epochs_run"] == epochs - done
    assert not (run_dir / "backup").exists() and os.path.isdir(result["backbone_dir"])


def test_decoding_flags_become_the_generator_options(app):
    from tfllm.cli.language_modeling import decoding_options

    parse = app.APP.build_parser().parse_args
    assert decoding_options(parse(["generate", "hi"])) == {"strategy": "greedy"}
    args = parse(["generate", "--decoding", "top_p", "--top-p", "0.5", "--temperature", "0.7", "--seed", "3",
                  "--max-length", "20", "hi"])
    assert decoding_options(args) == {"strategy": "top_p", "p": 0.5, "temperature": 0.7, "seed": 3, "max_length": 20}
    args = parse(["export", "--decoding", "top_k", "--top-k", "4"])
    assert decoding_options(args) == {"strategy": "top_k", "k": 4, "seed": 0}


def test_bad_input_exits_2_with_one_line_naming_the_path(app, tmp_path, capsys):
    empty, binary, table = tmp_path / "empty.txt", tmp_path / "model.bin", tmp_path / "t.csv"
    empty.write_text("\n  \n")
    binary.write_bytes(bytes(range(256)) * 4)
    table.write_text("text\nhello\n")
    (tmp_path / "nothing").mkdir()
    cases = [
        (["pretrain", "--data", str(empty)], str(empty)),
        (["pretrain", "--data", str(binary)], str(binary)),
        (["pretrain", "--data", str(tmp_path / "missing.txt")], "missing.txt"),
        (["pretrain", "--data", str(tmp_path / "nothing")], "nothing"),
        (["pretrain", "--data", str(table), "--text-column", "review"], "review"),
        (["pretrain", "--data", str(empty), "--epochs", "0"], "--epochs"),
        (["generate", "--backbone-dir", str(tmp_path / "nobackbone"), "hi"], "nobackbone"),
        (["evaluate", "--backbone-dir", str(tmp_path / "nobackbone"), "--data", str(empty)], str(empty)),
        (["predict", "--model-dir", str(tmp_path / "noexport"), "hi"], "noexport"),
    ]
    for argv, named in cases:
        assert app.main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and named in err, (argv, err)


def _free_ports(n):
    import socket

    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_local_workers_match_one_device_and_only_the_chief_writes_the_backbone(app, pretrained, tmp_path):
    _, corpus, _ = pretrained
    common = ["pretrain", "--objective", "causal", "--tokenizer", "char", "--data", str(corpus),
              "--epochs", "2", "--steps-per-epoch", "3", *TINY]
    code, out = run_app(app, [*common, "--run-dir", str(tmp_path / "one")])  # global batch 8
    assert code == 0
    one = harness.last_json(out)
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    processes = []
    for index in range(2):
        env = dict(ENV, TMPDIR=str(scratch), TF_CONFIG=json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}))
        argv = [*common, "--batch-size", "4", "--strategy", "multiworker", "--run-dir", str(tmp_path / "two")]
        processes.append(subprocess.Popen([sys.executable, APP, *argv], cwd=tmp_path, env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        outputs = [p.communicate(timeout=240) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(processes, outputs):
        assert p.returncode == 0, err[-3000:]
    chief, other = (harness.last_json(out) for out, _ in outputs)
    for result in (chief, other):
        assert result["loss"] == pytest.approx(one["loss"], rel=1e-4)
        assert result["val_loss"] == pytest.approx(one["val_loss"], rel=1e-4)
    assert chief["backbone_dir"] == str(tmp_path / "two" / "backbone") and other["backbone_dir"] is None
    assert os.path.isdir(chief["backbone_dir"])

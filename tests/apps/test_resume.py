"""kill -9 during training, then the same command again: an app of each task resumes and exports once."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import harness
import pytest

EPOCHS = 3
TIMEOUT_S = 300
TINY_SEQ2SEQ = [
    "--vocabulary-size", "300", "--max-source-length", "48", "--max-target-length", "12",
    "--hidden-dim", "16", "--num-layers", "1", "--num-heads", "2", "--intermediate-dim", "32",
    "--batch-size", "4", "--eval-limit", "4",
]
APPS = {
    "sentiment": ["--model", "transformer", "--batch-size", "4", "--vocabulary-size", "300", "--max-length", "32"],
    "summarization": TINY_SEQ2SEQ,
    "ner": ["--batch-size", "16"],
    "qa": [
        "--vocabulary-size", "400", "--num-layers", "1", "--num-heads", "2", "--hidden-dim", "16",
        "--intermediate-dim", "32", "--max-seq-length", "48", "--doc-stride", "16", "--max-query-length", "12",
        "--max-answer-length", "8", "--batch-size", "16",
    ],
}
# (app, seed): the seed picks after which backed-up epoch, and how long after it, the kill lands.
# One app per task: dialogue and translation train through the same
# `TextToTextTask.train` as summarization (only their data differ), so killing
# them proves nothing more; the language model's pre-training has its own
# kill test in test_language_model.py.
CASES = [("sentiment", 0), ("summarization", 1), ("ner", 2), ("qa", 3)]


def _command(app, tmp_path):
    # The demo trains on the built-in sample; patience past the last epoch
    # keeps early stopping out of the epoch count.
    return [
        sys.executable, os.path.join(harness.REPO_ROOT, "apps", f"{app}.py"), "demo", *APPS[app],
        "--epochs", str(EPOCHS), "--patience", str(EPOCHS + 1),
        "--run-dir", str(tmp_path / "run"), "--export-dir", str(tmp_path / "export"),
    ]


def _start(command, log):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    with open(log, "w") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)


def _epochs_backed_up(backup_state):
    try:
        return json.loads(backup_state.read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("app, seed", CASES)
def test_training_killed_at_a_random_point_resumes_and_exports_once(app, seed, tmp_path):
    rng = random.Random(seed)
    kill_after_epoch, delay = rng.randint(1, EPOCHS - 1), rng.uniform(0.0, 0.5)
    backup_state = tmp_path / "run" / "backup" / "backup.json"
    command = _command(app, tmp_path)

    process = _start(command, tmp_path / "first.log")
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while _epochs_backed_up(backup_state) < kill_after_epoch and process.poll() is None:
            assert time.monotonic() < deadline, "no backup in time"
            time.sleep(0.02)
        time.sleep(delay)
        assert process.poll() is None, "training ended before the kill:\n" + (tmp_path / "first.log").read_text()[-3000:]
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    epochs_done = _epochs_backed_up(backup_state)
    assert 1 <= epochs_done < EPOCHS
    assert not (tmp_path / "export").exists() or os.listdir(tmp_path / "export") == []

    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES=""))
    assert done.returncode == 0, done.stderr[-3000:]
    result = harness.last_json(done.stdout)
    # It ran only the epochs the killed run had not finished: as many in all as an uninterrupted run.
    assert result["epochs_run"] == EPOCHS - epochs_done
    assert os.listdir(tmp_path / "export") == ["1"]
    assert result["export_path"] == str(tmp_path / "export" / "1")
    assert not (tmp_path / "run" / "backup").exists()

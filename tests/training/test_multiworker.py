"""Two sentiment-app workers on 127.0.0.1 train with MultiWorkerMirroredStrategy.

They are killed after their first backup, started again, resume together from
the chief's backup, and only the chief exports.
"""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APP = os.path.join(REPO, "apps", "sentiment.py")
EPOCHS = 4
TIMEOUT_S = 200  # per attempt

POSITIVE = ["a great and moving film", "wonderful acting and a clever plot", "i loved every minute",
            "brilliant fun for everyone", "a charming delight"]
NEGATIVE = ["a dull and boring mess", "terrible acting and a silly plot", "i hated every minute",
            "awful waste of time", "a tedious failure"]


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start_workers(tmp_path, attempt, csv_path, scratch):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes, logs = [], []
    for index in range(2):
        env = dict(
            os.environ,
            TF_CONFIG=json.dumps(
                {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
            ),
            TMPDIR=str(scratch),  # Where the non-chief worker puts throw-away files.
            PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]),
            TF_CPP_MIN_LOG_LEVEL="2",
        )
        logs.append(tmp_path / f"attempt{attempt}-worker{index}.log")
        with open(logs[-1], "w") as log:
            processes.append(subprocess.Popen(
                [sys.executable, APP, "train", "--data", str(csv_path), "--model", "transformer",
                 "--epochs", str(EPOCHS), "--patience", str(EPOCHS), "--batch-size", "4",
                 "--vocabulary-size", "200", "--max-length", "16",
                 "--run-dir", str(tmp_path / "run"), "--export-dir", str(tmp_path / "export"),
                 "--strategy", "multiworker"],
                cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
            ))
    return processes, logs


def _wait(processes, until, timeout):
    """Polls until `until()` holds or every process exited; a failed worker ends the wait."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if until() or all(p.poll() is not None for p in processes):
            return
        if any(p.poll() not in (None, 0) for p in processes):
            return  # The other worker would wait for it forever.
        time.sleep(0.1)


def _kill(processes):
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        p.wait()


def _result(log):
    text = log.read_text()
    for line in reversed(text.splitlines()):
        if line.startswith('{"command"'):
            return json.loads(line)
    raise AssertionError(f"{log.name}: no result line:\n{text[-3000:]}")


@pytest.mark.slow
def test_sentiment_app_trains_on_two_workers_resumes_after_a_kill_and_exports_once(tmp_path):
    csv_path, scratch = tmp_path / "tiny.csv", tmp_path / "scratch"
    scratch.mkdir()
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows([(t, "pos") for t in POSITIVE] * 4 + [(t, "neg") for t in NEGATIVE] * 4)
    backup_state = tmp_path / "run" / "backup" / "backup.json"

    processes = []
    try:
        processes, logs = _start_workers(tmp_path, 1, csv_path, scratch)
        _wait(processes, backup_state.exists, TIMEOUT_S)
        assert all(p.poll() is None for p in processes), (
            "workers ended before their first backup:\n" + logs[0].read_text()[-3000:]
        )
        _kill(processes)
        restarted = time.time()
        epochs_done = json.loads(backup_state.read_text())["epoch"]
        assert 1 <= epochs_done < EPOCHS

        processes, logs = _start_workers(tmp_path, 2, csv_path, scratch)
        _wait(processes, lambda: False, TIMEOUT_S)
    finally:
        _kill(processes)
    for p, log in zip(processes, logs):
        assert p.returncode == 0, log.read_text()[-3000:]
    chief, other = (_result(log) for log in logs)

    # Both resumed after the finished epochs and ran only the rest, in lock-step.
    assert chief["epochs_run"] == other["epochs_run"] == EPOCHS - epochs_done
    assert chief["best_val_loss"] == pytest.approx(other["best_val_loss"], rel=1e-6)
    # Exactly one export, by the chief (worker 0).
    assert os.listdir(tmp_path / "export") == ["1"]
    assert chief["export_path"] is not None and other["export_path"] is None
    assert not (tmp_path / "run" / "backup").exists()  # deleted once training finished
    # The non-chief removed every private directory of its finished run; only
    # what the killed attempt left behind (and did not reuse) may remain.
    left = [name for name in os.listdir(scratch) if name.startswith("tfllm-")]
    assert all(os.path.getmtime(scratch / name) < restarted for name in left), left

"""bench/language_model.py runs end to end (a few iterations on a small text) and prints its JSON line."""

import os
import subprocess
import sys

import harness
import pytest


@pytest.mark.slow
def test_language_model_benchmark_prints_its_json_line(tmp_path):
    corpus = tmp_path / "verse.txt"
    corpus.write_text("Hickory, dickory, dock,\nThe mouse ran up the clock.\n" * 40)
    completed = subprocess.run(
        [sys.executable, os.path.join(harness.REPO_ROOT, "bench", "language_model.py"), "--iterations", "3",
         "--data", str(corpus), "--no-jit"],
        capture_output=True, text=True, timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert len(completed.stdout.strip().splitlines()) == 1
    result = harness.last_json(completed.stdout)
    for key in ("val_loss", "train_seconds", "tokens_per_second", "keras_hub_tokens_per_second", "mfu"):
        assert result[key] > 0, key
    assert result["params"] == result["keras_hub_params"]  # the same size
    assert result["config"]["iterations"] == 3 and "cores" in result["fp32_peak"]

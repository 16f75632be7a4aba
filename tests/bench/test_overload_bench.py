"""bench/overload.py runs end to end (tiny model, ~2 s of overload) and prints its one JSON line."""

import os
import subprocess
import sys

import harness
import pytest


@pytest.mark.slow
def test_overload_benchmark_prints_its_json_line(tmp_path):
    env = dict(os.environ, TFLLM_DATA_DIR=str(tmp_path), TF_CPP_MIN_LOG_LEVEL="3")
    completed = subprocess.run(
        [sys.executable, os.path.join(harness.REPO_ROOT, "bench", "overload.py"), "--seconds", "2",
         "--overload", "5", "--capacity_seconds", "1", "--latency_requests", "20",
         "--sequence_length", "16", "--hidden_dim", "16", "--num_layers", "1",
         "--max_in_flight_requests", "1"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert len(completed.stdout.strip().splitlines()) == 1  # One JSON line, nothing else.
    result = harness.last_json(completed.stdout)
    assert result["texts"] == "demo sentences" and result["seconds"] == 2
    assert result["offered_rps"] >= result["sent_rps"] > 0 and result["served_rps"] > 0
    assert result["requests"]["ok"] > 0 and 0 <= result["refused_share"] <= 1
    assert result["unloaded_p99_ms"] > 0 and result["rss_ratio"] >= 1.0
    assert result["recovery_s"] is not None and result["recovery_s"] < 30

"""bench/serving.py runs end to end (tiny model, short load runs) and prints its one JSON line."""

import os
import subprocess
import sys

import harness
import pytest


@pytest.mark.slow
def test_serving_benchmark_prints_its_json_line(tmp_path):
    env = dict(os.environ, TFLLM_DATA_DIR=str(tmp_path), TF_CPP_MIN_LOG_LEVEL="3")
    completed = subprocess.run(
        [sys.executable, os.path.join(harness.REPO_ROOT, "bench", "serving.py"), "--seconds", "0.5",
         "--latency_requests", "10", "--sequence_length", "16", "--hidden_dim", "16",
         "--num_layers", "0", "--clients", "4"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert len(completed.stdout.strip().splitlines()) == 1  # One JSON line, nothing else.
    result = harness.last_json(completed.stdout)
    assert result["texts"] == "demo sentences"  # No data set: the built-in sentences.
    for key in ("rps_batching_off", "rps_batching_on", "rps_grpc_echo"):
        assert result[key] > 0
    assert result["batching_throughput_ratio"] == pytest.approx(
        result["rps_batching_on"] / result["rps_batching_off"], abs=0.01
    )
    assert result["grpc_p99_ms"] >= result["grpc_p50_ms"] > 0
    for run in ("batching_off", "batching_on", "grpc_echo"):
        cpu = result["cpu_ms_per_request"][run]
        assert cpu["load_generator"] > 0
        assert cpu["server"] is None or cpu["server"] > 0

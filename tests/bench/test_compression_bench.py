"""bench/compression.py runs end to end on a tiny table and prints its one JSON line."""

import os
import subprocess
import sys

import harness
import pytest

sys.path.insert(0, os.path.join(harness.REPO_ROOT, "tests", "compression"))

from tiny_runs import make_frame  # noqa: E402


@pytest.mark.slow
def test_compression_benchmark_prints_its_json_line(tmp_path):
    table = tmp_path / "reviews.csv"
    make_frame(80).to_csv(table, index=False)
    completed = subprocess.run(
        [sys.executable, os.path.join(harness.REPO_ROOT, "bench", "compression.py"), "--data", str(table),
         "--model", "fasttext", "--epochs", "1", "--prune-epochs", "1", "--student-epochs", "1",
         "--max-length", "16", "--vocabulary-size", "200", "--embedding-dim", "8", "--student-buckets", "64", "--runs", "2"],
        capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert len(completed.stdout.strip().splitlines()) == 1
    result = harness.last_json(completed.stdout)
    for method in ("int8", "prune", "distill"):
        assert result[method]["size_ratio"] > 0 and 0 <= result[method]["accuracy"] <= 1
    assert set(result["goals"]) == {
        "int8_size", "int8_latency", "int8_accuracy", "prune_gzip", "prune_accuracy", "distill_accuracy",
        "distill_latency",
    }

"""bench/fuzz.py drives every target with a tiny budget and prints its one JSON line."""

import os
import subprocess
import sys

import harness
import pytest


@pytest.mark.slow
def test_fuzz_benchmark_prints_its_json_line():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    completed = subprocess.run(
        [sys.executable, os.path.join(harness.REPO_ROOT, "bench", "fuzz.py"), "--cases", "50",
         "--seed", "3"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert len(completed.stdout.strip().splitlines()) == 1  # One JSON line, nothing else.
    result = harness.last_json(completed.stdout)
    assert result["cases_per_target"] == 50 and result["seed"] == 3
    for name in ("serving_rest", "serving_grpc"):
        run = result["targets"][name]
        assert (run["cases"], run["failures"], run["crashes"]) == (50, 0, 0), run
        assert run["seconds"] > 0
    # The other targets are the data readers' (bench/_fuzz_data.py, bench/_fuzz_task_data.py).
    assert not result["skipped"], result["skipped"]
    data_targets = set(result["targets"]) - {"serving_rest", "serving_grpc"}
    assert {"table_csv", "label_vocabulary", "conll", "entity_table_csv", "squad", "corpus_folder"} <= data_targets
    for name in data_targets:
        assert result["targets"][name]["cases"] == 50


def test_unknown_targets_are_a_usage_error():
    completed = subprocess.run(
        [sys.executable, os.path.join(harness.REPO_ROOT, "bench", "fuzz.py"), "--targets", "nope"],
        capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode != 0 and "unknown targets ['nope']" in completed.stderr

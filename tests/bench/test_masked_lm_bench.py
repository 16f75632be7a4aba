"""bench/masked_lm.py runs end to end (a few steps of a tiny model on a small text) and prints its JSON line."""

import importlib.util
import json
import os

import harness
import pytest


@pytest.mark.slow
def test_masked_lm_benchmark_prints_its_json_line(tmp_path, capsys):
    corpus = tmp_path / "verse.txt"
    corpus.write_text("Hickory, dickory, dock,\nThe mouse ran up the clock.\n" * 40)
    spec = importlib.util.spec_from_file_location("masked_lm_bench", os.path.join(harness.REPO_ROOT, "bench", "masked_lm.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    argv = ["--small", "--steps", "3", "--data", str(corpus), "--vocabulary-size", "100",
            "--sequence-length", "16", "--batch-size", "4"]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1  # One JSON line, nothing else.
    result = json.loads(out)
    for key in ("tokens_per_second", "keras_hub_tokens_per_second", "vs_keras_hub_ratio", "mfu", "train_loss"):
        assert result[key] > 0, key
    assert result["params"] == result["keras_hub_params"]  # the same size
    assert result["vs_keras_hub_ratio"] == pytest.approx(
        result["tokens_per_second"] / result["keras_hub_tokens_per_second"], abs=2e-3)
    assert result["config"]["steps"] == 3 and "cores" in result["fp32_peak"]

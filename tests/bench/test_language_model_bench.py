"""bench/language_model.py runs end to end (a few iterations on a small text) and prints its JSON line."""

import importlib.util
import json
import os

import harness
import pytest


@pytest.mark.slow
def test_language_model_benchmark_prints_its_json_line(tmp_path, capsys):
    corpus = tmp_path / "verse.txt"
    corpus.write_text("Hickory, dickory, dock,\nThe mouse ran up the clock.\n" * 40)
    spec = importlib.util.spec_from_file_location("language_model_bench",
                                                  os.path.join(harness.REPO_ROOT, "bench", "language_model.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--iterations", "3", "--data", str(corpus), "--no-jit"]) == 0
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1  # One JSON line, nothing else.
    result = json.loads(out)
    for key in ("val_loss", "train_seconds", "tokens_per_second", "keras_hub_tokens_per_second", "mfu"):
        assert result[key] > 0, key
    assert result["params"] == result["keras_hub_params"]  # the same size
    assert result["config"]["iterations"] == 3 and "cores" in result["fp32_peak"]

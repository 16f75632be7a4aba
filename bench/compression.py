"""Compression benchmark: int8, 80% pruning and a distilled student beside the model they came from.

Trains one classifier as `apps/sentiment.py train` does (the built-in
sentiment sample by default, or `--data`), then compresses that run three
ways with `tfllm.compression` and scores each export beside the original
on the same validation split: size on disk (and gzip size), p50 latency of
the served signature in-process at batch 1 and 32, accuracy. Prints one
JSON line with the numbers and whether each goal is met:

- int8: size <= 0.3x, latency <= 0.7x at batch 1 and 32, accuracy drop <= 0.5 points;
- prune (80%): gzip size <= 0.35x, accuracy drop <= 1 point;
- distill (fasttext student): accuracy within 1 point, latency >= 5x lower.

    python bench/compression.py [--data reviews.csv] [--model transformer] [--epochs 5]
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

KEYS = ("size_ratio", "variables_ratio", "gzip_ratio", "latency_ratio_batch_1", "latency_ratio_batch_32", "accuracy", "base_accuracy",
        "accuracy_drop")


def _summary(report):
    summary = {key: report.get(key) for key in KEYS}
    summary["base_p50_ms"], summary["p50_ms"] = report["base"]["p50_ms"], report["compressed"]["p50_ms"]
    return summary


def _goals(results):
    int8, prune, distill = results["int8"], results["prune"], results["distill"]
    return {
        "int8_size": int8["size_ratio"] <= 0.3,
        "int8_latency": max(int8["latency_ratio_batch_1"], int8["latency_ratio_batch_32"]) <= 0.7,
        "int8_accuracy": int8["accuracy_drop"] <= 0.005,
        "prune_gzip": prune["gzip_ratio"] <= 0.35,
        "prune_accuracy": prune["accuracy_drop"] <= 0.01,
        "distill_accuracy": distill["accuracy_drop"] <= 0.01,
        "distill_latency": distill["latency_ratio_batch_1"] <= 0.2,
    }


def run(args, log):
    from tfllm import data
    from tfllm.compression import compress_run, distill_run
    from tfllm.tasks.classification import ClassificationTask

    work = tempfile.mkdtemp(prefix="tfllm-compression-bench-")
    try:
        table = args.data
        if table is None:
            table = os.path.join(work, "sentiment.csv")
            data.load_sample("sentiment").to_csv(table, index=False)
        task = ClassificationTask(name="sentiment", sample="sentiment")
        options = {key: value for key, value in (("embedding_dim", args.embedding_dim),) if value}
        config = task.config(
            data=table, model=args.model, epochs=args.epochs, max_length=args.max_length,
            vocabulary_size=args.vocabulary_size, run_dir=os.path.join(work, "run"),
            export_dir=os.path.join(work, "exports", "base"), verbose=0, model_options=options,
        )
        trained = task.train(config, log=log)
        run_dir = trained["run_dir"]
        common = {"runs": args.runs, "log": log}
        student_options = {"num_buckets": args.student_buckets} if args.student == "fasttext" else {}
        results = {}
        results["int8"] = _summary(compress_run(run_dir, "int8", os.path.join(work, "exports", "int8"), data=table,
                                                **common))
        log(f"int8: {json.dumps(results['int8'])}")
        results["prune"] = _summary(compress_run(run_dir, "prune", os.path.join(work, "exports", "prune"), data=table,
                                                 sparsity=args.sparsity, epochs=args.prune_epochs, **common))
        log(f"prune: {json.dumps(results['prune'])}")
        results["distill"] = _summary(distill_run(run_dir, table, args.student, os.path.join(work, "exports", "student"),
                                                  epochs=args.student_epochs, max_length=args.max_length,
                                                  model_options=student_options, **common))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "benchmark": "compression",
        "data": args.data or "built-in sentiment sample",
        "model": args.model,
        "student": args.student,
        "sparsity": args.sparsity,
        "load_average": round(os.getloadavg()[0], 2),
        **results,
        "goals": _goals(results),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="a labelled table (default: the built-in sentiment sample)")
    parser.add_argument("--model", default="transformer", help="the model to compress (and the teacher)")
    parser.add_argument("--student", default="fasttext")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--prune-epochs", type=int, default=3)
    parser.add_argument("--student-epochs", type=int, default=10)
    parser.add_argument("--student-buckets", type=int, default=2**14, help="hashed n-gram rows of a fasttext student")
    parser.add_argument("--sparsity", type=float, default=0.8)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--vocabulary-size", type=int, default=8000)
    parser.add_argument("--embedding-dim", type=int, default=None)
    parser.add_argument("--runs", type=int, default=50, help="timed calls per batch size and model")
    args = parser.parse_args(argv)
    result = run(args, log=lambda line: print(line, file=sys.stderr))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""SQuAD v1.1: the QA app's default recipe trained on 8k questions, beside the sliding-window baseline.

    TFLLM_DATA_DIR=../shared/data python bench/qa.py [--epochs N] [--run-dir runs/bench-qa]
    TFLLM_DATA_DIR=../shared/data python bench/qa.py --model transformer               # the encoder from scratch
    TFLLM_DATA_DIR=../shared/data python bench/qa.py --pretrain-steps 600              # MLM, then fine-tuning

1. The sliding-window baseline (Rajpurkar et al. 2016; `tfllm.metrics.sliding_window`)
   answers `squad/validation.json` (858 questions).
2. With `--pretrain-steps N`: `apps/language_model.py pretrain --objective mlm`
   on the paragraphs of `squad/train.json` (`--squad-repeats` copies:
   in-domain text weighs more) and the Gutenberg books of `lm/gutenberg` (one
   document per paragraph; a WordPiece vocabulary learned on them), a
   2-layer, 128-d encoder with 256 positions, for N steps; the span model
   is then the transformer on that encoder (`--backbone`).
3. Training: `apps/qa.py train --data squad/train.json` with the app's
   defaults (the BiLSTM reader from scratch unless `--model` or a backbone
   says otherwise; a few articles of train.json held out for early
   stopping), then `apps/qa.py evaluate` on `squad/validation.json`.

Prints ONE JSON line: exact match and F1 of the model and of the baseline on
the same questions, their ratio, and the pre-training and training times.
"""

import argparse
import io
import json
import os
import sys
import time
from contextlib import redirect_stdout

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
PRETRAIN = ["--objective", "mlm", "--sequence-length", "256", "--num-layers", "2", "--num-heads", "4",
            "--hidden-dim", "128", "--intermediate-dim", "512", "--vocabulary-size", "8000", "--batch-size", "32",
            "--learning-rate", "1e-3", "--val-fraction", "0.02"]
GOAL_F1 = 51.0  # logistic regression, 87k training questions (Rajpurkar et al. 2016)


def data_dir():
    return os.environ.get("TFLLM_DATA_DIR", os.path.join(HERE, "..", "..", "shared", "data"))


def load_app(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"{name}_app", os.path.join(HERE, "..", "apps", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(app, argv):
    """Runs an app in process; returns its JSON line (raises on a non-zero exit)."""
    out = io.StringIO()
    with redirect_stdout(out):
        code = app.main(argv)
    if code != 0:
        raise SystemExit(f"{' '.join(argv[:1])} failed with exit code {code}")
    return json.loads(out.getvalue().strip().splitlines()[-1])


def write_corpus(path, squad_train, gutenberg, repeats):
    """One JSON line per paragraph: the SQuAD training contexts `repeats` times, then the books' paragraphs."""
    from tfllm.data.squad import read_squad

    paragraphs = list(dict.fromkeys(q.context for q in read_squad(squad_train))) * repeats
    squad_count = len(paragraphs)
    for name in sorted(os.listdir(gutenberg)):
        if name.endswith(".txt"):
            with open(os.path.join(gutenberg, name), encoding="utf-8", errors="replace") as file:
                paragraphs += [" ".join(p.split()) for p in file.read().split("\n\n") if len(p.split()) >= 5]
    with open(path, "w", encoding="utf-8") as file:
        for paragraph in paragraphs:
            file.write(json.dumps({"text": paragraph}) + "\n")
    return squad_count, len(paragraphs) - squad_count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pretrain-steps", type=int, default=0,
                        help="MLM steps of 32 x 256 tokens before fine-tuning the transformer (default 0: none)")
    parser.add_argument("--model", choices=("transformer", "reader"), default=None,
                        help="the span model (default: the app's)")
    parser.add_argument("--squad-repeats", type=int, default=4,
                        help="copies of the SQuAD training paragraphs in the pre-training corpus")
    parser.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs (default: the app's)")
    parser.add_argument("--run-dir", default="runs/bench-qa")
    args = parser.parse_args(argv)

    from tfllm.data.squad import read_squad
    from tfllm.tasks.question_answering import baseline_scores

    squad = os.path.join(data_dir(), "squad")
    train_file, validation_file = os.path.join(squad, "train.json"), os.path.join(squad, "validation.json")
    validation = read_squad(validation_file)
    started = time.perf_counter()
    baseline = baseline_scores(validation)
    baseline_seconds = time.perf_counter() - started
    os.makedirs(args.run_dir, exist_ok=True)

    backbone, pretrain, pretrain_seconds = [], {}, 0.0
    if args.pretrain_steps:
        corpus = os.path.join(args.run_dir, "pretrain_corpus.jsonl")
        squad_paragraphs, book_paragraphs = write_corpus(corpus, train_file, os.path.join(data_dir(), "lm", "gutenberg"),
                                                       args.squad_repeats)
        pretrain_dir = os.path.join(args.run_dir, "pretrain")
        started = time.perf_counter()
        pretrain = run(load_app("language_model"), [
            "pretrain", "--data", corpus, "--text-column", "text", *PRETRAIN, "--epochs", "1",
            "--steps-per-epoch", str(args.pretrain_steps), "--run-dir", pretrain_dir,
        ])
        pretrain_seconds = time.perf_counter() - started
        pretrain.update(squad_paragraphs=squad_paragraphs, book_paragraphs=book_paragraphs)
        backbone = ["--backbone", pretrain_dir]

    qa = load_app("qa")
    epochs = ["--epochs", str(args.epochs)] if args.epochs else []
    epochs += ["--model", args.model] if args.model else []
    started = time.perf_counter()
    trained = run(qa, ["train", "--data", train_file, *backbone, *epochs, "--run-dir", os.path.join(args.run_dir, "qa"),
                       "--export-dir", os.path.join(args.run_dir, "export")])
    finetune_seconds = time.perf_counter() - started
    report = run(qa, ["evaluate", "--model-dir", trained["export_path"], "--data", validation_file, "--no-baseline"])
    print(json.dumps({
        "benchmark": "qa_squad_v1.1",
        "model": trained["model"],
        "validation_questions": report["questions"],
        "train_questions": trained["train_questions"],
        "exact_match": report["exact_match"], "f1": report["f1"],
        "baseline_exact_match": baseline["baseline_exact_match"], "baseline_f1": baseline["baseline_f1"],
        "f1_over_baseline": round(report["f1"] / max(baseline["baseline_f1"], 1e-9), 3),
        "goal_f1": GOAL_F1, "goal_met": report["f1"] >= GOAL_F1,
        "first_bar_met": report["f1"] >= 2 * baseline["baseline_f1"],
        "pretrain_steps": args.pretrain_steps,
        "pretrain_val_perplexity": pretrain.get("val_perplexity"),
        "pretrain_tokens_per_second": pretrain.get("tokens_per_second"),
        "pretrain_paragraphs": {k: pretrain[k] for k in ("squad_paragraphs", "book_paragraphs")} if pretrain else None,
        "pretrain_seconds": round(pretrain_seconds, 1),
        "finetune_seconds": round(finetune_seconds, 1),
        "finetune_train_seconds": trained["train_seconds"],
        "finetune_epochs_run": trained["epochs_run"],
        "baseline_seconds": round(baseline_seconds, 1),
        "eval_questions_per_second": report["questions_per_second"],
    }), flush=True)


if __name__ == "__main__":
    main()

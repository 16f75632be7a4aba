"""SAMSum summarization from scratch: validation ROUGE next to Lead-3, with training time.

    TFLLM_DATA_DIR=../shared/data python bench/summarization.py [--epochs 4] [--train-limit N]

Trains the summarization app's Transformer on SAMSum train (from
`$TFLLM_DATA_DIR/samsum`, default ../shared/data relative to the repository
root), generates for the validation split and prints ONE JSON line: ROUGE-1/2/L
F1 (rouge-score, stemming) of the model and of Lead-3 on the same rows, the
training time and the settings. Tuning happens on validation only.
"""

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--train-limit", type=int, help="train on the first N pairs")
    parser.add_argument("--val-limit", type=int, help="score the first N validation pairs")
    parser.add_argument("--model", default="transformer", choices=("transformer", "lstm"))
    parser.add_argument("--hidden-dim", type=int, default=128)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--intermediate-dim", type=int, default=512)
    parser.add_argument("--vocabulary-size", type=int, default=8000)
    parser.add_argument("--max-source-length", type=int, default=192)
    parser.add_argument("--max-target-length", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--decoding", default="greedy", choices=("greedy", "beam"))
    parser.add_argument("--num-beams", type=int, default=4)
    args = parser.parse_args(argv)

    os.environ.setdefault("TFLLM_DATA_DIR", os.path.join(ROOT, "..", "shared", "data"))
    from tfllm import cli
    from tfllm.data import load_dataset
    from tfllm.generation import text_to_text
    from tfllm.metrics.generation import lead3_rouge, rouge

    train = load_dataset("samsum", "train")
    val = load_dataset("samsum", "validation")
    if args.train_limit:
        train = train.iloc[: args.train_limit]
    if args.val_limit:
        val = val.iloc[: args.val_limit]
    config = text_to_text.TextToTextConfig(
        model=args.model, vocabulary_size=args.vocabulary_size,
        max_source_length=args.max_source_length, max_target_length=args.max_target_length,
        hidden_dim=args.hidden_dim, num_layers=args.num_layers, num_heads=4,
        intermediate_dim=args.intermediate_dim, dropout=0.1, epochs=args.epochs,
        batch_size=args.batch_size, learning_rate=args.learning_rate, patience=2, verbose=2,
    )
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    # Keras progress goes to stdout; keep stdout for the one JSON line.
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(sys.stderr):
        trained = text_to_text.train(
            config, train.dialogue, train.summary, val.dialogue, val.summary,
            run_dir=cli.prepare_run_dir(tmp), log=log,
        )
        decoding = {"strategy": args.decoding}
        if args.decoding == "beam":
            decoding["num_beams"] = args.num_beams
        started = time.perf_counter()
        predictions = text_to_text.generate_texts(
            trained.model, trained.tokenizer, list(val.dialogue), batch_size=64, **decoding
        )
        generate_seconds = time.perf_counter() - started
    scores = rouge(val.summary, predictions)
    lead3 = lead3_rouge(val.dialogue, val.summary)
    print(json.dumps({
        "rouge1": round(100 * scores["rouge1"], 2),
        "rouge2": round(100 * scores["rouge2"], 2),
        "rougeL": round(100 * scores["rougeL"], 2),
        "lead3_rouge1": round(100 * lead3["rouge1"], 2),
        "lead3_rouge2": round(100 * lead3["rouge2"], 2),
        "lead3_rougeL": round(100 * lead3["rougeL"], 2),
        "beats_lead3_rouge1": scores["rouge1"] > lead3["rouge1"],
        "train_seconds": round(trained.train_seconds, 1),
        "epochs_run": len(trained.history.get("loss", [])),
        "best_val_loss": round(min(trained.history.get("val_loss", [float("nan")])), 4),
        "generate_seconds": round(generate_seconds, 1),
        "train_examples": len(train),
        "val_examples": len(val),
        "split": "validation",
        "decoding": decoding,
        "config": {k: v for k, v in vars(config).items() if k != "verbose"},
        "examples": [{"reference": r, "generated": p} for r, p in list(zip(val.summary, predictions))[:3]],
        "load_average": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()

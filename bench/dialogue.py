"""DailyDialog response generation from scratch: perplexity, BLEU-1/2, distinct-1/2.

    TFLLM_DATA_DIR=../shared/data python bench/dialogue.py [--epochs 3] [--train-limit N]

Trains the dialogue app's Transformer on DailyDialog train pairs (one turn of
context, `$TFLLM_DATA_DIR/dailydialog`), then prints ONE JSON line with
validation perplexity (teacher forced, end token included), BLEU-1/2 (NLTK
sentence BLEU, smoothing method 1, averaged) and distinct-1/2 of greedy
responses, plus the same BLEU for a constant "i don't know ." baseline and the
training time.
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
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-limit", type=int, help="train on the first N pairs")
    parser.add_argument("--val-limit", type=int, default=2000, help="score the first N validation pairs")
    parser.add_argument("--model", default="transformer", choices=("transformer", "lstm"))
    parser.add_argument("--hidden-dim", type=int, default=128)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--intermediate-dim", type=int, default=512)
    parser.add_argument("--vocabulary-size", type=int, default=8000)
    parser.add_argument("--max-source-length", type=int, default=48)
    parser.add_argument("--max-target-length", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    args = parser.parse_args(argv)

    os.environ.setdefault("TFLLM_DATA_DIR", os.path.join(ROOT, "..", "shared", "data"))
    from tfllm import cli
    from tfllm.data import load_dataset
    from tfllm.generation import text_to_text
    from tfllm.metrics.generation import BLEU_SMOOTHING, bleu, distinct_n

    train = load_dataset("dailydialog", "train")
    val = load_dataset("dailydialog", "validation")
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
            config, train.context, train.response, val.context, val.response,
            run_dir=cli.prepare_run_dir(tmp), log=log,
        )
        model, tokenizer = trained.model, trained.tokenizer
        ppl = text_to_text.model_perplexity(model, tokenizer, val.context, val.response)
        started = time.perf_counter()
        predictions = text_to_text.generate_texts(model, tokenizer, list(val.context), batch_size=128)
        generate_seconds = time.perf_counter() - started
    references = list(val.response)
    constant = ["i don't know ."] * len(references)
    print(json.dumps({
        "perplexity": round(ppl, 2),
        "bleu1": round(bleu(references, predictions, 1), 4),
        "bleu2": round(bleu(references, predictions, 2), 4),
        "distinct1": round(distinct_n(predictions, 1), 4),
        "distinct2": round(distinct_n(predictions, 2), 4),
        "constant_reply_bleu1": round(bleu(references, constant, 1), 4),
        "constant_reply_bleu2": round(bleu(references, constant, 2), 4),
        "bleu_smoothing": BLEU_SMOOTHING,
        "train_seconds": round(trained.train_seconds, 1),
        "epochs_run": len(trained.history.get("loss", [])),
        "generate_seconds": round(generate_seconds, 1),
        "train_examples": len(train),
        "val_examples": len(val),
        "split": "validation",
        "decoding": {"strategy": "greedy"},
        "config": {k: v for k, v in vars(config).items() if k != "verbose"},
        "examples": [
            {"context": c, "reference": r, "generated": p}
            for c, r, p in list(zip(val.context, references, predictions))[:3]
        ],
        "load_average": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()

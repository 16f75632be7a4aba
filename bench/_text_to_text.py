"""What the dialogue and summarization benchmarks share: options, data, config, training."""

import argparse
import contextlib
import json
import os
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TFLLM_DATA_DIR", os.path.join(ROOT, "..", "shared", "data"))


def app_task(name):
    """The `TextToTextTask` that `apps/<name>.py` declares (its defaults are the benchmark's)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"{name}_app", os.path.join(ROOT, "apps", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TASK


def make_parser(doc, *, config, val_limit):
    """The model and data options both benchmarks take; defaults are the app's `train` defaults (`config`)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=config.epochs)
    parser.add_argument("--train-limit", type=int, help="train on the first N pairs")
    parser.add_argument("--val-limit", type=int, default=val_limit, help="score the first N validation pairs")
    parser.add_argument("--model", default=config.model, choices=("transformer", "lstm"))
    parser.add_argument("--hidden-dim", type=int, default=config.hidden_dim)
    parser.add_argument("--num-layers", type=int, default=config.num_layers)
    parser.add_argument("--intermediate-dim", type=int, default=config.intermediate_dim)
    parser.add_argument("--vocabulary-size", type=int, default=config.vocabulary_size)
    parser.add_argument("--max-source-length", type=int, default=config.max_source_length)
    parser.add_argument("--max-target-length", type=int, default=config.max_target_length)
    parser.add_argument("--batch-size", type=int, default=config.batch_size)
    parser.add_argument("--learning-rate", type=float, default=config.learning_rate)
    parser.add_argument("--patience", type=int, default=config.patience, help="early stopping patience (epochs)")
    parser.add_argument(
        "--reduce-lr-patience", type=int, default=config.reduce_lr_patience,
        help="epochs without a lower validation loss before the learning rate is divided by 5 (0: never)",
    )
    parser.add_argument(
        "--run-dir", help="keep checkpoints and the trained model here; an interrupted run started "
        "again with the same directory resumes, a finished one is scored again without training "
        "(default: a temporary directory)",
    )
    return parser


def add_decoding_arguments(parser, default, task):
    """Options choosing the decodings a benchmark scores; the first is the headline.

    The repetition control defaults to the app's (`task`), so the benchmark
    scores what `predict` and the export return without flags.
    """
    parser.add_argument(
        "--decoding", nargs="+", default=list(default), choices=("greedy", "beam", "top_p"),
        help="decoding strategies to score; the first one's scores are the headline",
    )
    parser.add_argument("--num-beams", type=int, default=4)
    parser.add_argument("--length-penalty", type=float, help="beam scores divided by length**this (default: the sampler's)")
    parser.add_argument("--top-p", type=float, default=0.9, help="p for --decoding top_p (seeded)")
    parser.add_argument("--no-repeat-ngram-size", type=int, default=task.no_repeat_ngram_size,
                        help="never repeat an n-gram of this size (0: off; default: the app's)")
    parser.add_argument("--repetition-penalty", type=float, default=task.repetition_penalty,
                        help="divide the logits of generated tokens by this (1: off; default: the app's)")


def generate_all(trained, texts, args, batch_size):
    """`[(decoding options, generated texts, seconds)]` for each of `args.decoding`."""
    import time

    from tfllm.tasks import text_generator

    results = []
    for strategy in args.decoding:
        decoding = {"strategy": strategy}
        if strategy == "beam":
            decoding["num_beams"] = args.num_beams
            if args.length_penalty is not None:
                decoding["length_penalty"] = args.length_penalty
        elif strategy == "top_p":
            decoding.update(p=args.top_p, seed=0)
        if args.no_repeat_ngram_size:
            decoding["no_repeat_ngram_size"] = args.no_repeat_ngram_size
        if args.repetition_penalty != 1.0:
            decoding["repetition_penalty"] = args.repetition_penalty
        started = time.perf_counter()
        predictions = text_generator.generate_texts(
            trained.model, trained.tokenizer, list(texts), batch_size=batch_size, **decoding
        )
        results.append((decoding, predictions, time.perf_counter() - started))
    return results


def load_splits(name, args):
    """`(train, validation)` frames of data set `name`, cut to --train-limit / --val-limit."""
    from tfllm.data import load_dataset

    train, val = load_dataset(name, "train"), load_dataset(name, "validation")
    if args.train_limit:
        train = train.iloc[: args.train_limit]
    if args.val_limit:
        val = val.iloc[: args.val_limit]
    return train, val


def config_from_args(args, config):
    """The app's `config` with the model and training options of the command line."""
    import dataclasses

    return dataclasses.replace(
        config, model=args.model, vocabulary_size=args.vocabulary_size,
        max_source_length=args.max_source_length, max_target_length=args.max_target_length,
        hidden_dim=args.hidden_dim, num_layers=args.num_layers,
        intermediate_dim=args.intermediate_dim, epochs=args.epochs,
        batch_size=args.batch_size, learning_rate=args.learning_rate, patience=args.patience,
        reduce_lr_patience=args.reduce_lr_patience, verbose=2,
    )


@contextlib.contextmanager
def training(config, sources, targets, val_sources, val_targets, run_dir=None):
    """Trains `config` and yields the result, with Keras progress on stderr.

    Stdout stays free for the benchmark's one JSON line; generation inside the
    block is kept off stdout too. `run_dir` (default: a temporary directory)
    keeps the run; training there again resumes it, and a finished run (a
    saved model and no backup) is loaded instead of trained again.
    """
    from tfllm.tasks import text_to_text
    from tfllm.training import runs

    def log(message):
        print(message, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(sys.stderr):
        run = runs.prepare_run_dir(run_dir or tmp)
        if os.path.isfile(run.file("model.keras")) and not run.resuming:
            log(f"{run.path}: scoring the finished run's model (no training)")
            model, tokenizer, vocabulary = text_to_text.load_run(run)
            with open(run.history, encoding="utf-8") as f:
                history = json.load(f)
            yield text_to_text.TrainedTextToText(model, tokenizer, vocabulary, history, None, run)
            return
        yield text_to_text.train(
            config, sources, targets, val_sources, val_targets,
            run_dir=run, log=log,
        )


def _run_config(trained, config):
    """The settings the model was trained with: the saved ones for a reused run."""
    if trained.train_seconds is None:
        with open(trained.run_dir.file("config.json"), encoding="utf-8") as f:
            return json.load(f)
    return vars(config)


def common_fields(trained, config, train, val, generate_seconds):
    """The record fields both benchmarks report."""
    return {
        "train_seconds": None if trained.train_seconds is None else round(trained.train_seconds, 1),
        "reused_run": trained.train_seconds is None,
        "epochs_run": len(trained.history.get("loss", [])),
        "best_val_loss": round(min(trained.history.get("val_loss", [float("nan")])), 4),
        "generate_seconds": round(generate_seconds, 1),
        "train_examples": len(train),
        "val_examples": len(val),
        "split": "validation",
        "config": {k: v for k, v in _run_config(trained, config).items() if k != "verbose"},
    }

"""Sentiment benchmark: the app's training pipeline on IMDB and SST-2 against a linear baseline.

For each data set it trains the app's model exactly as `apps/sentiment.py
train` does (WordPiece tokenization in tf.data, early stopping on validation
loss, export), scores it on the held-out split, and measures in the same run
the classic baseline: TF-IDF over word unigrams + bigrams with logistic
regression (scikit-learn, the `bench` extra). Prints one JSON line per data set.

- imdb: `imdb/train.csv`, 20,000 reviews to train on, the other 5,000
  (stratified, seed 0) to validate and report on.
- sst2: `sst2/train.tsv` to train on (5% held out for early stopping), the
  GLUE `dev.tsv` (872 sentences) to report on.

Data come from $TFLLM_DATA_DIR (default: ../shared/data from the repository
root). Timings depend on the machine's load; the JSON records the load.

    python bench/sentiment.py [--dataset imdb|sst2|all] [--model fasttext] [--epochs N]
"""

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA_DIR = os.path.join(REPO_ROOT, "..", "shared", "data")


def _load_app():
    import importlib.util

    spec = importlib.util.spec_from_file_location("sentiment_app", os.path.join(REPO_ROOT, "apps", "sentiment.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def baseline(train_frame, eval_frame):
    """TF-IDF word 1-2-grams + logistic regression; returns accuracy, macro F1, seconds."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from tfllm.metrics.classification import classification_report

    started = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    features = vectorizer.fit_transform(train_frame.text)
    classifier = LogisticRegression(C=4.0, max_iter=1000).fit(features, train_frame.label.astype(str))
    predicted = classifier.predict(vectorizer.transform(eval_frame.text))
    seconds = time.perf_counter() - started
    labels = sorted(set(train_frame.label.astype(str)))
    ids = {label: index for index, label in enumerate(labels)}
    report = classification_report(
        [ids[str(label)] for label in eval_frame.label], [ids[label] for label in predicted], labels=labels
    )
    return {
        "name": "tfidf_word_1-2gram_logreg",
        "accuracy": round(report["accuracy"], 4),
        "macro_f1": round(report["macro_f1"], 4),
        "seconds": round(seconds, 1),
    }


def time_budget(seconds):
    """A callback that stops training once `seconds` of training have passed (checked per batch)."""
    import keras

    class TimeBudget(keras.callbacks.Callback):
        stopped_early = False

        def on_train_begin(self, logs=None):
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if time.perf_counter() - self.started > seconds:
                self.model.stop_training = True
                self.stopped_early = True

    return TimeBudget()


def run(name, args, app, data_dir):
    from tfllm import data
    from tfllm.metrics.classification import classification_report

    if name == "imdb":
        frame = data.load_dataset("imdb", "train", data_dir=data_dir)
        train_frame, eval_frame = data.train_val_split(frame, 0.2, seed=0)
        stop_frame = eval_frame
    else:
        train_all = data.load_dataset("sst2", "train", data_dir=data_dir)
        eval_frame = data.load_dataset("sst2", "validation", data_dir=data_dir)
        train_frame, stop_frame = data.train_val_split(train_all, 0.05, seed=0)

    workdir = tempfile.mkdtemp(prefix=f"bench-sentiment-{name}-")
    config = app.TASK.config(
        dataset=name,
        data_dir=data_dir,  # Pre-training texts come from here too.
        model=args.model,
        epochs=args.epochs,
        max_length=args.max_length,
        seed=0,
        export_dir=os.path.join(workdir, "export"),
        run_dir=os.path.join(workdir, "run"),
        verbose=2,
    )
    if args.batch_size:
        config.batch_size = args.batch_size
    config.learning_rate = args.learning_rate
    config.model_options = {key: json.loads(value) for key, value in (o.split("=", 1) for o in args.option)}
    config.pretrain_dataset, config.pretrain_epochs = args.pretrain, args.pretrain_epochs
    budget = time_budget(args.time_budget)
    # Keras' progress lines go to stdout; keep stdout for the one JSON line.
    with contextlib.redirect_stdout(sys.stderr):
        result = app.TASK.train(
            config, frames=(train_frame, stop_frame), callbacks=[budget], log=lambda m: print(m, file=sys.stderr)
        )
    export = result.pop("export")
    if stop_frame is eval_frame:
        report = {"accuracy": result["val_accuracy"], "macro_f1": result["val_macro_f1"]}
    else:
        labels = result["labels"]
        from tfllm.tasks.classifier_export import predict_outputs

        _, predicted = predict_outputs(export, eval_frame.text.tolist())
        truth = data.LabelVocabulary(labels).encode(eval_frame.label)
        report = classification_report(truth, predicted, labels=labels)
    shutil.rmtree(workdir, ignore_errors=True)
    reference = baseline(train_frame, eval_frame)
    return {
        "bench": "sentiment",
        "dataset": name,
        "model": args.model,
        "options": {"batch_size": config.batch_size, "learning_rate": args.learning_rate, **config.model_options},
        "pretrain": {"texts": f"{args.pretrain} train split", "epochs": args.pretrain_epochs} if args.pretrain else None,
        "train_examples": len(train_frame),
        "eval_examples": len(eval_frame),
        "eval_split": "imdb train.csv 5k held out (seed 0)" if name == "imdb" else "sst2 dev.tsv",
        "accuracy": round(report["accuracy"], 4),
        "macro_f1": round(report["macro_f1"], 4),
        "epochs_run": result["epochs_run"],
        "time_budget_hit": budget.stopped_early,
        "train_seconds": result["train_seconds"],
        "pretrain_seconds": result["pretrain_seconds"],
        "train_examples_per_second": result["train_examples_per_second"],
        "baseline": reference,
        "accuracy_vs_baseline": round(report["accuracy"] / reference["accuracy"], 4),
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("imdb", "sst2", "all"), default="all")
    parser.add_argument("--model", default="fasttext")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--max-length", type=int, default=None)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE",
        help="model option passed to build_classifier (e.g. ngram_order=3); repeatable",
    )
    parser.add_argument(
        "--pretrain", choices=("imdb", "sst2"),
        help="pre-train word vectors on this data set's train texts (labels unused) plus the training texts",
    )
    parser.add_argument("--pretrain-epochs", type=int, default=2)
    parser.add_argument("--time-budget", type=float, default=15 * 60, help="seconds of training at most")
    args = parser.parse_args(argv)
    data_dir = os.environ.get("TFLLM_DATA_DIR", DEFAULT_DATA_DIR)
    if not os.path.isdir(data_dir):
        print(f"bench/sentiment.py: no data directory {data_dir} (set TFLLM_DATA_DIR)", file=sys.stderr)
        return 2
    app = _load_app()
    for name in ("imdb", "sst2") if args.dataset == "all" else (args.dataset,):
        print(json.dumps(run(name, args, app, data_dir)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

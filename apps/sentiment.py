"""Sentiment classification from a text table to a TF Serving SavedModel.

    python apps/sentiment.py                        # demo on the built-in sample
    python apps/sentiment.py train --data reviews.csv [--model fasttext|lstm|bilstm|transformer]
    python apps/sentiment.py evaluate --model-dir saved_models/sentiment --data test.csv
    python apps/sentiment.py predict --model-dir saved_models/sentiment "great film" "dull plot"

Training tokenizes with a WordPiece vocabulary built on the training split
(inside tf.data, bucketed by length), trains on int ids with early stopping
on validation loss, and exports tokenizer + model + label names as one
SavedModel that takes raw strings. Relative paths are relative to the current
directory (the repository root under `make run`). See docs/sentiment.md.
"""

import dataclasses
import logging
import os
import sys
import time

from tfllm import cli  # light: TensorFlow is imported only by the commands

logger = logging.getLogger("tfllm.apps.sentiment")

APP = "sentiment"
MODEL_KINDS = ("fasttext", "lstm", "bilstm", "transformer")  # == tfllm.models.classifier.KINDS
DEFAULT_MODEL = "fasttext"
DATASETS = ("imdb", "sst2")
# The longest inputs each kind trains on by default: the bag of n-grams costs
# little per token, so it reads whole reviews; attention and recurrence cost more.
DEFAULT_MAX_LENGTH = {"fasttext": 1024, "lstm": 256, "bilstm": 256, "transformer": 256}
DEMO_TEXTS = (
    "An absolute delight from start to finish, I loved every minute.",
    "The battery died after two days and support never answered.",
    "The package arrived on Tuesday.",
    "Not bad at all, better than I expected.",
)


@dataclasses.dataclass
class TrainConfig:
    """Settings of one training run (the `train` subcommand's options)."""

    data: str = None  # a table file; None with dataset None means the built-in sample
    dataset: str = None  # "imdb" or "sst2" (from $TFLLM_DATA_DIR, else downloaded)
    data_dir: str = None  # where to look for --dataset first (default: $TFLLM_DATA_DIR)
    encoding: str = "utf-8"
    text_column: str = "text"
    label_column: str = "label"
    model: str = DEFAULT_MODEL
    epochs: int = 10
    batch_size: int = 32
    max_length: int = None  # None: DEFAULT_MAX_LENGTH[model]
    vocabulary_size: int = 16000
    learning_rate: float = None  # None: the kind's default
    val_fraction: float = 0.2
    patience: int = 2
    class_weights: bool = True
    seed: int = 0
    export_dir: str = os.path.join("saved_models", APP)
    run_dir: str = os.path.join("runs", APP)
    export: bool = True
    verbose: str = "auto"
    model_options: dict = dataclasses.field(default_factory=dict)  # build_classifier(**options)
    # Pre-training on unlabeled text: word vectors (skip-gram) learned on the
    # training texts plus these texts initialise the model's token embedding.
    pretrain_data: str = None  # a table file with a text column (labels ignored)
    pretrain_dataset: str = None  # or a public data set's train texts ("imdb", "sst2")
    pretrain_epochs: int = 2

    def resolved_max_length(self):
        return self.max_length or DEFAULT_MAX_LENGTH[self.model]


# ---------------------------------------------------------------------------
# Command line.


def build_parser():
    parser = cli.ArgumentParser(
        prog=APP,
        description="Train, evaluate and serve sentiment classifiers. Without a command: "
        "a demo that trains on the built-in sample and exports a model.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser("demo", help="train on the built-in sample, export, predict (the default)")
    _add_train_options(demo, demo=True)

    train = commands.add_parser("train", help="train on a table or a public data set and export")
    _add_train_options(train, demo=False)

    evaluate = commands.add_parser("evaluate", help="score an exported model on a labelled table")
    cli.add_model_dir_argument(evaluate)
    cli.add_data_arguments(evaluate, required=True)
    evaluate.add_argument("--batch-size", type=cli.positive_int, default=256, help="texts per call (default: %(default)s)")

    predict = commands.add_parser("predict", help="label texts with an exported model")
    cli.add_model_dir_argument(predict)
    predict.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify")
    cli.add_data_arguments(predict, label_column=None)
    predict.add_argument("--batch-size", type=cli.positive_int, default=256, help="texts per call (default: %(default)s)")
    return parser


# The demo's sample is small (561 training texts): smaller batches give the
# model enough steps per epoch, and early stopping ends it long before 30.
DEMO_DEFAULTS = {"epochs": 30, "batch_size": 16}


def _add_train_options(parser, demo):
    defaults = TrainConfig(**DEMO_DEFAULTS) if demo else TrainConfig()
    if not demo:
        cli.add_data_arguments(parser)
        parser.add_argument("--dataset", choices=DATASETS, help="a public data set instead of --data ($TFLLM_DATA_DIR)")
        parser.add_argument("--data-dir", metavar="DIR", help="directory holding the --dataset folder (default: $TFLLM_DATA_DIR)")
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, metavar="KIND",
        help=f"one of {', '.join(MODEL_KINDS)} (default: %(default)s)",
    )
    parser.add_argument("--epochs", type=cli.positive_int, default=defaults.epochs, help="most epochs; early stopping may end sooner (default: %(default)s)")
    parser.add_argument("--batch-size", type=cli.positive_int, default=defaults.batch_size, help="examples per replica and step (default: %(default)s)")
    parser.add_argument("--max-length", type=cli.positive_int, default=None, help="truncate texts to this many tokens (default: per model kind)")
    parser.add_argument("--vocabulary-size", type=cli.positive_int, default=defaults.vocabulary_size, help="WordPiece vocabulary size (default: %(default)s)")
    parser.add_argument("--learning-rate", type=cli.positive_float, default=None, help="Adam learning rate (default: per model kind)")
    parser.add_argument("--val-fraction", type=cli.fraction, default=defaults.val_fraction, help="share of rows held out for validation (default: %(default)s)")
    parser.add_argument("--patience", type=cli.non_negative_int, default=defaults.patience, help="epochs without a lower validation loss before stopping (default: %(default)s)")
    parser.add_argument("--no-class-weights", dest="class_weights", action="store_false", help="do not weight classes by inverse frequency")
    if not demo:
        pretrain = parser.add_argument_group("pre-training on unlabeled text (word vectors for the token embedding)")
        pretrain.add_argument("--pretrain-data", metavar="PATH", help="a table of unlabeled texts (its --text-column; labels ignored)")
        pretrain.add_argument("--pretrain-dataset", choices=DATASETS, help="the texts of a public data set's train split ($TFLLM_DATA_DIR)")
        pretrain.add_argument("--pretrain-epochs", type=cli.positive_int, default=defaults.pretrain_epochs, help="skip-gram passes over the texts (default: %(default)s)")
    cli.add_seed_argument(parser)
    cli.add_export_argument(parser, defaults.export_dir)
    cli.add_run_dir_argument(parser, defaults.run_dir)
    from tfllm.training.arguments import add_training_arguments

    add_training_arguments(parser)


def main(argv=None):
    """Runs the command line; returns the exit code (2 for bad input)."""
    return cli.run(_dispatch, list(sys.argv[1:] if argv is None else argv), prog=APP)


def _dispatch(argv):
    # No command means the demo; its options may still be given
    # (`sentiment.py --model transformer`).
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["demo", *argv]
    args = build_parser().parse_args(argv)
    command = args.command
    if command in ("demo", "train"):
        return _train_command(args, demo=command == "demo")
    if command == "evaluate":
        return _evaluate_command(args)
    return _predict_command(args)


def _config_from_args(args, demo):
    if args.model not in MODEL_KINDS:
        raise cli.UsageError(f"unknown model {args.model!r}; expected one of {', '.join(MODEL_KINDS)}")
    config = TrainConfig(
        model=args.model,
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_length=args.max_length,
        vocabulary_size=args.vocabulary_size,
        learning_rate=args.learning_rate,
        val_fraction=args.val_fraction,
        patience=args.patience,
        class_weights=args.class_weights,
        seed=args.seed,
        export_dir=args.export_dir,
        run_dir=args.run_dir,
    )
    if not demo:
        if args.data and args.dataset:
            raise cli.UsageError("give either --data or --dataset, not both")
        if not args.data and not args.dataset:
            raise cli.UsageError("train needs --data PATH or --dataset NAME (run without a command for the demo)")
        config.data, config.dataset, config.data_dir = args.data, args.dataset, args.data_dir
        config.encoding = args.encoding
        config.text_column, config.label_column = args.text_column, args.label_column
        if args.pretrain_data and args.pretrain_dataset:
            raise cli.UsageError("give either --pretrain-data or --pretrain-dataset, not both")
        config.pretrain_data, config.pretrain_dataset = args.pretrain_data, args.pretrain_dataset
        config.pretrain_epochs = args.pretrain_epochs
    return config


# ---------------------------------------------------------------------------
# Training.


def load_training_frame(config):
    """Returns `(frame with text/label columns, source description)`."""
    from tfllm import data

    if config.data:
        frame = data.load_table(config.data, config.text_column, config.label_column, encoding=config.encoding)
        return frame, config.data
    if config.dataset:
        return data.load_dataset(config.dataset, "train", data_dir=config.data_dir), f"{config.dataset} train split"
    return data.load_sample("sentiment"), "built-in sentiment sample"


def load_pretraining_texts(config):
    """The unlabeled texts `--pretrain-data` / `--pretrain-dataset` name (a Series), or None."""
    from tfllm import data

    if config.pretrain_data:
        return data.load_table(
            config.pretrain_data, config.text_column, None, encoding=config.encoding, drop_empty=True
        ).text
    if config.pretrain_dataset:
        return data.load_dataset(config.pretrain_dataset, "train", data_dir=config.data_dir).text
    return None


def pretraining_corpus(train_texts, val_texts, unlabeled):
    """Training texts plus the unlabeled ones that are neither training nor validation texts.

    `--pretrain-dataset imdb` on IMDB itself would otherwise learn vectors
    from the validation texts and count every training text twice.
    """
    import pandas as pd

    known = set(train_texts) | set(val_texts)
    return pd.concat([train_texts, unlabeled[~unlabeled.isin(known)]], ignore_index=True)


def pretrain_token_vectors(config, tokenizer, vocabulary, texts, log=print):
    """Skip-gram word vectors for `vocabulary` learned on `texts`, sized for the model."""
    import tensorflow as tf

    from tfllm.models.classifier import DEFAULTS
    from tfllm.text import RESERVED_TOKENS, train_word_vectors

    dim = config.model_options.get("embedding_dim", DEFAULTS[config.model]["embedding_dim"])
    ids = []
    for start in range(0, len(texts), 1024):
        batch = tokenizer(tf.constant(list(texts[start : start + 1024])))
        ids.extend(batch.to_list() if hasattr(batch, "to_list") else batch)
    log(f"pre-training {dim}-d word vectors on {len(texts)} texts ({sum(map(len, ids))} tokens)")
    return train_word_vectors(
        ids, len(vocabulary), dim, epochs=config.pretrain_epochs, seed=config.seed, log=log,
        skip_ids=[vocabulary.index(token) for token in RESERVED_TOKENS if token in vocabulary],
    )


def class_weight_table(label_ids, num_classes):
    """Inverse-frequency ("balanced") weights: n / (classes * count), 1.0 for absent classes."""
    import numpy as np

    counts = np.bincount(label_ids, minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, len(label_ids) / (num_classes * np.maximum(counts, 1)), 1.0)
    return weights.astype(np.float32)


def _with_class_weights(dataset, weights):
    import tensorflow as tf

    table = tf.constant(weights)

    @tf.autograph.experimental.do_not_convert
    def add_weight(ids, label):
        return ids, label, tf.gather(table, label)

    return dataset.map(add_weight)


# Word-piece counts settle long before this many characters (about 2M words);
# counting more costs minutes on large corpora and changes little.
VOCABULARY_SAMPLE_CHARS = 10_000_000


def vocabulary_sample(texts, seed=0, max_chars=VOCABULARY_SAMPLE_CHARS):
    """A seeded random subset of `texts` (a Series) of at most `max_chars` characters (at least one text)."""
    shuffled = texts.sample(frac=1.0, random_state=seed)
    keep = shuffled.str.len().cumsum() <= max_chars
    keep.iloc[0] = True
    return shuffled[keep]


def _tokenizer(config, run_dir, train_texts):
    """The WordPiece tokenizer: rebuilt from the run directory when resuming."""
    from tfllm import text

    path = run_dir.file("vocabulary.txt")
    if run_dir.resuming and os.path.exists(path):
        vocabulary = text.load_vocabulary(path)
        logger.info("Resuming: reusing %s", path)
    else:
        vocabulary = text.build_wordpiece_vocabulary(
            vocabulary_sample(train_texts, seed=config.seed), vocabulary_size=config.vocabulary_size
        )
        text.save_vocabulary(vocabulary, path)
    return text.make_wordpiece_tokenizer(vocabulary), vocabulary


def train(config, strategy=None, *, frames=None, callbacks=(), log=print):
    """Trains, evaluates on the validation split and exports; returns the result record.

    Args:
        config: a `TrainConfig`.
        strategy: a `tf.distribute` strategy (default: the current one).
        frames: optional `(train, validation)` DataFrames with "text" and
            "label" columns, used instead of loading and splitting
            `config.data`.
        callbacks: extra Keras callbacks for `fit`.
        log: where progress lines go (stderr by default in the CLI).

    Returns:
        A dict: metrics on the validation split, timings, the export path (or
        None), the run directory; plus `"export"`: the in-memory
        `ClassifierExport` (removed before printing).
    """
    import keras
    import pandas as pd
    import tensorflow as tf

    from tfllm import data
    from tfllm.metrics.classification import classification_report
    from tfllm.models.classifier import ClassifierExport, build_classifier, make_optimizer, set_token_vectors
    from tfllm.serving.export import export_saved_model
    from tfllm.training import fit, global_batch_size, is_chief

    strategy = strategy or tf.distribute.get_strategy()
    keras.utils.set_random_seed(config.seed)
    if frames is None:
        frame, source = load_training_frame(config)
        train_frame, val_frame = data.train_val_split(frame, config.val_fraction, seed=config.seed)
    else:
        train_frame, val_frame = frames
        source = config.data or config.dataset or "given frames"
    unlabeled = load_pretraining_texts(config)
    labels = data.LabelVocabulary.from_labels(train_frame.label)
    if len(labels) < 2:
        raise data.DataError(f"need at least 2 distinct labels to train, found {labels.labels}", path=source)
    y_train = labels.encode(train_frame.label, source=source)
    y_val = labels.encode(val_frame.label, source=source)
    log(
        f"{source}: {len(train_frame) + len(val_frame)} examples, labels {labels.labels}; "
        f"{len(train_frame)} train / {len(val_frame)} validation"
    )

    run_dir = cli.prepare_run_dir(config.run_dir)
    labels.save(run_dir.file("labels.txt"))
    corpus = train_frame.text if unlabeled is None else pretraining_corpus(train_frame.text, val_frame.text, unlabeled)
    tokenizer, vocabulary = _tokenizer(config, run_dir, corpus)
    vectors, pretrain_seconds = None, 0.0
    if unlabeled is not None and not run_dir.resuming:  # A resumed run restores its weights.
        started = time.perf_counter()
        vectors = pretrain_token_vectors(config, tokenizer, vocabulary, corpus, log=log)
        pretrain_seconds = time.perf_counter() - started
    max_length = config.resolved_max_length()
    batch_size = global_batch_size(config.batch_size, strategy)
    train_data = data.make_dataset(
        train_frame.text, y_train, tokenizer=tokenizer, batch_size=batch_size, max_length=max_length, seed=config.seed
    )
    val_data = data.make_dataset(
        val_frame.text, y_val, tokenizer=tokenizer, batch_size=batch_size, max_length=max_length, shuffle=False
    )
    weights = class_weight_table(y_train, len(labels))
    if config.class_weights:
        train_data = _with_class_weights(train_data, weights)

    with strategy.scope():
        model = build_classifier(config.model, len(vocabulary), len(labels), max_length, **config.model_options)
        if vectors is not None:
            set_token_vectors(model, vectors)
        model.compile(
            optimizer=make_optimizer(config.model, config.learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
    callbacks = [*callbacks, *cli.run_callbacks(run_dir, config.patience)]
    started = time.perf_counter()
    history = fit(
        model,
        train_data,
        validation_data=val_data,
        epochs=config.epochs,
        callbacks=callbacks,
        strategy=strategy,
        backup_dir=run_dir.backup,
        verbose=config.verbose,
    )
    train_seconds = time.perf_counter() - started
    cli.save_history(history, run_dir.history)
    if history.history:
        cli.plot_history(history, run_dir.curves, title=f"{config.model} on {source}")

    metadata = {
        "app": APP,
        "model": config.model,
        "max_length": max_length,
        "vocabulary_size": len(vocabulary),
        "trained_on": source,
        "examples": len(train_frame),
    }
    export = ClassifierExport(tokenizer, model, labels.labels, max_length=max_length, metadata=metadata)
    predicted = predict_label_ids(export, val_frame.text.tolist())
    report = classification_report(y_val, predicted, labels=labels.labels)
    export_path = None
    if config.export and is_chief(strategy):
        export_path = export_saved_model(
            export, config.export_dir, export.signatures(), warmup_inputs={"text": list(DEMO_TEXTS[:2])}
        )
    epochs_run = len(history.history.get("loss", []))
    val_losses = history.history.get("val_loss") or [float("nan")]
    return {
        "command": "train",
        "model": config.model,
        "data": source,
        "labels": labels.labels,
        "train_examples": len(train_frame),
        "val_examples": len(val_frame),
        "epochs_run": epochs_run,
        "batch_size": batch_size,
        "best_val_loss": min(val_losses),
        "val_accuracy": report["accuracy"],
        "val_macro_f1": report["macro_f1"],
        "val_per_class": report["per_class"],
        "train_seconds": round(train_seconds, 2),
        "pretrain_seconds": round(pretrain_seconds, 2),
        "train_examples_per_second": round(epochs_run * len(train_frame) / max(train_seconds, 1e-9), 1),
        "class_weights": dict(zip(labels.labels, weights.round(4).tolist())) if config.class_weights else None,
        "export_path": export_path,
        "run_dir": run_dir.path,
        "export": export,
    }


def predict_label_ids(predictor, texts, batch_size=256):
    """Runs a serving callable (`ClassifierExport` or loaded signature) over texts; returns label ids."""
    return predict_outputs(predictor, texts, batch_size)[1]


def predict_outputs(predictor, texts, batch_size=256):
    """Returns `(probabilities (n, classes), label_ids (n,))` as NumPy arrays."""
    import numpy as np
    import tensorflow as tf

    from tfllm.serving import signatures

    probabilities, label_ids = [], []
    for start in range(0, len(texts), batch_size):
        batch = tf.constant(texts[start : start + batch_size], dtype=tf.string)
        outputs = predictor(**{signatures.TEXT: batch}) if _is_signature(predictor) else predictor(batch)
        probabilities.append(outputs[signatures.PROBABILITIES].numpy())
        label_ids.append(outputs[signatures.LABEL_ID].numpy())
    if not probabilities:
        return np.zeros((0, 0), np.float32), np.zeros((0,), np.int64)
    return np.concatenate(probabilities), np.concatenate(label_ids)


def _is_signature(predictor):
    return hasattr(predictor, "structured_input_signature")


def _train_command(args, demo):
    config = _config_from_args(args, demo)
    from tfllm.training import configure_from_args

    strategy = configure_from_args(args)
    result = train(config, strategy, log=_log)
    export = result.pop("export")
    if demo:
        result["command"] = "demo"
        probabilities, label_ids = predict_outputs(export, list(DEMO_TEXTS))
        labels = result["labels"]
        for text, row, label_id in zip(DEMO_TEXTS, probabilities, label_ids):
            _log(f"  {labels[label_id]:>10s} {row[label_id]:.2f}  {text}")
    _log(f"training curves: {os.path.join(result['run_dir'], 'curves.png')}")
    if result["export_path"]:
        _log(f"exported: {result['export_path']}")
    cli.print_json(result)
    return 0


# ---------------------------------------------------------------------------
# Evaluate and predict with an exported model.


def load_exported(model_dir):
    """Loads an exported classifier: `(serving signature, labels, metadata, path)`.

    Raises:
        ExportError: no SavedModel at `model_dir`, or not a tfllm classifier.
    """
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the WordPiece ops the graph uses)

    from tfllm.models.classifier import read_export_metadata
    from tfllm.serving import signatures
    from tfllm.serving.export import ExportError, resolve_model_dir

    path = resolve_model_dir(model_dir)
    try:
        loaded = tf.saved_model.load(path)
    except (OSError, ValueError, tf.errors.OpError) as error:
        raise ExportError(f"{path}: cannot load the SavedModel ({cli.one_line(error)})") from None
    try:
        labels, metadata = read_export_metadata(loaded)
    except ValueError as error:
        raise ExportError(f"{path}: {error}") from None
    if signatures.SERVING_DEFAULT not in loaded.signatures:
        raise ExportError(f"{path}: no {signatures.SERVING_DEFAULT!r} signature")
    signature = loaded.signatures[signatures.SERVING_DEFAULT]
    # Keep the loaded object alive as long as its signature is used.
    signature._tfllm_owner = loaded  # noqa: SLF001
    return signature, labels, metadata, path


def _evaluate_command(args):
    from tfllm import data
    from tfllm.metrics.classification import classification_report

    signature, labels, metadata, path = load_exported(args.model_dir)
    frame = data.load_table(args.data, args.text_column, args.label_column, encoding=args.encoding)
    y_true = data.LabelVocabulary(labels).encode(frame.label, source=args.data)
    started = time.perf_counter()
    _, y_pred = predict_outputs(signature, frame.text.tolist(), args.batch_size)
    seconds = time.perf_counter() - started
    report = classification_report(y_true, y_pred, labels=labels)
    cli.print_json(
        {
            "command": "evaluate",
            "model_dir": path,
            "model": metadata.get("model"),
            "data": args.data,
            **report,
            "seconds": round(seconds, 3),
            "examples_per_second": round(len(frame) / max(seconds, 1e-9), 1),
        }
    )
    return 0


def _predict_command(args):
    texts = cli.predict_texts(args)
    signature, labels, _, _ = load_exported(args.model_dir)
    probabilities, label_ids = predict_outputs(signature, texts, args.batch_size)
    for text, row, label_id in zip(texts, probabilities, label_ids):
        cli.print_json(
            {
                "text": text,
                "label": labels[label_id],
                "probability": round(float(row[label_id]), 6),
                "probabilities": {label: round(float(p), 6) for label, p in zip(labels, row)},
            }
        )
    return 0


def _log(message):
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())

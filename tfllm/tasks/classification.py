"""Text classification: a labelled table in, a string-in SavedModel out.

`ClassificationTask(name=...)` holds what an app declares (its name, sample,
public data sets, demo texts); `task.train(config)` builds a WordPiece
vocabulary on the training split (inside tf.data, bucketed by length),
optionally pre-trains word vectors on unlabeled text, trains any
`tfllm.models.build_classifier` kind under any strategy with early stopping
on validation loss, evaluates, and exports tokenizer + model + label names as
one SavedModel. `task.export_run(run_dir)` exports a finished run again.

    <run dir>/vocabulary.txt, labels.txt   the tokenizer's and the labels' vocabularies
    <run dir>/model.keras                   the trained model (best validation loss)
    <run dir>/metadata.json                 what the export records about the run
    <run dir>/...                           checkpoints, backup, logs, curves (tfllm.training.runs)
"""

import dataclasses
import json
import logging
import os
import time

from tfllm._files import write_text_atomically
from tfllm.tasks.classification_recipe import (
    class_weight_table,
    make_optimizer,
    pretrain_token_vectors,
    pretraining_corpus,
    vocabulary_sample,
    with_class_weights,
)
from tfllm.tasks.classifier_export import ClassifierExport, load_classifier_export, predict_outputs

logger = logging.getLogger("tfllm.tasks.classification")

MODEL_KINDS = ("fasttext", "lstm", "bilstm", "transformer")  # == tfllm.models.classifier.KINDS
DEFAULT_MODEL = "fasttext"
# The longest inputs each kind trains on by default: the bag of n-grams costs
# little per token, so it reads whole reviews; attention and recurrence cost more.
DEFAULT_MAX_LENGTH = {"fasttext": 1024, "lstm": 256, "bilstm": 256, "transformer": 256}


@dataclasses.dataclass
class ClassificationConfig:
    """Settings of one training run (the `train` subcommand's options)."""

    data: str = None  # a table file; None with dataset None means the task's built-in sample
    dataset: str = None  # a public data set, e.g. "imdb" (from $TFLLM_DATA_DIR, else downloaded)
    data_dir: str = None  # where to look for --dataset first (default: $TFLLM_DATA_DIR)
    encoding: str = "utf-8"
    text_column: str = "text"
    label_column: str = "label"
    model: str = DEFAULT_MODEL
    epochs: int = 10
    batch_size: int = 32
    max_length: int = None  # None: DEFAULT_MAX_LENGTH[model]
    vocabulary_size: int = 16000
    learning_rate: float = None  # None: LEARNING_RATES[model]
    val_fraction: float = 0.2
    patience: int = 2
    class_weights: bool = True
    seed: int = 0
    export_dir: str = None  # None: saved_models/<task name>
    run_dir: str = None  # None: runs/<task name>
    export: bool = True
    verbose: object = "auto"
    model_options: dict = dataclasses.field(default_factory=dict)  # build_classifier(**options)
    # Pre-training on unlabeled text: word vectors (skip-gram) learned on the
    # training texts plus these texts initialise the model's token embedding.
    pretrain_data: str = None  # a table file with a text column (labels ignored)
    pretrain_dataset: str = None  # or a public data set's train texts
    pretrain_epochs: int = 2
    # Fine-tuning a pre-trained backbone (tfllm.models.load_backbone) instead
    # of training `model` from scratch: a directory or a keras-hub preset.
    backbone: str = None
    backbone_lr_factor: float = 0.1  # the backbone's learning rate / the head's
    freeze_epochs: int = 0  # epochs the backbone stays frozen first
    warmup_fraction: float = 0.1  # share of the steps the learning rate warms up over

    def __post_init__(self):
        if self.model not in MODEL_KINDS:
            raise ValueError(f"unknown model {self.model!r}; expected one of {', '.join(MODEL_KINDS)}")

    def resolved_max_length(self):
        return self.max_length or DEFAULT_MAX_LENGTH[self.model]


@dataclasses.dataclass
class ClassificationTask:
    """A text-classification app: what it is called, what it trains on by default, what it shows.

    Attributes:
        name: the app's name, and its default export and run directory names.
        sample: the built-in sample `train` uses without data (`tfllm.data.load_sample`).
        datasets: public data sets `--dataset` accepts (`tfllm.data.load_dataset`).
        demo_texts: texts the demo labels at the end; the first two are the
            export's warm-up requests.
    """

    name: str
    sample: str
    datasets: tuple = ()
    demo_texts: tuple = ()

    def config(self, **settings):
        """A `ClassificationConfig` whose export and run directories are named after the task."""
        config = ClassificationConfig(**settings)
        config.export_dir = config.export_dir or os.path.join("saved_models", self.name)
        config.run_dir = config.run_dir or os.path.join("runs", self.name)
        return config

    # Data.

    def load_training_frame(self, config):
        """Returns `(frame with text/label columns, source description)`."""
        from tfllm import data

        if config.data:
            frame = data.load_table(config.data, config.text_column, config.label_column, encoding=config.encoding)
            return frame, config.data
        if config.dataset:
            return data.load_dataset(config.dataset, "train", data_dir=config.data_dir), f"{config.dataset} train split"
        return data.load_sample(self.sample), f"built-in {self.sample} sample"

    @staticmethod
    def load_pretraining_texts(config):
        """The unlabeled texts `pretrain_data` / `pretrain_dataset` name (a Series), or None."""
        from tfllm import data

        if config.pretrain_data:
            return data.load_table(
                config.pretrain_data, config.text_column, None, encoding=config.encoding, drop_empty=True
            ).text
        if config.pretrain_dataset:
            return data.load_dataset(config.pretrain_dataset, "train", data_dir=config.data_dir).text
        return None

    # Training.

    def train(self, config, strategy=None, *, frames=None, callbacks=(), log=print):
        """Trains, evaluates on the validation split and exports; returns the result record.

        Args:
            config: a `ClassificationConfig` (see `config()`).
            strategy: a `tf.distribute` strategy (default: the current one).
            frames: optional `(train, validation)` DataFrames with "text" and
                "label" columns, used instead of loading and splitting the data.
            callbacks: extra Keras callbacks for `fit`.
            log: where progress lines go (stderr in the CLI).

        Returns:
            A dict: metrics on the validation split, timings, the export path
            (or None), the run directory; plus `"export"`: the in-memory
            `ClassifierExport` (removed before printing).
        """
        import keras
        import tensorflow as tf

        from tfllm import data
        from tfllm.metrics.classification import classification_report
        from tfllm.training import global_batch_size, is_chief, local_copy, runs

        config = self.config(**dataclasses.asdict(config))
        strategy = strategy or tf.distribute.get_strategy()
        keras.utils.set_random_seed(config.seed)
        if frames is None:
            frame, source = self.load_training_frame(config)
            train_frame, val_frame = data.train_val_split(frame, config.val_fraction, seed=config.seed)
        else:
            train_frame, val_frame = frames
            source = config.data or config.dataset or "given frames"
        unlabeled = self.load_pretraining_texts(config)
        labels = data.LabelVocabulary.from_labels(train_frame.label)
        if len(labels) < 2:
            raise data.DataError(f"need at least 2 distinct labels to train, found {labels.labels}", path=source)
        y_train = labels.encode(train_frame.label, source=source)
        y_val = labels.encode(val_frame.label, source=source)
        log(
            f"{source}: {len(train_frame) + len(val_frame)} examples, labels {labels.labels}; "
            f"{len(train_frame)} train / {len(val_frame)} validation"
        )

        run_dir = runs.prepare_run_dir(config.run_dir)
        labels.save(run_dir.file("labels.txt"))
        batch_size = global_batch_size(config.batch_size, strategy)
        build, tokenizer, vocabulary_size, max_length, pretrain_seconds = self._model_recipe(
            config, run_dir, train_frame, val_frame, unlabeled, len(labels), strategy, log
        )
        train_data = data.make_dataset(
            train_frame.text, y_train, tokenizer=tokenizer, batch_size=batch_size, max_length=max_length,
            seed=config.seed,
        )
        val_data = data.make_dataset(
            val_frame.text, y_val, tokenizer=tokenizer, batch_size=batch_size, max_length=max_length, shuffle=False
        )
        weights = class_weight_table(y_train, len(labels))
        if config.class_weights:
            train_data = with_class_weights(train_data, weights)
        with strategy.scope():
            model, optimizer, recipe_callbacks = build(-(-len(train_frame) // batch_size))
            model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        history, train_seconds = runs.fit_in_run_dir(
            model, train_data, val_data, run_dir, epochs=config.epochs, strategy=strategy,
            callbacks=[*callbacks, *recipe_callbacks, *runs.run_callbacks(run_dir, config.patience)],
            verbose=config.verbose, title=f"{config.backbone or config.model} on {source}",
        )

        metadata = {
            "app": self.name, "model": "backbone" if config.backbone else config.model, "max_length": max_length,
            "vocabulary_size": vocabulary_size, "trained_on": source, "examples": len(train_frame),
            "backbone": config.backbone,
        }
        # Distributed variables do not export (Keras' LSTM seed state); a plain copy does.
        model = local_copy(model)
        if is_chief(strategy):
            model.save(run_dir.file("model.keras"))
            write_text_atomically(run_dir.file("metadata.json"), json.dumps(metadata, sort_keys=True) + "\n")
        export = ClassifierExport(tokenizer, model, labels.labels, max_length=max_length, metadata=metadata)
        _, predicted = predict_outputs(export, val_frame.text.tolist())
        report = classification_report(y_val, predicted, labels=labels.labels)
        export_path = self.export(export, config.export_dir) if config.export and is_chief(strategy) else None
        epochs_run = len(history.history.get("loss", []))
        val_losses = history.history.get("val_loss") or [float("nan")]
        return {
            "command": "train",
            "model": metadata["model"],
            "backbone": config.backbone,
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

    @staticmethod
    def _model_recipe(config, run_dir, train_frame, val_frame, unlabeled, num_classes, strategy, log):
        """`(build(steps_per_epoch) -> (model, optimizer, callbacks), tokenizer, vocabulary size,
        max length, pre-training seconds)`: a tfllm kind from scratch, or a pre-trained backbone."""
        from tfllm.models.classifier import build_classifier, set_token_vectors

        if config.backbone:
            from tfllm.tasks.backbone_finetuning import finetuning_optimizer, load_for_classification

            if unlabeled is not None:
                raise ValueError("give either --backbone or --pretrain-data/--pretrain-dataset, not both")
            # Loaded once, inside the strategy's scope (its weights must be); keras-hub
            # builds tokenizers in that scope too, and tf.data runs them from there.
            with strategy.scope():
                model, tokenizer, max_length = load_for_classification(config, num_classes)

            def build(steps_per_epoch):
                return (model, *finetuning_optimizer(config, model, steps_per_epoch))

            return build, tokenizer, int(tokenizer.tokenizer.vocabulary_size()), max_length, 0.0

        corpus = train_frame.text if unlabeled is None else pretraining_corpus(train_frame.text, val_frame.text, unlabeled)
        tokenizer, vocabulary = _tokenizer(config, run_dir, corpus)
        vectors, pretrain_seconds = None, 0.0
        if unlabeled is not None and not run_dir.resuming:  # A resumed run restores its weights.
            started = time.perf_counter()
            vectors = pretrain_token_vectors(config, tokenizer, vocabulary, corpus, log=log)
            pretrain_seconds = time.perf_counter() - started
        max_length = config.resolved_max_length()

        def build(steps_per_epoch):
            model = build_classifier(config.model, len(vocabulary), num_classes, max_length, **config.model_options)
            if vectors is not None:
                set_token_vectors(model, vectors)
            return model, make_optimizer(config.model, config.learning_rate), []

        return build, tokenizer, len(vocabulary), max_length, pretrain_seconds

    # Export and prediction.

    def export(self, export, export_dir):
        """Writes a `ClassifierExport` as the next version under `export_dir`; returns its path."""
        from tfllm.serving.export import export_saved_model

        from tfllm.serving import signatures

        warmup = {signatures.TEXT: list(self.demo_texts[:2])} if self.demo_texts else None
        return export_saved_model(export, export_dir, export.signatures(), warmup_inputs=warmup)

    def export_run(self, run_dir, export_dir):
        """Exports the model a finished `train` left in `run_dir` as a new version; returns its path.

        Raises:
            FileNotFoundError: the run directory holds no trained model.
        """
        return self.export(load_run_export(run_dir), export_dir)

    @staticmethod
    def load_export(model_dir):
        """`(serving signature, labels, metadata, path)` of an exported classifier."""
        return load_classifier_export(model_dir)

    @staticmethod
    def evaluate(export, frame, *, source, batch_size=256):
        """Scores an export on a frame with text/label columns; returns the report record.

        Args:
            export: an export directory, or what `load_export` returned for one.
            frame: a DataFrame with "text" and "label" columns.
            source: the file the frame came from, named in errors.
            batch_size: texts per call.
        """
        from tfllm import data
        from tfllm.metrics.classification import classification_report

        loaded = load_classifier_export(export) if isinstance(export, (str, os.PathLike)) else export
        signature, labels, metadata, path = loaded
        y_true = data.LabelVocabulary(labels).encode(frame.label, source=source)
        started = time.perf_counter()
        _, y_pred = predict_outputs(signature, frame.text.tolist(), batch_size)
        seconds = time.perf_counter() - started
        return {
            "model_dir": path,
            "model": metadata.get("model"),
            "data": source,
            **classification_report(y_true, y_pred, labels=labels),
            "seconds": round(seconds, 3),
            "examples_per_second": round(len(frame) / max(seconds, 1e-9), 1),
        }

    @staticmethod
    def predict(model_dir, texts, batch_size=256):
        """One record per text: its label, that label's probability and every label's."""
        signature, labels, _, _ = load_classifier_export(model_dir)
        probabilities, label_ids = predict_outputs(signature, texts, batch_size)
        return [
            {
                "text": text,
                "label": labels[label_id],
                "probability": round(float(row[label_id]), 6),
                "probabilities": {label: round(float(p), 6) for label, p in zip(labels, row)},
            }
            for text, row, label_id in zip(texts, probabilities, label_ids)
        ]


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


def load_run_export(run_dir):
    """The `ClassifierExport` of the model a finished `train` left in `run_dir` (not written anywhere).

    The tokenizer is the run's WordPiece vocabulary, or the backbone's own
    for a fine-tuned backbone.

    Raises:
        FileNotFoundError: the run directory holds no trained model.
    """
    import tfllm.models  # noqa: F401  (registers the model classes)
    from tfllm import data, text
    from tfllm.training.runs import load_trained_model, read_run_metadata

    model = load_trained_model(run_dir)
    run_dir = os.fspath(run_dir)
    labels = data.LabelVocabulary.load(os.path.join(run_dir, "labels.txt"))
    metadata = read_run_metadata(run_dir)
    if metadata.get("backbone"):
        from tfllm.tasks.backbone_finetuning import backbone_tokenizer

        tokenizer = backbone_tokenizer(metadata["backbone"], metadata["max_length"])
    else:
        tokenizer = text.make_wordpiece_tokenizer(text.load_vocabulary(os.path.join(run_dir, "vocabulary.txt")))
    return ClassifierExport(tokenizer, model, labels.labels, max_length=metadata.get("max_length"), metadata=metadata)

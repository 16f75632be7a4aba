"""Token classification (named-entity recognition): tagged sentences in, a string-in SavedModel out.

`TokenClassificationTask(name=...)` holds what an app declares; `task.train(config)`
reads CoNLL files or entity tables (`tfllm.tasks.tagging_data`), builds word
and character vocabularies on the training split, trains a BiLSTM tagger
(`tfllm.models.LSTMTagger`) or fine-tunes an encoder backbone with a token
head under any strategy, reports entity-level precision / recall / F1
(seqeval) next to the majority-tag-per-word baseline, and exports word
splitting + features + tagger + entity decoding as one SavedModel
(`tfllm.tasks.tagger_export`).

    <run dir>/words.txt, chars.txt, tags.txt   vocabularies (tags in id order)
    <run dir>/model.keras                       the trained tagger (best validation loss)
    <run dir>/metadata.json                     what the export records about the run
"""

import dataclasses
import json
import os
import time

from tfllm._files import write_text_atomically
from tfllm.tasks import tagging_data
from tfllm.tasks.tagger_export import LoadedTagger, TaggerExport, entity_records, tag_sentences

MODEL_KINDS = ("bilstm",)


@dataclasses.dataclass
class TokenClassificationConfig:
    """Settings of one training run (the `train` subcommand's options)."""

    data: str = None  # a CoNLL file or entity table; None: the task's built-in sample
    val_data: str = None  # validation sentences; None: `val_fraction` of `data`
    encoding: str = "utf-8"
    text_column: str = "text"
    entities_column: str = "entities"
    model: str = "bilstm"
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = None  # None: 2e-3 (BiLSTM), 5e-5 x 10 head (backbone)
    val_fraction: float = 0.05
    patience: int = 4  # epochs without a higher validation entity F1
    min_word_count: int = 2
    max_chars: int = 20
    max_length: int = 256  # sub-words per sentence (backbone)
    seed: int = 0
    export_dir: str = None
    run_dir: str = None
    export: bool = True
    verbose: object = "auto"
    model_options: dict = dataclasses.field(default_factory=dict)  # LSTMTagger(**options)
    backbone: str = None  # an encoder backbone directory or keras-hub preset
    backbone_lr_factor: float = 0.1
    freeze_epochs: int = 0
    warmup_fraction: float = 0.1

    def __post_init__(self):
        if self.model not in MODEL_KINDS:
            raise ValueError(f"unknown model {self.model!r}; expected one of {', '.join(MODEL_KINDS)}")


@dataclasses.dataclass
class TokenClassificationTask:
    """A token-classification app: its name, built-in sample and the texts its demo tags.

    Attributes:
        name: the app's name, its default export and run directory names.
        sample: the built-in CoNLL sample the demo trains on (`tfllm.data.conll.load_conll_sample`).
        demo_texts: raw texts the demo tags; the first two are the export's warm-up requests.
    """

    name: str
    sample: str
    demo_texts: tuple = ()

    def config(self, **settings):
        config = TokenClassificationConfig(**settings)
        config.export_dir = config.export_dir or os.path.join("saved_models", self.name)
        config.run_dir = config.run_dir or os.path.join("runs", self.name)
        return config

    def load_splits(self, config):
        """`(train, validation)` `TaggedSentences` and a description of where they came from."""
        from tfllm.data.conll import load_conll_sample

        options = {"text_column": config.text_column, "entities_column": config.entities_column,
                   "encoding": config.encoding}
        if config.data:
            sentences, source = tagging_data.load_sentences(config.data, **options), config.data
        else:
            sentences, source = load_conll_sample(self.sample), f"built-in {self.sample} sample"
        if config.val_data:
            return sentences, tagging_data.load_sentences(config.val_data, **options), source
        train, val = tagging_data.split_sentences(sentences, config.val_fraction, config.seed)
        return train, val, source

    def train(self, config, strategy=None, *, callbacks=(), log=print):
        """Trains, scores the validation sentences (and the baseline), exports; returns the result record.

        The record holds `"export"`, the in-memory `TaggerExport` (removed before printing).
        """
        import keras
        import tensorflow as tf

        from tfllm.data.errors import DataError
        from tfllm.metrics.entities import entity_report, majority_tags
        from tfllm.tasks.tagger_models import build_tagger
        from tfllm.text import save_vocabulary
        from tfllm.training import global_batch_size, is_chief, local_copy, runs

        config = self.config(**dataclasses.asdict(config))
        strategy = strategy or tf.distribute.get_strategy()
        keras.utils.set_random_seed(config.seed)
        train, val, source = self.load_splits(config)
        tags = tagging_data.tag_vocabulary(train.tags)
        if len(tags) < 2:
            raise DataError("the training sentences hold no entities", path=source)
        train_ids = tagging_data.encode_tags(train, tags, source)
        val_ids = tagging_data.encode_tags(val, tags, config.val_data or source)
        log(f"{source} ({train.scheme}): {len(train)} train / {len(val)} validation sentences, tags {tags}")

        run_dir = runs.prepare_run_dir(config.run_dir)
        save_vocabulary(tags, run_dir.file("tags.txt"))
        batch_size = global_batch_size(config.batch_size, strategy)
        with strategy.scope():
            model, featurizer, optimizer, recipe_callbacks, metadata = build_tagger(
                config, run_dir, train, len(tags), -(-len(train) // batch_size)
            )
            model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", weighted_metrics=["accuracy"])
        train_data = tagging_data.make_tagging_dataset(train, train_ids, featurizer, batch_size=batch_size,
                                                       seed=config.seed)
        val_data = tagging_data.make_tagging_dataset(val, val_ids, featurizer, batch_size=batch_size, shuffle=False)
        history, train_seconds = runs.fit_in_run_dir(
            model, train_data, val_data, run_dir, epochs=config.epochs, strategy=strategy,
            callbacks=[*callbacks, *recipe_callbacks, tagging_data.entity_f1_callback(val_data, tags),
                       *runs.run_callbacks(run_dir, config.patience, monitor="val_entity_f1", mode="max")],
            verbose=config.verbose, title=f"{config.backbone or config.model} on {source}",
        )

        metadata.update({"app": self.name, "trained_on": source, "sentences": len(train), "scheme": train.scheme})
        model = local_copy(model)
        if is_chief(strategy):
            model.save(run_dir.file("model.keras"))
            write_text_atomically(run_dir.file("metadata.json"), json.dumps(metadata, sort_keys=True) + "\n")
        export = TaggerExport(featurizer, model, tags, metadata=metadata)
        started = time.perf_counter()
        report = entity_report(val.tags, tag_sentences(export, val.words))
        eval_seconds = time.perf_counter() - started
        baseline = entity_report(val.tags, majority_tags(train.words, train.tags, val.words))
        export_path = self.export(export, config.export_dir) if config.export and is_chief(strategy) else None
        epochs_run = len(history.history.get("loss", []))
        return {
            "command": "train",
            "model": metadata["model"],
            "backbone": config.backbone,
            "data": source,
            "val_data": config.val_data,
            "scheme": train.scheme,
            "tags": tags,
            "train_sentences": len(train),
            "val_sentences": len(val),
            "epochs_run": epochs_run,
            "batch_size": batch_size,
            "best_val_loss": min(history.history.get("val_loss") or [float("nan")]),
            "best_val_entity_f1": max(history.history.get("val_entity_f1") or [float("nan")]),
            "val_precision": report["precision"],
            "val_recall": report["recall"],
            "val_f1": report["f1"],
            "val_per_type": report["per_type"],
            "baseline_f1": baseline["f1"],
            "baseline_precision": baseline["precision"],
            "baseline_recall": baseline["recall"],
            "train_seconds": round(train_seconds, 2),
            "eval_seconds": round(eval_seconds, 2),
            "export_path": export_path,
            "run_dir": run_dir.path,
            "export": export,
        }

    # Export and prediction.

    def export(self, export, export_dir):
        """Writes a `TaggerExport` as the next version under `export_dir`; returns its path."""
        from tfllm.serving import signatures
        from tfllm.serving.export import export_saved_model

        warmup = {signatures.TEXT: list(self.demo_texts[:2])} if self.demo_texts else None
        return export_saved_model(export, export_dir, export.signatures(), warmup_inputs=warmup)

    def export_run(self, run_dir, export_dir):
        """Exports the tagger a finished `train` left in `run_dir` as a new version; returns its path."""
        from tfllm.tasks.tagger_models import load_run_export

        return self.export(load_run_export(run_dir), export_dir)

    @staticmethod
    def load_export(model_dir):
        """The `LoadedTagger` of an export directory (a version, or a base path: its latest)."""
        return LoadedTagger(model_dir)

    @staticmethod
    def evaluate(export, sentences, *, baseline=None, batch_size=128):
        """Entity-level scores of an export on `TaggedSentences` (their own words, not re-split).

        Args:
            export: an export directory or a `LoadedTagger`.
            sentences: `TaggedSentences` with gold tags.
            baseline: optional training `TaggedSentences`: adds the majority-tag baseline's F1.
        """
        from tfllm.metrics.entities import entity_report, majority_tags

        loaded = LoadedTagger(export) if isinstance(export, (str, os.PathLike)) else export
        started = time.perf_counter()
        predicted = tag_sentences(loaded, sentences.words, batch_size)
        seconds = time.perf_counter() - started
        report = entity_report(sentences.tags, predicted)
        record = {"model_dir": loaded.path, "model": loaded.metadata.get("model"), "data": sentences.source,
                  "sentences": len(sentences), **report}
        if baseline is not None:
            record["baseline_f1"] = entity_report(sentences.tags, majority_tags(baseline.words, baseline.tags,
                                                                                sentences.words))["f1"]
        record.update(seconds=round(seconds, 3), sentences_per_second=round(len(sentences) / max(seconds, 1e-9), 1))
        return record

    @staticmethod
    def predict(model_dir, texts, batch_size=128):
        """One record per text: the text and its entities (text, type, start, end, score)."""
        loaded = LoadedTagger(model_dir)
        return [{"text": text, "entities": entities}
                for text, entities in zip(texts, entity_records(loaded, texts, batch_size))]

"""Extractive question answering: SQuAD v1.1 files in, a (question, context)-in SavedModel out.

`QuestionAnsweringTask.train(config)` reads SQuAD JSON, tokenizes questions
and contexts with offsets into BERT windows (`span_features`), trains a
`SpanPredictor` (start/end logits) on an encoder backbone -- a pre-trained
one (`backbone`: a directory `apps/language_model.py pretrain --objective
mlm` wrote, its run directory, or a keras-hub preset) or, without one, the
same encoder from scratch with a WordPiece vocabulary learned on the
training questions and contexts -- under any strategy with early stopping,
scores exact match and F1 on held-out articles beside the sliding-window
baseline, and exports (`qa_export`). A run directory keeps

    <run dir>/vocabulary.txt   the WordPiece vocabulary (the backbone's, or learned)
    <run dir>/model.keras      the span model (best validation loss)
    <run dir>/metadata.json    featurizer settings, max answer length, what it trained on
"""

import dataclasses
import json
import os
import time

import numpy as np

from tfllm._files import write_text_atomically
from tfllm.tasks.qa_export import QuestionAnsweringExport, answer_questions, load_qa_export

MODEL_INPUTS = ("token_ids", "segment_ids", "padding_mask")
# Span models from scratch: an encoder with a span head (`SpanPredictor`), or DrQA's BiLSTM reader (`SpanReader`).
MODEL_KINDS = ("transformer", "reader")
# What each kind trains with where the config leaves it None (docs/question_answering.md, "Benchmark").
RECIPES = {"transformer": {"num_layers": 2, "dropout": 0.1, "learning_rate": 1e-3},
           "reader": {"num_layers": 3, "dropout": 0.3, "learning_rate": 2e-3}}


@dataclasses.dataclass
class QuestionAnsweringConfig:
    """Settings of one training run (the `train` subcommand's options)."""

    data: str = None  # a SQuAD v1.1 JSON file; None: the built-in sample
    validation_data: str = None  # a SQuAD file for early stopping; None: held-out articles of `data`
    encoding: str = "utf-8"
    backbone: str = None  # a backbone directory, pre-training run directory or keras-hub preset
    model: str = None  # one of MODEL_KINDS; None: the transformer on a backbone, the reader from scratch
    vocabulary_size: int = 8000  # WordPiece, learned when no backbone is given
    num_layers: int = None  # None: the model kind's (RECIPES)
    num_heads: int = 4
    hidden_dim: int = 128
    intermediate_dim: int = 512
    dropout: float = None  # None: the model kind's
    max_seq_length: int = 256
    doc_stride: int = 96
    max_query_length: int = 32
    max_answer_length: int = 30
    mark_matches: bool = True  # segment id 2 for context words the question holds (span_features)
    epochs: int = 4
    batch_size: int = 32
    learning_rate: float = None  # None: the model kind's
    warmup_fraction: float = 0.1
    backbone_lr_factor: float = 1.0
    freeze_epochs: int = 0
    val_fraction: float = 0.05  # of the articles, held out for early stopping
    patience: int = 2
    seed: int = 0
    export_dir: str = None
    run_dir: str = None
    export: bool = True
    verbose: object = "auto"

    def resolved(self):
        """A copy with the model kind and its recipe filled in: `model` defaults to the transformer
        when a backbone is given and to the reader from scratch; None settings take `RECIPES[model]`."""
        kind = self.model or ("transformer" if self.backbone else "reader")
        if kind not in MODEL_KINDS:
            raise ValueError(f"unknown model {kind!r}; expected one of {', '.join(MODEL_KINDS)}")
        if kind == "reader" and self.backbone:
            raise ValueError("the reader trains from scratch; a backbone needs the transformer: "
                             "use it with --model transformer")
        recipe = {name: value for name, value in RECIPES[kind].items() if getattr(self, name) is None}
        return dataclasses.replace(self, model=kind, **recipe)


def squad_references(questions):
    return {q.id: q.answer_texts for q in questions}


def baseline_scores(questions):
    """EM/F1 of the sliding-window baseline on `questions` (`tfllm.metrics.sliding_window`)."""
    from tfllm.metrics.sliding_window import sliding_window_answer
    from tfllm.metrics.squad import squad_scores

    predictions = {q.id: sliding_window_answer(q.question, q.context)[0] for q in questions}
    scores = squad_scores(predictions, squad_references(questions))
    return {"baseline_exact_match": scores["exact_match"], "baseline_f1": scores["f1"]}


def _byte_offset(text, char_offset):
    return len(text[:char_offset].encode("utf-8"))


def window_targets(windows, questions):
    """`(start, end)` token targets of each window: the first answer's tokens, or (0, 0) ([CLS])
    where the window does not hold the whole answer."""
    starts, ends, example = windows["starts"], windows["ends"], windows["example"]
    targets = np.zeros((len(example), 2), np.int32)
    for row, index in enumerate(example):
        question = questions[index]
        text, char_start = question.answers[0]
        first = _byte_offset(question.context, char_start)
        last = first + len(text.encode("utf-8"))
        context = np.flatnonzero(starts[row] >= 0)
        if not len(context) or starts[row][context[0]] > first or ends[row][context[-1]] < last:
            continue
        start_token = context[np.argmax(ends[row][context] > first)]
        end_token = context[np.flatnonzero(starts[row][context] < last)[-1]]
        if start_token <= end_token:
            targets[row] = (start_token, end_token)
    return targets


def make_windows(featurizer, questions, chunk=256):
    """The windows of `questions` as NumPy arrays (see `SpanFeaturizer.windows`), padded to max_seq_length."""
    import tensorflow as tf

    parts = []
    for first in range(0, len(questions), chunk):
        part = questions[first:first + chunk]
        windows = featurizer.windows(tf.constant([q.question for q in part]), tf.constant([q.context for q in part]))
        windows = {key: value.numpy() for key, value in windows.items()}
        windows["example"] = windows["example"] + first
        pad = featurizer.max_seq_length - windows["token_ids"].shape[1]
        for key in ("token_ids", "segment_ids", "padding_mask", "starts", "ends"):
            fill = 0 if key in MODEL_INPUTS else -1
            windows[key] = np.pad(windows[key], [(0, 0), (0, pad)], constant_values=fill)
        parts.append(windows)
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def make_dataset(windows, targets, batch_size, *, shuffle=False, seed=0, num_buckets=6):
    """Batches of `(BERT inputs, (start, end))`, bucketed by window length and cut to the bucket's length."""
    import tensorflow as tf

    from tfllm.data.buckets import auto_bucket_boundaries, batch_count, with_cardinality

    lengths = windows["padding_mask"].sum(axis=1)
    boundaries = auto_bucket_boundaries(lengths, windows["token_ids"].shape[1], num_buckets)
    buckets = np.searchsorted(boundaries, lengths).astype(np.int64)
    data = tf.data.Dataset.from_tensor_slices(({key: windows[key] for key in MODEL_INPUTS}, targets, buckets))
    if shuffle:
        data = data.shuffle(len(targets), seed=seed, reshuffle_each_iteration=True)
    data = data.group_by_window(lambda inputs, y, bucket: bucket,
                                lambda bucket, group: group.batch(batch_size), window_size=batch_size)
    table = tf.constant(boundaries, tf.int64)

    def trim(inputs, y, bucket):
        length = table[bucket[0]]
        return {key: value[:, :length] for key, value in inputs.items()}, y

    data = with_cardinality(data.map(trim), batch_count(buckets, batch_size, drop_remainder=False))
    return data.prefetch(tf.data.AUTOTUNE)


def _vocabulary(config, run_dir, questions):
    """`(vocabulary, lowercase, strip_accents, backbone or None)`: the backbone's, or learned on the data."""
    from tfllm import text

    if config.backbone:
        from tfllm.models import EncoderBackbone, load_backbone
        from tfllm.tasks.backbone_finetuning import resolve_backbone

        backbone, tokenizer = load_backbone(resolve_backbone(config.backbone), kind="encoder")
        if not isinstance(backbone, EncoderBackbone) or not hasattr(tokenizer, "get_vocabulary"):
            raise ValueError(f"{config.backbone}: question answering needs an encoder with a WordPiece tokenizer")
        return (tokenizer.get_vocabulary(), bool(tokenizer.lowercase), bool(tokenizer.strip_accents), backbone)
    path = run_dir.file("vocabulary.txt")
    if run_dir.resuming and os.path.exists(path):
        return text.load_vocabulary(path), True, True, None
    paragraphs = list(dict.fromkeys(q.context for q in questions))
    vocabulary = text.build_wordpiece_vocabulary(
        paragraphs + [q.question for q in questions], config.vocabulary_size,
        reserved_tokens=(*text.RESERVED_TOKENS, "[MASK]"), max_texts=20000, seed=config.seed,
    )
    return vocabulary, True, True, None


def build_model(config, vocabulary_size, num_segments, backbone=None):
    """The span model of a resolved config (`QuestionAnsweringConfig.resolved`): a `SpanPredictor` on
    `backbone` (its segment table widened to `num_segments`) or on a fresh `EncoderBackbone` of the
    config's size, or a `SpanReader` (`config.model`)."""
    from tfllm.models import EncoderBackbone
    from tfllm.models.span_predictor import SpanPredictor, with_segments

    if config.model == "reader":
        from tfllm.models.span_reader import SpanReader

        return SpanReader(vocabulary_size, embedding_dim=config.hidden_dim, hidden_dim=config.hidden_dim,
                          num_layers=config.num_layers, max_query_length=config.max_query_length,
                          dropout=config.dropout)
    if backbone is None:
        backbone = EncoderBackbone(
            vocabulary_size, num_layers=config.num_layers, num_heads=config.num_heads,
            hidden_dim=config.hidden_dim, intermediate_dim=config.intermediate_dim,
            max_sequence_length=config.max_seq_length, num_segments=num_segments, dropout=config.dropout,
        )
    elif config.max_seq_length > backbone.max_sequence_length:
        raise ValueError(f"--max-seq-length {config.max_seq_length} exceeds the backbone's "
                         f"{backbone.max_sequence_length} positions")
    return SpanPredictor(with_segments(backbone, num_segments), dropout=config.dropout)


@dataclasses.dataclass
class QuestionAnsweringTask:
    """An extractive question-answering app.

    Attributes:
        name: the app's name, and its default export and run directory names.
        config: the default `QuestionAnsweringConfig` of `train` (the benchmarked recipe).
        demo_config: the demo's (the built-in sample).
        demo_questions: `(question, context)` pairs the demo answers; the first
            is the export's warm-up request.
    """

    name: str
    config: QuestionAnsweringConfig
    demo_config: QuestionAnsweringConfig
    demo_questions: tuple = ()

    def make_config(self, base, **settings):
        config = dataclasses.replace(base, **settings)
        config.export_dir = config.export_dir or os.path.join("saved_models", self.name)
        config.run_dir = config.run_dir or os.path.join("runs", self.name)
        return config

    @staticmethod
    def load_questions(config):
        """`(train questions, validation questions, description)`."""
        from tfllm.data.squad import load_squad_sample, read_squad, split_by_title

        if config.data:
            questions, source = read_squad(config.data, encoding=config.encoding), config.data
        else:
            questions, source = load_squad_sample(), "built-in SQuAD-format sample"
        if config.validation_data:
            return questions, read_squad(config.validation_data, encoding=config.encoding), source
        train, validation = split_by_title(questions, config.val_fraction, seed=config.seed)
        return train, validation, source

    def train(self, config, strategy=None, *, log=print):
        """Trains, scores the validation questions beside the baseline and exports; returns the result.

        The result's `"export"` is the in-memory `QuestionAnsweringExport` (pop it before printing).
        """
        import keras
        import tensorflow as tf

        from tfllm import text
        from tfllm.models.span_predictor import span_loss
        from tfllm.tasks.backbone_finetuning import finetuning_optimizer
        from tfllm.tasks.span_features import SpanFeaturizer
        from tfllm.training import global_batch_size, is_chief, local_copy, runs

        strategy = strategy or tf.distribute.get_strategy()
        config = config.resolved()
        keras.utils.set_random_seed(config.seed)
        train_questions, val_questions, source = self.load_questions(config)
        run_dir = runs.prepare_run_dir(config.run_dir)
        with strategy.scope():
            vocabulary, lowercase, strip_accents, backbone = _vocabulary(config, run_dir, train_questions)
        text.save_vocabulary(vocabulary, run_dir.file("vocabulary.txt"))
        featurizer = SpanFeaturizer(vocabulary, lowercase=lowercase, strip_accents=strip_accents,
                                    max_seq_length=config.max_seq_length, doc_stride=config.doc_stride,
                                    max_query_length=config.max_query_length, mark_matches=config.mark_matches)
        train_windows = make_windows(featurizer, train_questions)
        val_windows = make_windows(featurizer, val_questions)
        train_targets = window_targets(train_windows, train_questions)
        val_targets = window_targets(val_windows, val_questions)
        log(f"{source}: {len(train_questions)} train / {len(val_questions)} validation questions, "
            f"{len(train_targets)} / {len(val_targets)} windows of at most {config.max_seq_length} tokens "
            f"({np.mean(train_targets[:, 0] > 0):.0%} of the training windows hold their answer)")
        batch_size = global_batch_size(config.batch_size, strategy)
        train_data = make_dataset(train_windows, train_targets, batch_size, shuffle=True, seed=config.seed)
        val_data = make_dataset(val_windows, val_targets, batch_size)
        with strategy.scope():
            model = build_model(config, len(vocabulary), featurizer.num_segments, backbone)
            optimizer, extra_callbacks = finetuning_optimizer(config, model, -(-len(train_targets) // batch_size))
            model.compile(optimizer=optimizer, loss=span_loss)
        history, train_seconds = runs.fit_in_run_dir(
            model, train_data, val_data, run_dir, epochs=config.epochs, strategy=strategy,
            callbacks=[*extra_callbacks, *runs.run_callbacks(run_dir, config.patience)],
            verbose=config.verbose, title=f"span model on {source}",
        )
        metadata = {"app": self.name, "model": config.model, "backbone": config.backbone, "trained_on": source,
                    "questions": len(train_questions), "max_answer_length": config.max_answer_length,
                    "vocabulary_size": len(vocabulary), "featurizer": featurizer.settings()}
        model = local_copy(model)
        if is_chief(strategy):
            model.save(run_dir.file("model.keras"))
            write_text_atomically(run_dir.file("metadata.json"), json.dumps(metadata, sort_keys=True) + "\n")
        export = QuestionAnsweringExport(featurizer, model, config.max_answer_length, metadata)
        report = self.evaluate(export, val_questions, source="validation split")
        export_path = self.export(export, config.export_dir) if config.export and is_chief(strategy) else None
        val_losses = history.history.get("val_loss") or [float("nan")]
        epochs_run = len(history.history.get("loss", []))
        return {
            "command": "train", "model": config.model, "backbone": config.backbone, "data": source,
            "train_questions": len(train_questions), "val_questions": len(val_questions),
            "train_windows": len(train_targets), "epochs_run": epochs_run, "batch_size": batch_size,
            "best_val_loss": min(val_losses),
            **{f"val_{key}": report[key] for key in ("exact_match", "f1", "baseline_exact_match", "baseline_f1")},
            "train_seconds": round(train_seconds, 2),
            "train_windows_per_second": round(epochs_run * len(train_targets) / max(train_seconds, 1e-9), 1),
            "export_path": export_path, "run_dir": run_dir.path, "export": export,
        }

    def export(self, export, export_dir):
        """Writes a `QuestionAnsweringExport` as the next version under `export_dir`; returns its path."""
        from tfllm.serving import signatures
        from tfllm.serving.export import export_saved_model

        warmup = None
        if self.demo_questions:
            question, context = self.demo_questions[0]
            warmup = {signatures.QUESTION: [question], signatures.CONTEXT: [context]}
        return export_saved_model(export, export_dir, export.signatures(), warmup_inputs=warmup)

    def export_run(self, run_dir, export_dir):
        """Exports the model a finished `train` left in `run_dir` as a new version; returns its path."""
        return self.export(load_run_export(run_dir), export_dir)

    @staticmethod
    def load_export(model_dir):
        """`(serving signature, metadata, path)` of an exported question-answering model."""
        return load_qa_export(model_dir)

    @staticmethod
    def evaluate(export, questions, *, source, batch_size=64, baseline=True):
        """Exact match and F1 of an export on SQuAD questions (and the sliding-window baseline's).

        Args:
            export: an export directory, what `load_export` returned, or a `QuestionAnsweringExport`.
            questions: `SquadQuestion`s with answers.
            source: what the questions are, for the report.
        """
        from tfllm.metrics.squad import squad_scores

        path = None
        if isinstance(export, (str, os.PathLike)):
            export = load_qa_export(export)
        if isinstance(export, tuple):
            export, _, path = export
        started = time.perf_counter()
        records = answer_questions(export, [q.question for q in questions], [q.context for q in questions],
                                   batch_size)
        seconds = time.perf_counter() - started
        scores = squad_scores({q.id: r["answer"] for q, r in zip(questions, records)}, squad_references(questions))
        report = {"model_dir": path, "data": source, **scores, "seconds": round(seconds, 3),
                  "questions_per_second": round(len(questions) / max(seconds, 1e-9), 1)}
        if baseline:
            report.update(baseline_scores(questions))
        return report

    @staticmethod
    def predict(model_dir, questions, contexts, batch_size=64):
        """One record per question: the question, its answer, score and character offsets."""
        signature, _, _ = load_qa_export(model_dir)
        records = answer_questions(signature, questions, contexts, batch_size)
        return [{"question": question, **record} for question, record in zip(questions, records)]


def load_run_export(run_dir):
    """The `QuestionAnsweringExport` of the model a finished `train` left in `run_dir` (not written anywhere).

    Raises:
        FileNotFoundError: the run directory holds no trained model.
    """
    import tfllm.models.span_predictor  # noqa: F401  (registers the model classes)
    import tfllm.models.span_reader  # noqa: F401
    from tfllm import text
    from tfllm.tasks.span_features import SpanFeaturizer
    from tfllm.training.runs import load_trained_model, read_run_metadata

    model = load_trained_model(run_dir)
    run_dir = os.fspath(run_dir)
    metadata = read_run_metadata(run_dir)
    featurizer = SpanFeaturizer(text.load_vocabulary(os.path.join(run_dir, "vocabulary.txt")),
                                **metadata["featurizer"])
    return QuestionAnsweringExport(featurizer, model, metadata["max_answer_length"], metadata)

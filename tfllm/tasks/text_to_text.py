"""Text to text: (source, target) pairs in, a text-in/text-out SavedModel out.

The pipeline the summarization, dialogue and translation apps share
(`TextToTextTask`): read and split the pairs, train an encoder-decoder
(`tfllm.tasks.text_to_text_run`: WordPiece vocabulary, bucketed `tf.data`,
a run directory), generate text in process (XLA-compiled decoding), score it
with the app's metrics and export it (`tfllm.tasks.text_generator`).
"""

import dataclasses
import os
import time

from tfllm.tasks.text_to_text_run import (  # noqa: F401  (the task's public names)
    MODEL_KINDS,
    TextToTextConfig,
    TrainedTextToText,
    _tokenizer,
    build_model,
    load_run,
    run_cased,
    special_ids,
    train,
)

@dataclasses.dataclass
class TextToTextTask:
    """A text-to-text app: its columns, data sets, default recipes, demo texts and metrics.

    Attributes:
        name: app and default export name ("summarization").
        source_column, target_column: default table columns.
        dataset: public data set name for `--dataset` (tfllm.data.load_dataset).
        sample: built-in sample name (tfllm.data.load_sample).
        config: default `TextToTextConfig` for `train`.
        demo_config: `TextToTextConfig` for the demo (small and quick).
        demo_texts: inputs the demo generates for at the end.
        metrics: `metrics(sources, references, predictions, perplexity)`
            -> dict; `perplexity()` computes teacher-forced perplexity.
        read_file: optional `read_file(path, encoding) -> frame (source,
            target columns)` for `.txt` files `load_table` does not read, or None.
        decoding: the decoding strategy `train` scores and exports with by
            default (the benchmarked one).
        context_turns: for dialogue tasks, the default turns of context
            (`tfllm.tasks.dialogue_context`) built from files and data sets
            whose pairs carry a "dialogue_id"; None for other tasks.
        no_repeat_ngram_size, repetition_penalty: the repetition control
            the CLI decodes with by default (see
            `tfllm.generation.SamplerConfig`).
        reversible: pairs may be read the other way round (`reverse=True`,
            the CLI's `--reverse`): translation in either direction.
        group_split: a table is split so that no source or target text is
            in both train and validation (pairs sharing one stay together).
    """

    name: str
    source_column: str
    target_column: str
    dataset: str
    sample: str
    config: TextToTextConfig
    demo_config: TextToTextConfig
    demo_texts: tuple
    metrics: object
    read_file: object = None
    decoding: str = "greedy"
    no_repeat_ngram_size: int = 0
    repetition_penalty: float = 1.0
    context_turns: int = None
    reversible: bool = False
    group_split: bool = False

    def read_pairs(self, *, data=None, dataset=None, split="validation", data_dir=None,
                   text_column=None, target_column=None, encoding="utf-8", context_turns=None,
                   reverse=False):
        """`(sources, targets, description)` from a table file or a public data set's split.

        `context_turns` (default `self.context_turns`) re-pairs dialogues
        that carry a "dialogue_id" (DailyDialog) with that many turns of context;
        `reverse` swaps sources and targets.
        """
        from tfllm import data as tables

        if dataset:
            frame = self._turns(tables.load_dataset(dataset, split, data_dir=data_dir), context_turns)
            sources, targets, description = frame[self.source_column], frame[self.target_column], f"{dataset} {split}"
        elif self.read_file is not None and data.endswith(".txt"):
            frame = self._turns(self.read_file(data, encoding), context_turns)
            sources, targets, description = frame[self.source_column], frame[self.target_column], data
        else:
            frame = tables.load_table(
                data, text_column or self.source_column, label_column=None,
                target_column=target_column or self.target_column, encoding=encoding,
            )
            sources, targets, description = frame.text, frame.target, data
        if reverse:
            sources, targets, description = targets, sources, f"{description} (reversed)"
        return list(sources), list(targets), description

    def training_data(self, *, demo=False, limit=None, val_fraction=0.1, seed=0, **source):
        """`(sources, targets, val_sources, val_targets, description)` to train on.

        The built-in sample for the demo, a public data set's train and
        validation splits, or a table split by `val_fraction`; `source` holds
        `read_pairs`' arguments.
        """
        import pandas as pd

        from tfllm import data

        if demo:
            frame = data.load_sample(self.sample)
            frame = pd.DataFrame({"source": frame[self.source_column], "target": frame[self.target_column]})
            description, val_fraction = f"built-in {self.sample} sample", 0.2
        elif source.get("dataset"):
            train, val = (self.read_pairs(**{**source, "split": split}) for split in ("train", "validation"))
            return (
                _limit(train[0], limit), _limit(train[1], limit), val[0], val[1],
                f"{source['dataset']} train / validation" + (" (reversed)" if source.get("reverse") else ""),
            )
        else:
            sources, targets, description = self.read_pairs(**source)
            frame = pd.DataFrame({"source": sources, "target": targets})
        frame = frame.iloc[:limit] if limit else frame
        train, val = data.train_val_split(
            frame, val_fraction, seed=seed, stratify_column=None,
            group_columns=("source", "target") if self.group_split else None,
        )
        return list(train.source), list(train.target), list(val.source), list(val.target), description

    def _turns(self, frame, context_turns):
        context_turns = context_turns or self.context_turns
        if not context_turns or "dialogue_id" not in frame:
            return frame
        from tfllm.tasks.dialogue_context import context_pairs

        return context_pairs(frame, context_turns)

    def train(self, config, data, *, decoding=None, run_dir=None, strategy=None, eval_limit=None,
              export_dir=None, log=print):
        """Trains on `data`, scores the validation pairs, exports; returns the result record.

        Args:
            config: a `TextToTextConfig`.
            data: `(sources, targets, val_sources, val_targets, description)`
                (see `training_data`).
            decoding: `generate` options for scoring and the export (greedy).
            run_dir: the run directory (default `runs/<name>`); an interrupted
                run started again with it resumes.
            strategy: a `tf.distribute` strategy (default: the current one).
            eval_limit: score at most this many validation pairs.
            export_dir: the export base path, or None for no export.
            log: progress messages.

        Returns:
            A dict of metrics, timings and paths; plus `"model"` and
            `"tokenizer"` objects under "trained" (removed before printing).
        """
        import tensorflow as tf

        from tfllm.tasks.text_generator import generate_texts, model_perplexity
        from tfllm.training import is_chief, runs

        strategy = strategy or tf.distribute.get_strategy()
        decoding = dict(decoding or {"strategy": "greedy"})
        sources, targets, val_sources, val_targets, description = data
        log(f"{description}: {len(sources)} train / {len(val_sources)} validation pairs")
        run_dir = runs.prepare_run_dir(run_dir or os.path.join("runs", self.name))
        trained = train(config, sources, targets, val_sources, val_targets, run_dir=run_dir, strategy=strategy, log=log)
        model, tokenizer = trained.model, trained.tokenizer
        eval_sources, eval_targets = _limit(val_sources, eval_limit), _limit(val_targets, eval_limit)
        started = time.perf_counter()
        predictions = generate_texts(model, tokenizer, eval_sources, **decoding)
        generate_seconds = time.perf_counter() - started
        scores = self.metrics(
            eval_sources, eval_targets, predictions,
            lambda: model_perplexity(model, tokenizer, eval_sources, eval_targets),
        )
        export_path = None
        if export_dir and is_chief(strategy):
            export_path = self.export(model, tokenizer, export_dir, decoding)
        losses = trained.history.get("val_loss") or [float("nan")]
        return {
            "command": "train",
            "model": config.model,
            "data": description,
            "train_examples": len(sources),
            "val_examples": len(val_sources),
            "scored_examples": len(eval_sources),
            "epochs_run": len(trained.history.get("loss", [])),
            "best_val_loss": min(losses),
            **scores,
            "train_seconds": round(trained.train_seconds, 2),
            "generate_seconds": round(generate_seconds, 2),
            "decoding": decoding,
            "export_path": export_path,
            "run_dir": run_dir.path,
            "trained": trained,
            "examples": list(zip(eval_sources, eval_targets, predictions))[:3],
        }

    def export_run(self, run_dir, export_dir, decoding):
        """Exports the model a finished `train` left in `run_dir` as a new version; returns its path."""
        model, tokenizer, _ = load_run(run_dir)
        return self.export(model, tokenizer, export_dir, decoding)

    def export(self, model, tokenizer, export_dir, decoding):
        """Exports a text generator as the next version under `export_dir`; returns its path."""
        from tfllm.tasks.text_generator import export_text_generator

        return export_text_generator(model, tokenizer, export_dir, warmup_texts=self.demo_texts[:1], **decoding)

    @staticmethod
    def load_export(model_dir):
        """The export at `model_dir` as a `LoadedTextGenerator`."""
        from tfllm.tasks.text_generator import LoadedTextGenerator

        return LoadedTextGenerator(model_dir)


def _limit(items, n):
    return list(items)[:n] if n else list(items)

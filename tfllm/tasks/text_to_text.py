"""Text to text: (source, target) pairs in, a text-in/text-out SavedModel out.

The pipeline the summarization and dialogue apps share (`TextToTextTask`).

Build a WordPiece vocabulary on the training texts, train an encoder-decoder
on bucketed `tf.data`, generate text in process (XLA-compiled decoding) and
keep everything an export needs in a run directory:

    <run dir>/vocabulary.txt   shared source/target vocabulary
    <run dir>/config.json      the `TextToTextConfig` (`cased` tells how to tokenize)
    <run dir>/model.keras      the trained model (best validation loss)
    <run dir>/...              checkpoints, backup, logs, curves (tfllm.training.runs)
"""

import dataclasses
import json
import os
import time

from tfllm._files import write_text_atomically

MODEL_KINDS = ("transformer", "lstm")


@dataclasses.dataclass
class TextToTextConfig:
    """Model and training settings of a text-to-text run."""

    model: str = "transformer"
    vocabulary_size: int = 8000
    max_source_length: int = 256
    max_target_length: int = 64
    hidden_dim: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_dim: int = 512
    dropout: float = 0.1
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-3
    patience: int = 2
    # Epochs without a lower validation loss before the learning rate is
    # multiplied by `reduce_lr_factor`; active only when below `patience`.
    reduce_lr_patience: int = 1
    reduce_lr_factor: float = 0.2
    seed: int = 0
    verbose: object = "auto"
    # Keep case in the vocabulary, so generated text is cased ("Emma will
    # ..."); False lower-cases sources and targets (runs before this field).
    cased: bool = True

    def __post_init__(self):
        if self.model not in MODEL_KINDS:
            raise ValueError(
                f"model must be one of {', '.join(MODEL_KINDS)}. Received: model={self.model!r}"
            )


def special_ids(vocabulary):
    """`(pad, start, end)` ids of a vocabulary from `build_wordpiece_vocabulary`."""
    vocabulary = list(vocabulary)
    for token in ("[START]", "[END]"):
        if token not in vocabulary:
            raise ValueError(f"The vocabulary has no {token!r} token")
    return 0, vocabulary.index("[START]"), vocabulary.index("[END]")


def build_model(config, vocabulary_size, start_token_id, end_token_id):
    """The encoder-decoder `config.model` names, sized by `config`."""
    if config.model == "lstm":
        from tfllm.models.lstm_seq2seq import LSTMSeq2Seq

        return LSTMSeq2Seq(
            vocabulary_size,
            config.max_source_length,
            config.max_target_length,
            hidden_dim=config.hidden_dim,
            dropout=config.dropout,
            start_token_id=start_token_id,
            end_token_id=end_token_id,
        )
    from tfllm.models.transformer_seq2seq import TransformerSeq2Seq

    return TransformerSeq2Seq(
        vocabulary_size,
        config.max_source_length,
        config.max_target_length,
        num_encoder_layers=config.num_layers,
        num_decoder_layers=config.num_layers,
        num_heads=config.num_heads,
        hidden_dim=config.hidden_dim,
        intermediate_dim=config.intermediate_dim,
        dropout=config.dropout,
        start_token_id=start_token_id,
        end_token_id=end_token_id,
    )


@dataclasses.dataclass
class TrainedTextToText:
    """What `train` returns."""

    model: object
    tokenizer: object
    vocabulary: list
    history: dict
    train_seconds: float
    run_dir: object


def train(config, sources, targets, val_sources, val_targets, *, run_dir, strategy=None, log=print):
    """Trains an encoder-decoder on (source, target) texts.

    Args:
        config: a `TextToTextConfig`.
        sources, targets: training texts.
        val_sources, val_targets: validation texts (early stopping).
        run_dir: a `tfllm.training.RunDir`; an interrupted run resumes from it.
        strategy: a `tf.distribute` strategy (default: the current one).
        log: progress messages.

    Returns:
        A `TrainedTextToText`; the model holds the weights of the epoch with
        the lowest validation loss and is saved as `<run dir>/model.keras`.
    """
    import keras
    import tensorflow as tf

    from tfllm import text
    from tfllm.data import make_seq2seq_dataset
    from tfllm.training import global_batch_size, is_chief, local_copy, runs

    strategy = strategy or tf.distribute.get_strategy()
    keras.utils.set_random_seed(config.seed)
    vocabulary_path = run_dir.file("vocabulary.txt")
    if run_dir.resuming and os.path.exists(vocabulary_path):
        vocabulary = text.load_vocabulary(vocabulary_path)
        log(f"resuming: reusing {vocabulary_path}")
    else:
        vocabulary = text.build_wordpiece_vocabulary(
            list(sources) + list(targets), vocabulary_size=config.vocabulary_size, lowercase=not config.cased
        )
        text.save_vocabulary(vocabulary, vocabulary_path)
    tokenizer = _tokenizer(vocabulary, config.cased)
    _, start_id, end_id = special_ids(vocabulary)
    batch_size = global_batch_size(config.batch_size, strategy)

    def dataset(a, b, shuffle):
        return make_seq2seq_dataset(
            list(a), list(b), tokenizer=tokenizer, batch_size=batch_size,
            max_source_length=config.max_source_length, max_target_length=config.max_target_length,
            shuffle=shuffle, seed=config.seed,
        )

    train_data = dataset(sources, targets, True)
    val_data = dataset(val_sources, val_targets, False)
    with strategy.scope():
        model = build_model(config, len(vocabulary), start_id, end_id)
        model.build()
        # Bucketed batches come in up to 16 shapes; XLA would compile each one.
        model.compile(keras.optimizers.Adam(config.learning_rate, clipnorm=1.0), jit_compile=False)
    callbacks = runs.run_callbacks(run_dir, config.patience)
    if 0 < config.reduce_lr_patience < config.patience:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=config.reduce_lr_factor, patience=config.reduce_lr_patience,
            verbose=1 if config.verbose else 0,
        ))
    history, seconds = runs.fit_in_run_dir(
        model, train_data, val_data, run_dir, epochs=config.epochs, callbacks=callbacks, strategy=strategy,
        verbose=config.verbose, title=f"{config.model} seq2seq",
    )
    # Distributed variables do not export; a plain copy does (and decodes faster).
    model = local_copy(model)
    if is_chief(strategy):
        model.save(run_dir.file("model.keras"))
        write_text_atomically(
            run_dir.file("config.json"), json.dumps(dataclasses.asdict(config), indent=1, default=str) + "\n"
        )
    return TrainedTextToText(model, tokenizer, vocabulary, dict(history.history), seconds, run_dir)


def load_run(run_dir):
    """Loads `(model, tokenizer, vocabulary)` saved by `train` in `run_dir`.

    Raises:
        FileNotFoundError: the run directory holds no trained model.
    """
    import tfllm.models  # noqa: F401  (registers the model classes)
    from tfllm import text
    from tfllm.training.runs import load_trained_model

    model = load_trained_model(run_dir)
    vocabulary = text.load_vocabulary(os.path.join(os.fspath(run_dir), "vocabulary.txt"))
    return model, _tokenizer(vocabulary, run_cased(run_dir)), vocabulary


def _tokenizer(vocabulary, cased):
    from tfllm import text

    # "[SEP]" written in a text is the turn separator (tfllm.tasks.dialogue_context).
    return text.make_wordpiece_tokenizer(vocabulary, lowercase=not cased, special_tokens_in_strings=True)


def run_cased(run_dir):
    """Whether the run in `run_dir` keeps case (its config.json; False for runs before `cased`)."""
    path = os.path.join(os.fspath(run_dir), "config.json")
    if not os.path.exists(path):
        return False
    with open(path, encoding="utf-8") as f:
        return bool(json.load(f).get("cased", False))


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
        read_file: optional `read_file(path) -> frame (source, target
            columns)` for `.txt` files `load_table` does not read, or None.
        decoding: the decoding strategy `train` scores and exports with by
            default (the benchmarked one).
        context_turns: for dialogue tasks, the default turns of context
            (`tfllm.tasks.dialogue_context`) built from files and data sets
            whose pairs carry a "dialogue_id"; None for other tasks.
        no_repeat_ngram_size, repetition_penalty: the repetition control
            the CLI decodes with by default (see
            `tfllm.generation.SamplerConfig`).
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

    def read_pairs(self, *, data=None, dataset=None, split="validation", data_dir=None,
                   text_column=None, target_column=None, encoding="utf-8", context_turns=None):
        """`(sources, targets, description)` from a table file or a public data set's split.

        `context_turns` (default `self.context_turns`) re-pairs dialogues
        that carry a "dialogue_id" (DailyDialog) with that many turns of context.
        """
        from tfllm import data as tables

        if dataset:
            frame = self._turns(tables.load_dataset(dataset, split, data_dir=data_dir), context_turns)
            return list(frame[self.source_column]), list(frame[self.target_column]), f"{dataset} {split}"
        if self.read_file is not None and data.endswith(".txt"):
            frame = self._turns(self.read_file(data), context_turns)
            return list(frame[self.source_column]), list(frame[self.target_column]), data
        frame = tables.load_table(
            data, text_column or self.source_column, label_column=None,
            target_column=target_column or self.target_column, encoding=encoding,
        )
        return list(frame.text), list(frame.target), data

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
            train, val = (
                self._turns(data.load_dataset(source["dataset"], split, data_dir=source.get("data_dir")),
                            source.get("context_turns"))
                for split in ("train", "validation")
            )
            return (
                _limit(train[self.source_column], limit), _limit(train[self.target_column], limit),
                list(val[self.source_column]), list(val[self.target_column]),
                f"{source['dataset']} train / validation",
            )
        else:
            sources, targets, description = self.read_pairs(**source)
            frame = pd.DataFrame({"source": sources, "target": targets})
        frame = frame.iloc[:limit] if limit else frame
        train, val = data.train_val_split(frame, val_fraction, seed=seed, stratify_column=None)
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

"""Language-model pre-training: a text corpus in, a backbone and its tokenizer out.

Masked language modelling (`objective="mlm"`) trains an `EncoderBackbone`,
causal language modelling (`"causal"`) a `DecoderBackbone`. The corpus is
tokenized (a WordPiece vocabulary learned on it, or one id per character),
concatenated and cut into fixed-length windows (`tfllm.data.corpora`); the
first `1 - val_fraction` of the token stream trains, the rest validates.
MLM masks are drawn per batch inside `tf.data` (`language_model_data`). A run directory keeps

    <run dir>/tokenizer.json   tokenizer kind and size (+ vocabulary.txt for WordPiece)
    <run dir>/backbone/        the backbone and tokenizer (`save_to_preset`; `load_backbone`)
    <run dir>/...              checkpoints, backup, logs, curves (tfllm.training.runs)
"""

import dataclasses
import json
import math
import os
import time

import keras
import numpy as np

from tfllm._files import write_text_atomically
from tfllm.tasks.corpus_tokenizer import build_tokenizer, from_keras_hub
from tfllm.tasks.language_model_data import corpus_windows, make_lm_dataset, masked_token_loss  # noqa: F401

OBJECTIVES = ("mlm", "causal")
TOKENIZERS = ("wordpiece", "char")


@dataclasses.dataclass
class LanguageModelConfig:
    """Objective, tokenizer, model size and training settings of a pre-training run."""

    objective: str = "causal"
    tokenizer: str = "wordpiece"
    vocabulary_size: int = 8000  # WordPiece only; characters take what the corpus needs
    sequence_length: int = 128
    num_layers: int = 2
    num_heads: int = 4
    hidden_dim: int = 128
    intermediate_dim: int = 512
    dropout: float = 0.1
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 1e-3
    val_fraction: float = 0.1
    mask_rate: float = 0.15
    patience: int = 3
    steps_per_epoch: int = None
    seed: int = 0
    verbose: object = "auto"

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}. Received: objective={self.objective!r}")
        if self.tokenizer not in TOKENIZERS:
            raise ValueError(f"tokenizer must be one of {', '.join(TOKENIZERS)}. Received: tokenizer={self.tokenizer!r}")


def build_model(config, vocabulary_size):
    """`(backbone, language model)` for `config.objective`."""
    from tfllm.models import CausalLanguageModel, DecoderBackbone, EncoderBackbone, MaskedLanguageModel

    size = dict(
        vocabulary_size=vocabulary_size, num_layers=config.num_layers, num_heads=config.num_heads,
        hidden_dim=config.hidden_dim, intermediate_dim=config.intermediate_dim,
        max_sequence_length=config.sequence_length, dropout=config.dropout,
    )
    if config.objective == "causal":
        backbone = DecoderBackbone(**size)
        return backbone, CausalLanguageModel(backbone)
    backbone = EncoderBackbone(**size)
    return backbone, MaskedLanguageModel(backbone)


# Training.


class EpochThroughput(keras.callbacks.Callback):
    """Adds `tokens_per_second` (training steps only) and `val_perplexity` to each epoch's logs.

    Placed before the other callbacks, so that the progress bar, TensorBoard
    and the history record them. `log`, if given, also gets one line per epoch.
    """

    def __init__(self, tokens_per_epoch, log=None):
        super().__init__()
        self.tokens_per_epoch = tokens_per_epoch
        self.log = log

    def on_epoch_begin(self, epoch, logs=None):
        self.started, self.seconds = time.perf_counter(), None

    def on_test_begin(self, logs=None):
        if self.seconds is None and hasattr(self, "started"):
            self.seconds = time.perf_counter() - self.started

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        seconds = self.seconds or (time.perf_counter() - self.started)
        logs["tokens_per_second"] = self.tokens_per_epoch / max(seconds, 1e-9)
        if "val_loss" in logs:
            logs["val_perplexity"] = math.exp(min(float(logs["val_loss"]), 50.0))
        if self.log:
            self.log(f"epoch {epoch + 1}: {logs['tokens_per_second']:,.0f} tokens/s, loss {float(logs['loss']):.4f}, "
                     f"val_loss {float(logs.get('val_loss', float('nan'))):.4f}, "
                     f"val_perplexity {logs.get('val_perplexity', float('nan')):.2f}")


def pretrain(config, documents, *, run_dir, strategy=None, log=print):
    """Pre-trains a backbone on `documents` under `strategy`; an interrupted run resumes from `run_dir`.

    Args:
        config: a `LanguageModelConfig`.
        documents: texts (see `tfllm.data.corpora.read_corpus`).
        run_dir: a `tfllm.training.RunDir`.
        strategy: a `tf.distribute` strategy (default: the current one).
        log: progress messages.

    Returns:
        A dict of results: `"val_loss"` and `"val_perplexity"` of the weights
        kept (the epoch with the lowest validation loss); `"backbone_dir"` is where the chief saved the
        backbone and tokenizer (`load_backbone` reads it), None elsewhere;
        `"trained"` holds `(model, CorpusTokenizer)`, objects to pop before printing.
    """
    import tensorflow as tf

    from tfllm.training import global_batch_size, is_chief, local_copy, runs

    strategy = strategy or tf.distribute.get_strategy()
    keras.utils.set_random_seed(config.seed)
    tokenizer = build_tokenizer(config.tokenizer, documents, config.vocabulary_size, run_dir, log)
    train_windows, val_windows = corpus_windows(
        documents, tokenizer, config.sequence_length, config.objective, config.val_fraction
    )
    batch_size = global_batch_size(config.batch_size, strategy)
    options = dict(objective=config.objective, batch_size=batch_size, seed=config.seed, mask_rate=config.mask_rate)
    train_data = make_lm_dataset(train_windows, tokenizer, shuffle=True, **options)
    val_data = make_lm_dataset(val_windows, tokenizer, **options)
    steps_per_epoch = config.steps_per_epoch or -(-len(train_windows) // batch_size)
    tokens_per_epoch = steps_per_epoch * batch_size * config.sequence_length
    log(f"{len(train_windows)} train / {len(val_windows)} validation windows of {config.sequence_length} tokens "
        f"({config.tokenizer}, {tokenizer.vocabulary_size} ids), {strategy.num_replicas_in_sync} replica(s)")
    with strategy.scope():
        _, model = build_model(config, tokenizer.vocabulary_size)
        model.build()  # A resumed run loads its backup into the model before the first step.
        # Targets of -1 (padding, unmasked positions) are ignored by the loss; no other metric sees them.
        model.compile(keras.optimizers.Adam(config.learning_rate, clipnorm=1.0), loss=masked_token_loss,
                      metrics=[], weighted_metrics=[])
    # Keras' progress line shows the throughput too, unless it is silenced.
    throughput = EpochThroughput(tokens_per_epoch, log if config.verbose == 0 else None)
    callbacks = [throughput, *runs.run_callbacks(run_dir, config.patience)]
    history, seconds = runs.fit_in_run_dir(
        model, train_data, val_data, run_dir, epochs=config.epochs, callbacks=callbacks, strategy=strategy,
        steps_per_epoch=steps_per_epoch, verbose=config.verbose, title=f"{config.objective} language model",
    )
    history = history.history
    model = local_copy(model)
    backbone_dir = None
    if is_chief(strategy):
        backbone_dir = save_backbone(model.backbone, tokenizer, run_dir.file("backbone"))
        write_text_atomically(
            run_dir.file("config.json"), json.dumps(dataclasses.asdict(config), indent=1, default=str) + "\n"
        )
    losses = history.get("val_loss") or [float("nan")]
    # The first epoch's speed includes tracing the training step.
    speeds = (history.get("tokens_per_second") or [float("nan")])[-max(1, len(history.get("loss", [])) - 1):]
    return {
        "command": "pretrain",
        "objective": config.objective,
        "tokenizer": config.tokenizer,
        "vocabulary_size": tokenizer.vocabulary_size,
        "train_tokens": int(train_windows.size),
        "val_tokens": int(val_windows.size),
        "epochs_run": len(history.get("loss", [])),
        "loss": (history.get("loss") or [float("nan")])[-1],
        # Keras' EarlyStopping restores the best epoch's weights at the end, stopped early or not.
        "val_loss": min(losses),
        "val_perplexity": math.exp(min(min(losses), 50.0)),
        "tokens_per_second": round(float(np.mean(speeds)), 1),
        "train_seconds": round(seconds, 2),
        "backbone_dir": backbone_dir,
        "run_dir": run_dir.path,
        "trained": (model, tokenizer),
    }


def save_backbone(backbone, tokenizer, directory):
    """Saves a backbone and its tokenizer with keras_hub's `save_to_preset`; returns `directory`."""
    import shutil

    # A preset directory is written whole; an older one (a resumed run) goes first.
    shutil.rmtree(directory, ignore_errors=True)
    backbone.save_to_preset(directory)
    tokenizer.tokenizer.save_to_preset(directory)
    return directory


def load_pretrained(backbone_dir):
    """`(causal language model, CorpusTokenizer)` from a causal backbone directory `pretrain` wrote.

    Raises:
        FileNotFoundError: nothing at `backbone_dir`.
        ValueError: the backbone is not a decoder (an MLM encoder cannot generate).
    """
    import tfllm.text.characters  # noqa: F401  (registers CharTokenizer for loading)
    from tfllm.models import CausalLanguageModel, DecoderBackbone, load_backbone

    if not os.path.isdir(backbone_dir):
        raise FileNotFoundError(f"{backbone_dir}: no backbone directory (run pretrain first)")
    backbone, tokenizer = load_backbone(backbone_dir)
    if not isinstance(backbone, DecoderBackbone):
        raise ValueError(f"{backbone_dir}: a {type(backbone).__name__}; generate, evaluate and export need a "
                         "causal (decoder) backbone")
    return CausalLanguageModel(backbone), from_keras_hub(tokenizer)


@dataclasses.dataclass
class LanguageModelTask:
    """A pre-training app: its default recipes, demo sample and prompts.

    Attributes:
        name: app name; default run directory `runs/<name>`, export base
            path `saved_models/<name>`.
        sample: built-in text sample of the demo (`tfllm.data.corpora`).
        config: default `LanguageModelConfig` for `pretrain`.
        demo_config: the demo's (a character-level causal model).
        demo_prompts: prompts the demo continues at the end.
    """

    name: str
    sample: str
    config: LanguageModelConfig
    demo_config: LanguageModelConfig
    demo_prompts: tuple

    def documents(self, *, demo=False, data=None, text_column=None, encoding="utf-8"):
        """`(documents, description)`: the built-in sample, or the corpus at `data`."""
        from tfllm.data.corpora import load_text_sample, read_corpus

        if demo:
            return load_text_sample(self.sample), f"built-in {self.sample} sample"
        return read_corpus(data, text_column, encoding=encoding), data

    def pretrain(self, config, documents, description, *, run_dir=None, strategy=None, log=print):
        """Prepares the run directory and runs `pretrain`; returns its result (objects included)."""
        from tfllm.training import runs

        log(f"{description}: {len(documents)} document(s), {sum(map(len, documents)):,} characters")
        run_dir = runs.prepare_run_dir(run_dir or os.path.join("runs", self.name))
        result = pretrain(config, documents, run_dir=run_dir, strategy=strategy, log=log)
        return {**result, "data": description}

    @staticmethod
    def evaluate(backbone_dir, documents, *, batch_size=32):
        """Perplexity of the causal backbone at `backbone_dir` on `documents`."""
        from tfllm.tasks.causal_generator import corpus_perplexity

        model, tokenizer = load_pretrained(backbone_dir)
        started = time.perf_counter()
        scores = corpus_perplexity(model, tokenizer, documents, model.backbone.max_sequence_length,
                                   batch_size=batch_size)
        seconds = time.perf_counter() - started
        return {**scores, "seconds": round(seconds, 3), "tokens_per_second": round(scores["tokens"] / seconds, 1)}

    @staticmethod
    def generator(backbone_dir, decoding):
        """A `CausalGenerator` over the backbone at `backbone_dir` (`decoding`: its keyword arguments)."""
        from tfllm.tasks.causal_generator import CausalGenerator

        model, tokenizer = load_pretrained(backbone_dir)
        return CausalGenerator(model, tokenizer, **_decoding(model, decoding))

    def export(self, backbone_dir, export_dir, decoding):
        """Exports the backbone at `backbone_dir` as a text-in/text-out SavedModel; returns its path."""
        from tfllm.tasks.causal_generator import export_causal_generator

        model, tokenizer = load_pretrained(backbone_dir)
        return export_causal_generator(
            model, tokenizer, export_dir, warmup_texts=self.demo_prompts[:1], **_decoding(model, decoding)
        )


def _decoding(model, decoding):
    """`decoding` with `max_length` checked against the backbone's longest sequence (its default)."""
    decoding, limit = dict(decoding), model.backbone.max_sequence_length
    if decoding.get("max_length") and decoding["max_length"] > limit:
        raise ValueError(f"--max-length must be at most the backbone's {limit} tokens; got {decoding['max_length']}")
    decoding["max_length"] = decoding.get("max_length") or limit
    return decoding

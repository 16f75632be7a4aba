"""Training an encoder-decoder on (source, target) texts and loading the run back.

The model-and-run half of `tfllm.tasks.text_to_text`: the `TextToTextConfig`,
the model it names, `train` (WordPiece vocabulary, bucketed `tf.data`, the run
directory) and `load_run`. A run directory holds

    <run dir>/vocabulary.txt   shared source/target vocabulary
    <run dir>/config.json      the `TextToTextConfig` (`cased` tells how to tokenize)
    <run dir>/model.keras      the trained model (best validation loss)
    <run dir>/...              checkpoints, backup, logs, curves (tfllm.training.runs)
"""

import dataclasses
import json
import os

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

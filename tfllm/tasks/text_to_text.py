"""The text-to-text pipeline the summarization and dialogue apps share.

Build a WordPiece vocabulary on the training texts, train an encoder-decoder
on bucketed `tf.data`, generate text in process (XLA-compiled decoding) and
keep everything an export needs in a run directory:

    <run dir>/vocabulary.txt   shared source/target vocabulary
    <run dir>/model.keras      the trained model (best validation loss)
    <run dir>/...              checkpoints, backup, logs, curves (tfllm.cli)
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
        run_dir: a `tfllm.cli.RunDir`; an interrupted run resumes from it.
        strategy: a `tf.distribute` strategy (default: the current one).
        log: progress messages.

    Returns:
        A `TrainedTextToText`; the model holds the weights of the epoch with
        the lowest validation loss and is saved as `<run dir>/model.keras`.
    """
    import keras
    import tensorflow as tf

    from tfllm import cli, text
    from tfllm.data import make_seq2seq_dataset
    from tfllm.training import fit, global_batch_size

    strategy = strategy or tf.distribute.get_strategy()
    keras.utils.set_random_seed(config.seed)
    vocabulary_path = run_dir.file("vocabulary.txt")
    if run_dir.resuming and os.path.exists(vocabulary_path):
        vocabulary = text.load_vocabulary(vocabulary_path)
        log(f"resuming: reusing {vocabulary_path}")
    else:
        vocabulary = text.build_wordpiece_vocabulary(
            list(sources) + list(targets), vocabulary_size=config.vocabulary_size
        )
        text.save_vocabulary(vocabulary, vocabulary_path)
    tokenizer = text.make_wordpiece_tokenizer(vocabulary)
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
    callbacks = cli.run_callbacks(run_dir, config.patience)
    if 0 < config.reduce_lr_patience < config.patience:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=config.reduce_lr_factor, patience=config.reduce_lr_patience,
            verbose=1 if config.verbose else 0,
        ))
    started = time.perf_counter()
    history = fit(
        model, train_data, validation_data=val_data, epochs=config.epochs, callbacks=callbacks,
        strategy=strategy, backup_dir=run_dir.backup, verbose=config.verbose,
    )
    seconds = time.perf_counter() - started
    cli.save_history(history, run_dir.history)
    if history.history:
        cli.plot_history(history, run_dir.curves, title=f"{config.model} seq2seq")
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
    import keras

    import tfllm.models.lstm_seq2seq  # noqa: F401  (registers the model classes)
    import tfllm.models.transformer_seq2seq  # noqa: F401
    from tfllm import text

    path = os.fspath(run_dir)
    model_path = os.path.join(path, "model.keras")
    if not os.path.isfile(model_path):
        raise FileNotFoundError(f"{model_path}: no trained model here (run train first)")
    vocabulary = text.load_vocabulary(os.path.join(path, "vocabulary.txt"))
    model = keras.models.load_model(model_path, compile=False)
    return model, text.make_wordpiece_tokenizer(vocabulary), vocabulary


def generate_texts(model, tokenizer, texts, *, batch_size=64, **generate_kwargs):
    """Generates a string per input text with `model.generate` (XLA, bucketed).

    Matches what the export returns for the same decoding options.
    """
    import tensorflow as tf

    from tfllm.generation.export import detokenize

    texts, outputs = [str(t) for t in texts], []
    suppressed = set(model.suppressed_token_ids())
    for start in range(0, len(texts), batch_size):
        ids = tokenizer(tf.constant(texts[start : start + batch_size]))
        # keras_hub tokenizers return Python lists when called eagerly.
        ids = ids.to_list() if hasattr(ids, "to_list") else ids
        rows = [list(row)[: model.encoder_sequence_length] for row in ids]
        generated = model.generate(rows, **generate_kwargs)
        generated = [[t for t in row if t not in suppressed] for row in generated]
        lengths = [len(row) for row in generated]
        flat = tf.constant([t for row in generated for t in row], tf.int32)
        ragged = tf.RaggedTensor.from_row_lengths(flat, tf.constant(lengths, tf.int64))
        outputs.extend(s.decode("utf-8") for s in detokenize(tokenizer, ragged).numpy())
    return outputs


def model_perplexity(model, tokenizer, sources, targets, *, batch_size=64):
    """Teacher-forced perplexity of `targets` given `sources` (end token included)."""
    from tfllm.data import make_seq2seq_dataset
    from tfllm.metrics.generation import Perplexity

    data = make_seq2seq_dataset(
        list(sources), list(targets), tokenizer=tokenizer, batch_size=batch_size,
        max_source_length=model.encoder_sequence_length,
        max_target_length=model.decoder_sequence_length, shuffle=False, cache=False,
    )
    metric = Perplexity(from_logits=True, mask_token_id=model.pad_token_id)
    for x, y in data:
        metric.update_state(y, model(x, training=False))
    return float(metric.result())

"""Masked-LM training throughput: tfllm's encoder beside keras-hub's `BertMaskedLM` of the same size.

    TFLLM_DATA_DIR=../shared/data python bench/masked_lm.py [--steps 60] [--data FILE]

The language-model app's pre-training recipe for `--objective mlm`: a
WordPiece vocabulary learned on the corpus (`--vocabulary-size`), windows of
128 tokens, batches of 32 with a fresh 15% mask per batch
(`keras_hub.layers.MaskedLMMaskGenerator`), Adam with gradient clipping,
`masked_token_loss`, the app's default size (4 layers, 4 heads, 256-d,
1,024 feed-forward, dropout 0.1). tfllm's `EncoderBackbone` +
`MaskedLanguageModel` and keras-hub's `BertBackbone` + `BertMaskedLM` train on
the very same batches in the same run, under the same compile mode. Prints
ONE JSON line: tokens per second of both (steps after the first, which
compiles), their ratio, the losses, and tfllm's model FLOPs utilisation.
The corpus defaults to `$TFLLM_DATA_DIR/imdb/unsup.csv` (its `text` column;
the first `--documents` reviews).
"""

import argparse
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _flops import mfu_fields, training_flops_per_token  # noqa: E402

SIZE = dict(num_layers=4, num_heads=4, hidden_dim=256, intermediate_dim=1024)


def read_documents(args):
    from tfllm.data.corpora import read_corpus

    path = args.data or os.path.join(
        os.environ.get("TFLLM_DATA_DIR", os.path.join(HERE, "..", "..", "shared", "data")), "imdb", "unsup.csv"
    )
    column = args.text_column or ("text" if path.endswith((".csv", ".tsv", ".json", ".jsonl", ".parquet")) else None)
    return path, read_corpus(path, column)[: args.documents]


def mlm_flops_per_token(backbone, vocabulary_size, sequence_length, mask_fraction):
    """Training FLOPs per input token: the encoder's weights and attention, plus the head at masked slots."""
    hidden, layers = SIZE["hidden_dim"], SIZE["num_layers"]
    embeddings = sum(
        int(weight.shape.num_elements()) for weight in backbone.weights if "embedding" in weight.path
    )
    encoder = training_flops_per_token(backbone.count_params() - embeddings, layers, hidden, sequence_length)
    # The head (a dense transform and the tied vocabulary projection) runs only where a token is masked.
    return encoder + 6 * (hidden * hidden + hidden * vocabulary_size) * mask_fraction


def train(model, data, steps, loss, learning_rate):
    import keras

    model.compile(keras.optimizers.Adam(learning_rate, clipnorm=1.0), loss=loss, metrics=[], weighted_metrics=[])
    marks = []
    first_step = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: marks.append(time.perf_counter()) if batch == 0 else None
    )
    started = time.perf_counter()
    history = model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[first_step])
    ended = time.perf_counter()
    # Steps after the first, which traces and compiles the step function.
    return ended - started, (ended - marks[0]) / max(1, steps - 1), float(history.history["loss"][-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60, help="training steps per model (default: %(default)s)")
    parser.add_argument("--data", help="a text file, folder or table (default: $TFLLM_DATA_DIR/imdb/unsup.csv)")
    parser.add_argument("--text-column", help="the text column of a table corpus (default: text)")
    parser.add_argument("--documents", type=int, default=5000, help="use the first N documents")
    parser.add_argument("--vocabulary-size", type=int, default=8000)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--small", action="store_true", help=argparse.SUPPRESS)  # tests: a 1-layer, 32-d model
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.small:
        SIZE.update(num_layers=1, num_heads=2, hidden_dim=32, intermediate_dim=64)

    import keras
    import keras_hub

    from tfllm.models import EncoderBackbone, MaskedLanguageModel
    from tfllm.tasks.corpus_tokenizer import build_tokenizer
    from tfllm.tasks.language_model_data import corpus_windows, make_lm_dataset, masked_token_loss
    from tfllm.training import runs

    path, documents = read_documents(args)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = runs.prepare_run_dir(tmp)
        tokenizer = build_tokenizer("wordpiece", documents, args.vocabulary_size, run_dir, log=lambda message: None)
    windows, _ = corpus_windows(documents, tokenizer, args.sequence_length, "mlm", val_fraction=0.01)
    vocabulary_size, length = tokenizer.vocabulary_size, args.sequence_length
    size = dict(**SIZE, vocabulary_size=vocabulary_size, max_sequence_length=length, dropout=0.1)
    results = {}
    for name in ("tfllm", "keras_hub"):
        keras.utils.set_random_seed(args.seed)
        if name == "tfllm":
            backbone = EncoderBackbone(**size)
            model = MaskedLanguageModel(backbone)
        else:
            backbone = keras_hub.models.BertBackbone(**size)
            model = keras_hub.models.BertMaskedLM(backbone=backbone, preprocessor=None)
        data = make_lm_dataset(windows, tokenizer, "mlm", args.batch_size, shuffle=True, seed=args.seed)
        seconds, step_seconds, loss = train(model, data, args.steps, masked_token_loss, 1e-3)
        results[name] = {"train_seconds": seconds, "step_seconds": step_seconds, "train_loss": loss,
                         "params": model.count_params(), "backbone": backbone}
    ours, theirs = results["tfllm"], results["keras_hub"]
    step_tokens = args.batch_size * length
    tokens_per_second = step_tokens / ours["step_seconds"]
    keras_hub_tokens_per_second = step_tokens / theirs["step_seconds"]
    flops = mlm_flops_per_token(ours["backbone"], vocabulary_size, length, 0.15)
    print(json.dumps({
        "data": path, "documents": len(documents), "train_windows": int(len(windows)),
        "vocabulary_size": vocabulary_size,
        "config": {**SIZE, "sequence_length": length, "batch_size": args.batch_size, "steps": args.steps,
                   "mask_rate": 0.15, "dropout": 0.1},
        "tokens_per_second": round(tokens_per_second, 1),
        "keras_hub_tokens_per_second": round(keras_hub_tokens_per_second, 1),
        "vs_keras_hub_ratio": round(tokens_per_second / keras_hub_tokens_per_second, 3),
        "train_loss": round(ours["train_loss"], 4), "keras_hub_train_loss": round(theirs["train_loss"], 4),
        "train_seconds": round(ours["train_seconds"], 2), "keras_hub_train_seconds": round(theirs["train_seconds"], 2),
        "params": ours["params"], "keras_hub_params": theirs["params"],
        **mfu_fields(flops, tokens_per_second),
        "load_average": round(os.getloadavg()[0], 2),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

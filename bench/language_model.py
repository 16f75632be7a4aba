"""Character-level tiny Shakespeare with nanoGPT's CPU configuration, beside keras-hub's GPT-2.

    TFLLM_DATA_DIR=../shared/data python bench/language_model.py [--iterations 2000]

nanoGPT's `shakespeare_char` CPU run: 4 layers, 4 heads, 128-d, context 64,
batch 12, 2,000 iterations, no dropout; AdamW (learning rate 1e-3, 100
warm-up steps, cosine decay to 1e-4, beta2 0.99, weight decay 0.1 on
matrices and embeddings only, gradient norm clipped at 1). The first 90% of the characters train (batches of random
windows, the same for both models), the last 10% validate: the loss is the
mean cross-entropy (nats) of every next-character prediction in consecutive
64-character windows. tfllm's `DecoderBackbone` + `CausalLanguageModel` and
keras-hub's `GPT2Backbone` + `GPT2CausalLM` of the same size train the same
way in the same run. Prints ONE JSON line: validation loss, wall time,
tokens per second of both (steps after the first, which compiles; with the
compile in `*_with_compile`), and tfllm's model FLOPs utilisation (training
FLOPs per second over the fp32 peak of the CPUs this process may use).
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _flops import mfu_fields, training_flops_per_token  # noqa: E402

CONFIG = dict(num_layers=4, num_heads=4, hidden_dim=128, intermediate_dim=512, context=64, batch_size=12)


def read_corpus(args):
    path = args.data or os.path.join(
        os.environ.get("TFLLM_DATA_DIR", os.path.join(HERE, "..", "..", "shared", "data")),
        "lm", "tiny_shakespeare", "input.txt",
    )
    from tfllm.data.corpora import read_corpus as read

    return path, read(path)[0]


def batches(train, iterations, batch_size, context, seed):
    """`iterations` batches of `batch_size` random windows (inputs, next-character targets)."""
    import tensorflow as tf

    stream = tf.constant(train)
    offsets = tf.range(context + 1)

    def window(step):
        starts = tf.random.stateless_uniform(
            [batch_size], seed=tf.stack([tf.cast(seed, tf.int64), step]), maxval=len(train) - context - 1,
            dtype=tf.int64,
        )
        rows = tf.gather(stream, starts[:, None] + tf.cast(offsets, tf.int64)[None, :])
        inputs = rows[:, :-1]
        return {"token_ids": inputs, "padding_mask": tf.ones_like(inputs)}, rows[:, 1:]

    return tf.data.Dataset.range(iterations).map(window).prefetch(tf.data.AUTOTUNE)


def val_loss(model, val, context, batch_size=64):
    import numpy as np
    import tensorflow as tf

    count = (len(val) - 1) // context
    inputs = val[: count * context].reshape(count, context)
    targets = val[1 : count * context + 1].reshape(count, context)
    total = 0.0
    for start in range(0, count, batch_size):
        x = inputs[start : start + batch_size]
        logits = model.predict_on_batch({"token_ids": x, "padding_mask": np.ones_like(x)})
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(targets[start : start + batch_size], logits)
        total += float(tf.reduce_sum(nll))
    return total / targets.size


def train(model, data, iterations, jit_compile):
    import keras

    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(1, iterations - 100), alpha=0.1, warmup_target=1e-3, warmup_steps=min(100, iterations),
    )
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=0.1, beta_2=0.99, global_clipnorm=1.0)
    # As nanoGPT: matrices and embeddings decay, biases and normalisation scales do not.
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    model.compile(
        optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit_compile,
    )
    marks = []
    first_step = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: marks.append(time.perf_counter()) if batch == 0 else None
    )
    started = time.perf_counter()
    history = model.fit(data, epochs=1, verbose=0, callbacks=[first_step])
    ended = time.perf_counter()
    # Steps after the first, which traces and compiles the step function.
    steady = (ended - marks[0]) / max(1, iterations - 1)
    return ended - started, steady, float(history.history["loss"][-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=2000, help="training steps (default: %(default)s)")
    parser.add_argument("--data", help="a text file (default: $TFLLM_DATA_DIR/lm/tiny_shakespeare/input.txt)")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--no-jit", dest="jit", action="store_false", help="train without XLA")
    args = parser.parse_args(argv)

    import keras
    import keras_hub

    from tfllm.models import CausalLanguageModel, DecoderBackbone
    from tfllm.text.characters import char_vocabulary_size, encode_chars

    path, text = read_corpus(args)
    vocabulary_size = char_vocabulary_size([text])
    ids = encode_chars(text, vocabulary_size)
    cut = int(len(ids) * 0.9)
    train_ids, val_ids = ids[:cut], ids[cut:]
    size = {key: CONFIG[key] for key in ("num_layers", "num_heads", "hidden_dim", "intermediate_dim")}
    context, batch_size = CONFIG["context"], CONFIG["batch_size"]
    tokens = args.iterations * batch_size * context
    results = {}
    for name in ("tfllm", "keras_hub"):
        keras.utils.set_random_seed(args.seed)
        if name == "tfllm":
            backbone = DecoderBackbone(vocabulary_size, **size, max_sequence_length=context, dropout=0.0)
            model = CausalLanguageModel(backbone)
        else:
            backbone = keras_hub.models.GPT2Backbone(vocabulary_size, **size, max_sequence_length=context, dropout=0.0)
            model = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
        data = batches(train_ids, args.iterations, batch_size, context, args.seed)
        seconds, step_seconds, loss = train(model, data, args.iterations, args.jit)
        results[name] = {"train_seconds": seconds, "step_seconds": step_seconds, "train_loss": loss, "val_loss": val_loss(model, val_ids, context),
                         "params": backbone.count_params()}
    ours, theirs = results["tfllm"], results["keras_hub"]
    flops = training_flops_per_token(ours["params"], CONFIG["num_layers"], CONFIG["hidden_dim"], context)
    step_tokens = batch_size * context
    tokens_per_second = step_tokens / ours["step_seconds"]
    print(json.dumps({
        "data": path,
        "train_characters": int(len(train_ids)), "val_characters": int(len(val_ids)),
        "vocabulary_size": vocabulary_size,
        "config": {**CONFIG, "iterations": args.iterations, "dropout": 0.0, "jit_compile": args.jit},
        "val_loss": round(ours["val_loss"], 4),
        "mean_train_loss": round(ours["train_loss"], 4),
        "train_seconds": round(ours["train_seconds"], 2),
        "tokens_per_second": round(tokens_per_second, 1),
        "keras_hub_val_loss": round(theirs["val_loss"], 4),
        "keras_hub_train_seconds": round(theirs["train_seconds"], 2),
        "keras_hub_tokens_per_second": round(step_tokens / theirs["step_seconds"], 1),
        "tokens_per_second_with_compile": round(tokens / ours["train_seconds"], 1),
        "keras_hub_tokens_per_second_with_compile": round(tokens / theirs["train_seconds"], 1),
        "params": ours["params"], "keras_hub_params": theirs["params"],
        **mfu_fields(flops, tokens_per_second),
        "nanogpt_reference_val_loss": 1.88,
        "load_average": round(os.getloadavg()[0], 2),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

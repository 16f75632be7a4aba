"""Speed of tfllm layers against their Keras / keras_hub references, measured in one run.

Prints one JSON line:
- `encoder_step_ratio`: training-step time of a 2-block `TransformerEncoderBlock`
  stack (d_model 128, 4 heads, ffn 512, seq 128, batch 32) divided by the same
  stack of `keras_hub.layers.TransformerEncoder`;
- `mha_forward_ratio`: forward time of `tfllm.layers.MultiHeadAttention` divided
  by `keras.layers.MultiHeadAttention` (self-attention, same shapes);
each the median over `--repeats` paired repeats, plus the raw timings (ms),
and `mfu`: the tfllm stack's training FLOPs per second over the CPUs' fp32
peak (bench/_flops.py).

Both sides run under the same compile mode (`tf.function`, plus XLA with
`--jit`), with the same weights, after warm-up steps that are not timed. The
two sides alternate within every repeat so machine load hits both alike.

Usage: python bench/layers.py [--repeats 31] [--steps 1] [--jit] [--dropout 0.0] [--threads N] [--ablation]
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfllm.layers import MultiHeadAttention, TransformerEncoderBlock  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _flops import mfu_fields, training_flops_per_token  # noqa: E402

BATCH, LENGTH, HIDDEN, HEADS, FFN, BLOCKS = 32, 128, 128, 4, 512, 2


def encoder_stack(block_cls, dropout):
    inputs = keras.Input((LENGTH, HIDDEN))
    x = inputs
    for _ in range(BLOCKS):
        x = block_cls(FFN, HEADS, dropout=dropout)(x)
    return keras.Model(inputs, x)


def train_step_fn(model, jit):
    optimizer = keras.optimizers.Adam(1e-4)
    optimizer.build(model.trainable_variables)

    @tf.function(jit_compile=jit)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    return step


def time_ms(fn, args, steps):
    """Per-step (wall ms, process CPU ms) over `steps` calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        out = fn(*args)
    np.asarray(tf.nest.flatten(out)[0])  # waits for the last step
    return (
        (time.perf_counter() - wall) * 1000.0 / steps,
        (time.process_time() - cpu) * 1000.0 / steps,
    )


def paired(fns, args, steps, repeats, warmup):
    """Median per-step ms of two fns and their median paired ratio.

    Every repeat times `steps` calls of each fn back to back, in alternating
    order, so load from other processes hits both sides of a pair alike.

    Returns `{"wall": ..., "cpu": ...}`, each `(first_ms, second_ms, ratio)`.
    """
    for fn in fns:
        time_ms(fn, args, warmup)
    samples = [[] for _ in fns]
    for repeat in range(repeats):
        order = (0, 1) if repeat % 2 == 0 else (1, 0)
        for i in order:
            samples[i].append(time_ms(fns[i], args, steps))
    result = {}
    for j, clock in enumerate(("wall", "cpu")):
        first, second = [s[j] for s in samples[0]], [s[j] for s in samples[1]]
        ratio = statistics.median(a / b for a, b in zip(first, second))
        result[clock] = (statistics.median(first), statistics.median(second), ratio)
    return result


class _SequenceFirstAttention(MultiHeadAttention):
    """Ablation: heads kept as (batch, len, heads, d), parts cut with slices.

    `einsum("bthd,bshd->bhts")` then transposes q, k and v (and the output)
    inside every call, as keras' attention does.
    """

    def _split_heads(self, x, head_dims):
        batch, length, h = tf.shape(x)[0], tf.shape(x)[1], self.num_heads
        parts, start = [], 0
        for d in head_dims:
            part = tf.reshape(x[..., start : start + h * d], (batch, length, h, d))
            parts.append(part)
            start += h * d
        return parts

    def _attend(self, q, k, v, mask, training):
        q = q * (1.0 / float(self.key_dim) ** 0.5)
        scores = tf.nn.softmax(tf.einsum("bthd,bshd->bhts", q, k), axis=-1)
        output = tf.einsum("bhts,bshd->bthd", scores, v)
        return tf.transpose(output, (0, 2, 1, 3)), scores  # back to (batch, heads, len, d)


class _IndexedSplitAttention(MultiHeadAttention):
    """Ablation: heads-first layout, but parts taken by indexing instead of unstack."""

    def _split_heads(self, x, head_dims):
        batch, length, h = tf.shape(x)[0], tf.shape(x)[1], self.num_heads
        x = tf.reshape(x, (batch, length, len(head_dims), h, head_dims[0]))
        x = tf.transpose(x, (2, 0, 3, 1, 4))  # (parts, batch, heads, len, d)
        return [x[i] for i in range(len(head_dims))]


def ablation(mha, keras_mha, x, args):
    """Forward+backward ms of keras MHA and of tfllm MHA variants, same weights.

    Passing a copy of `x` as value (and key) makes the layer take its
    cross-attention path (Q + fused KV) or three separate projections with the
    same attention code; the two subclasses above undo one layout choice each.
    """

    def grad_fn(layer, variant):
        @tf.function(jit_compile=args.jit)
        def step(q):
            with tf.GradientTape() as tape:
                if variant == "fused_qkv":
                    y = layer(q, q)
                elif variant == "q_plus_fused_kv":
                    y = layer(q, tf.identity(q))
                else:
                    y = layer(q, tf.identity(q), key=tf.identity(q))
                loss = tf.reduce_sum(tf.square(y))
            return tape.gradient(loss, layer.trainable_variables)

        return step

    variants = {variant: (mha, variant) for variant in ("fused_qkv", "q_plus_fused_kv", "separate_qkv")}
    subclasses = {"sequence_first_layout": _SequenceFirstAttention, "indexed_split": _IndexedSplitAttention}
    for name, cls in subclasses.items():
        layer = cls(mha.num_heads, mha.key_dim, name=name)
        layer(x, x)
        layer.set_weights(mha.get_weights())
        variants[name] = (layer, "fused_qkv")
    result = {}
    reference = grad_fn(keras_mha, "fused_qkv")
    for name, (layer, variant) in variants.items():
        timings = paired([grad_fn(layer, variant), reference], (x,), args.steps, args.repeats, args.warmup)
        result.setdefault("keras_ms", {clock: round(v[1], 2) for clock, v in timings.items()})
        result[name] = {
            "ms": {clock: round(v[0], 2) for clock, v in timings.items()},
            "ratio_to_keras": {clock: round(v[2], 3) for clock, v in timings.items()},
        }
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=31, help="timed pairs per comparison")
    parser.add_argument("--steps", type=int, default=1, help="training steps per timing (forward: 3x)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--dropout", type=float, default=0.0, help="dropout of the encoder blocks")
    parser.add_argument("--jit", action="store_true", help="compile both sides with XLA")
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="also time tfllm MHA forward+backward variants (projection fusion, head layout)",
    )
    parser.add_argument("--threads", type=int, default=0, help="TF intra/inter-op threads (0: TF default)")
    args = parser.parse_args(argv)
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(BATCH, LENGTH, HIDDEN)).astype("float32"))
    y = tf.constant(rng.normal(size=(BATCH, LENGTH, HIDDEN)).astype("float32"))

    reference = encoder_stack(keras_hub.layers.TransformerEncoder, args.dropout)
    ours = encoder_stack(TransformerEncoderBlock, args.dropout)
    for mine, theirs in zip(ours.layers[1:], reference.layers[1:]):
        mine.load_keras_hub_weights(theirs)
    np.testing.assert_allclose(ours(x), reference(x), atol=1e-4)
    encoder = paired(
        [train_step_fn(ours, args.jit), train_step_fn(reference, args.jit)],
        (x, y),
        args.steps,
        args.repeats,
        args.warmup,
    )

    keras_mha = keras.layers.MultiHeadAttention(HEADS, HIDDEN // HEADS)
    keras_mha(x, x)
    mha = MultiHeadAttention(HEADS, HIDDEN // HEADS)
    mha(x, x)
    mha.load_keras_weights(keras_mha)
    np.testing.assert_allclose(mha(x, x), keras_mha(x, x), atol=1e-4)
    forward = [tf.function(lambda q, m=m: m(q, q), jit_compile=args.jit) for m in (mha, keras_mha)]
    attention = paired(forward, (x,), args.steps * 3, args.repeats, args.warmup)

    flops = training_flops_per_token(ours.count_params(), BLOCKS, HIDDEN, LENGTH)
    tokens_per_second = BATCH * LENGTH / (encoder["wall"][0] / 1000.0)
    extra = {"encoder_tokens_per_second": round(tokens_per_second, 1), **mfu_fields(flops, tokens_per_second)}
    if args.ablation:
        extra["mha_train_ablation"] = ablation(mha, keras_mha, x, args)

    print(
        json.dumps(
            {
                "encoder_step_ratio": round(encoder["wall"][2], 3),
                "mha_forward_ratio": round(attention["wall"][2], 3),
                "encoder_step_cpu_ratio": round(encoder["cpu"][2], 3),
                "mha_forward_cpu_ratio": round(attention["cpu"][2], 3),
                "encoder_step_ms": {
                    clock: {"tfllm": round(v[0], 2), "keras_hub": round(v[1], 2)} for clock, v in encoder.items()
                },
                "mha_forward_ms": {
                    clock: {"tfllm": round(v[0], 3), "keras": round(v[1], 3)} for clock, v in attention.items()
                },
                "config": {
                    "batch": BATCH,
                    "sequence_length": LENGTH,
                    "d_model": HIDDEN,
                    "num_heads": HEADS,
                    "ffn": FFN,
                    "blocks": BLOCKS,
                    "dropout": args.dropout,
                    "jit_compile": args.jit,
                    "threads": args.threads or "default",
                    "repeats": args.repeats,
                    "steps": args.steps,
                    "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU",
                },
                **extra,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

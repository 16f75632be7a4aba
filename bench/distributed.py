"""Distributed-training throughput: 1 vs 2 logical CPU devices vs 2 local workers (and GPUs).

Trains the same Embedding + LSTM sentiment classifier (the reference
material's model) on SST-2 sentences with the same global batch and seed under
each configuration, each in its own process (devices and cluster are fixed per
process), through `tfllm.training.fit`:

- `1_device`: the default strategy on one CPU device (`model.fit`);
- `2_devices`: MirroredStrategy over 2 logical CPU devices (`model.fit`);
- `2_devices_custom_loop`: the same through the `strategy.run` loop, which
  prices the loop against `model.fit`;
- `2_workers`: MultiWorkerMirroredStrategy, two local processes on 127.0.0.1
  (the `strategy.run` loop, since Keras 3's fit fails there);
- on a machine with GPUs, also 1 GPU vs MirroredStrategy over all GPUs.

Prints ONE JSON line: steps/s per configuration (the fastest of 3 timed
epochs, after one untimed warm-up epoch that traces), speed-ups against
`1_device` measured in the same run, and whether the per-epoch losses matched.
On a shared machine the numbers move with the other load; compare ratios from
one run.

    python bench/distributed.py [--steps 50] [--batch 64]
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = os.environ.get("TFLLM_DATA_DIR", os.path.join(REPO, "..", "shared", "data"))
VOCAB, SEQ_LEN, EMBED, UNITS = 10000, 48, 64, 64
TIMED_EPOCHS = 3


def _sentences(n):
    """First `n` SST-2 training rows, or a seeded synthetic stand-in when absent."""
    path = os.path.join(DATA_DIR, "sst2", "train.tsv")
    if os.path.exists(path):
        import pandas as pd

        frame = pd.read_csv(path, sep="\t", quoting=3, nrows=n)
        return frame["sentence"].astype(str).tolist(), frame["label"].astype("int32").tolist(), "sst2"
    import numpy as np

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(2000)]
    texts = [" ".join(rng.choice(words, size=rng.integers(4, 30))) for _ in range(n)]
    return texts, rng.integers(0, 2, size=n).astype("int32").tolist(), "synthetic"


def run_child(args):
    """One configuration: trains and prints a JSON result line."""
    from tfllm import training

    strategy = training.configure_from_args(args)

    import keras
    import numpy as np
    import tensorflow as tf

    texts, labels, source = _sentences(args.batch * args.steps)
    vectorize = keras.layers.TextVectorization(max_tokens=VOCAB, output_sequence_length=SEQ_LEN)
    vectorize.adapt(texts)
    tokens = vectorize(np.array(texts)).numpy()
    dataset = (
        tf.data.Dataset.from_tensor_slices((tokens, np.array(labels)))
        .batch(args.batch, drop_remainder=True)
        .repeat()
        .prefetch(tf.data.AUTOTUNE)
    )
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = keras.Sequential([
            keras.Input((SEQ_LEN,), dtype="int64"),
            keras.layers.Embedding(VOCAB, EMBED),
            keras.layers.LSTM(UNITS),
            keras.layers.Dense(2, activation="softmax", dtype="float32"),
        ])
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if epoch > 0:  # epoch 0 traces and warms up
                self.seconds.append(time.perf_counter() - self.start)

    timer = Timer()
    history = training.fit(
        model, dataset, epochs=1 + TIMED_EPOCHS, steps_per_epoch=args.steps,
        callbacks=[timer], verbose=0, strategy=strategy, loop=args.loop,
    )
    print(json.dumps({
        # The fastest epoch: the least disturbed by other load on the machine.
        "steps_per_s": args.steps / min(timer.seconds),
        "losses": history.history["loss"],
        "replicas": strategy.num_replicas_in_sync,
        "strategy": type(strategy).__name__,
        "data": source,
        "chief": training.is_chief(strategy),
    }))
    return 0


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(extra, env_updates, args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **env_updates)
    env["PYTHONPATH"] = os.pathsep.join([REPO, env.get("PYTHONPATH", "")])
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--steps", str(args.steps),
           "--batch", str(args.batch), *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _collect(processes, timeout):
    deadline = time.monotonic() + timeout
    results = []
    try:
        for p in processes:
            out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            if p.returncode != 0:
                raise RuntimeError(f"benchmark child failed ({p.returncode}): {err[-2000:]}")
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    return results


def _run(extra, args, cpu_only=True):
    env = {"CUDA_VISIBLE_DEVICES": "-1"} if cpu_only else {}
    return _collect([_launch(extra, env, args)], args.timeout)[0]


def _run_workers(n, args):
    workers = [f"127.0.0.1:{_free_port()}" for _ in range(n)]
    processes = [
        _launch(["--strategy", "multiworker", "--mixed-precision", "off"], {
            "CUDA_VISIBLE_DEVICES": "-1",
            "TF_CONFIG": json.dumps({"cluster": {"worker": workers},
                                     "task": {"type": "worker", "index": i}}),
        }, args)
        for i in range(n)
    ]
    results = _collect(processes, args.timeout)
    return next(r for r in results if r["chief"])


def _gpu_count():
    probe = subprocess.run(
        [sys.executable, "-c", "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"],
        capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    try:
        return int(probe.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return 0


def _losses_match(runs, rtol):
    reference = runs[0]["losses"]
    diff = max(
        abs(a - b) / max(abs(b), 1e-12) for run in runs[1:] for a, b in zip(run["losses"], reference)
    )
    return diff <= rtol, diff


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="steps per epoch (%(default)s)")
    parser.add_argument("--batch", type=int, default=64, help="global batch size (%(default)s)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per configuration")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--loop", default="auto", help=argparse.SUPPRESS)
    from tfllm.cli.arguments import add_training_arguments

    add_training_arguments(parser)
    args = parser.parse_args(argv)
    if args.child:
        return run_child(args)

    cpu = {
        "1_device": _run(["--strategy", "default", "--mixed-precision", "off"], args),
        "2_devices": _run(["--strategy", "mirrored", "--simulate-devices", "2",
                           "--mixed-precision", "off"], args),
        "2_devices_custom_loop": _run(["--strategy", "mirrored", "--simulate-devices", "2",
                                       "--mixed-precision", "off", "--loop", "custom"], args),
        "2_workers": _run_workers(2, args),
    }
    match, diff = _losses_match(list(cpu.values()), rtol=1e-4)
    base = cpu["1_device"]["steps_per_s"]
    result = {
        "benchmark": "distributed",
        "model": f"Embedding({VOCAB},{EMBED})+LSTM({UNITS})+Dense(2), seq_len {SEQ_LEN}",
        "data": cpu["1_device"]["data"],
        "global_batch": args.batch,
        "timing": f"best of {TIMED_EPOCHS} epochs of {args.steps} steps after 1 warm-up epoch",
        "cpu_cores": os.cpu_count(),
        "cpu_steps_per_s": {k: round(v["steps_per_s"], 3) for k, v in cpu.items()},
        "cpu_speedup_vs_1_device": {k: round(v["steps_per_s"] / base, 3) for k, v in cpu.items()},
        "losses_match": match,
        "max_rel_loss_diff": float(f"{diff:.3g}"),
    }
    gpus = _gpu_count()
    if gpus:
        one = _run(["--strategy", "default", "--mixed-precision", "off"], args, cpu_only=False)
        runs = {"1_gpu": one}
        if gpus > 1:
            runs[f"{gpus}_gpus"] = _run(["--strategy", "mirrored", "--mixed-precision", "off"],
                                        args, cpu_only=False)
        gpu_match, gpu_diff = _losses_match(list(runs.values()), rtol=1e-3) if gpus > 1 else (None, None)
        result["gpu"] = {
            "count": gpus,
            "steps_per_s": {k: round(v["steps_per_s"], 3) for k, v in runs.items()},
            "speedup_vs_1_gpu": {k: round(v["steps_per_s"] / one["steps_per_s"], 3) for k, v in runs.items()},
            "losses_match": gpu_match,
            "max_rel_loss_diff": gpu_diff,
        }
    else:
        result["gpu"] = None
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Generation speed: key/value cache versus recomputation, and tfllm versus keras_hub.

    python bench/generation.py [--new-tokens 128] [--batch-size 4] [--repeats 3]

Prints ONE JSON line. `cache_speedup` is new tokens per second of
`CausalLM.generate` with the key/value cache divided by the same model
recomputing the whole prefix every step. `vs_keras_hub_ratio` is tfllm
`CausalLM` tokens per second divided by `keras_hub.models.GPT2CausalLM`
built from a config of the same size (random weights, no download), both
greedy, XLA-compiled, in this run. Compilation is excluded (one warm-up call
each); the median of `--repeats` timed calls is reported. Models and
measurements alternate, so background load affects both sides alike.
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--prompt-length", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--vocabulary-size", type=int, default=8000)
    parser.add_argument("--num-layers", type=int, default=4)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--hidden-dim", type=int, default=256)
    parser.add_argument("--intermediate-dim", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import keras
    import keras_hub
    import numpy as np

    from tfllm.models.causal_lm import CausalLM

    keras.utils.set_random_seed(0)
    total = args.prompt_length + args.new_tokens
    size = dict(
        num_layers=args.num_layers, num_heads=args.num_heads,
        hidden_dim=args.hidden_dim, intermediate_dim=args.intermediate_dim,
    )
    # Same sequence length for both, so neither pads its cache beyond the other.
    ours = CausalLM(args.vocabulary_size, total, dropout=0.0, **size)
    ours.build()
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=args.vocabulary_size, max_sequence_length=total, dropout=0.0, **size
    )
    reference = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    reference.compile(sampler="greedy")

    rng = np.random.default_rng(0)
    prompts = rng.integers(1, args.vocabulary_size, (args.batch_size, args.prompt_length)).astype("int32")
    padded = np.zeros((args.batch_size, total), "int32")
    padded[:, : args.prompt_length] = prompts
    mask = np.zeros((args.batch_size, total), bool)
    mask[:, : args.prompt_length] = True

    runs = {
        "cached": lambda: ours.generate(prompts, total, stop_token_ids=None),
        "recompute": lambda: ours.generate(prompts, total, stop_token_ids=None, use_cache=False),
        "keras_hub": lambda: reference.generate(
            {"token_ids": padded, "padding_mask": mask}, stop_token_ids=None
        ),
    }
    compile_seconds = {}
    for name, run in runs.items():
        started = time.perf_counter()
        run()
        compile_seconds[name] = round(time.perf_counter() - started, 2)
    times = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    new_tokens = args.batch_size * args.new_tokens
    speed = {name: new_tokens / statistics.median(values) for name, values in times.items()}
    print(json.dumps({
        "cache_speedup": round(speed["cached"] / speed["recompute"], 2),
        "vs_keras_hub_ratio": round(speed["cached"] / speed["keras_hub"], 3),
        "tokens_per_second": {name: round(value, 1) for name, value in speed.items()},
        "first_call_seconds": compile_seconds,
        "config": {**vars(args), "sampler": "greedy", "xla": True, "parameters": ours.count_params()},
        "load_average": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()

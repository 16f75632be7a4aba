"""Fuzzing benchmark: every fuzz target, the same number of cases each, one JSON line.

Targets come from `bench/_fuzz_*.py` modules (`_fuzz_serving`: the model
server's REST and gRPC APIs; `_fuzz_data`: the table and corpus loaders;
`_fuzz_task_data`: the CoNLL, entity table, SQuAD and text corpus readers;
a module missing from a checkout is skipped).
Each module has `TARGETS: {name: callable(data: bytes)}`; a target raises
`AssertionError` when a property fails, and any other exception is a crash.
A module may add `SEEDS: {name: [bytes]}` (valid inputs to mutate) and
`close()`.

Inputs come from a seeded `random.Random`: half random bytes, half
structure-aware mutations (byte flips, insertions of JSON and protobuf
tokens, deletions, splices) of the seeds and of earlier inputs, so a run is
reproducible from `--seed`.

    .venv/bin/python bench/fuzz.py [--cases 10000] [--seed 0] [--targets serving_rest,serving_grpc]

Prints ONE JSON line: per target `cases`, `failures`, `crashes`, `seconds`
and the first failure's message; `skipped` names modules that are missing.
"""

import argparse
import contextlib
import importlib
import json
import os
import random
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MODULES = ("_fuzz_serving", "_fuzz_data", "_fuzz_task_data")
# Bytes that change how JSON, protobuf varints and text decoders read what follows.
TOKENS = (b"{", b"}", b"[", b"]", b'"', b",", b":", b"\\u", b"\xff", b"\x00", b"\x80",
          b"\xc3", b"-1", b"1e999", b"99999999999999999999", b"null", b"\n", b"\r\n",
          b"\t", b'{"b64": "', b"\xff\xff\xff\xff\x0f")
MAX_LENGTH = 4096
CORPUS_SIZE = 256


def load_targets(wanted):
    """Returns `({name: callable}, {name: seeds}, closers, skipped)`."""
    targets, seeds, closers, skipped = {}, {}, [], {}
    for module_name in MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name != module_name:
                raise
            skipped[module_name] = "not present in this checkout"
            continue
        for name, target in module.TARGETS.items():
            if wanted and name not in wanted:
                continue
            targets[name] = target
            seeds[name] = list(getattr(module, "SEEDS", {}).get(name, []))
        if hasattr(module, "close"):
            closers.append(module.close)
    unknown = sorted(set(wanted or ()) - set(targets))
    if unknown:
        raise SystemExit(f"error: unknown targets {unknown} (have {sorted(targets)})")
    return targets, seeds, closers, skipped


def mutate(rng, data, corpus):
    data = bytearray(data)
    for _ in range(rng.randrange(1, 5)):
        op = rng.randrange(6)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[min(pos, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1 and data:
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif op == 2:
            data[pos:pos] = rng.choice(TOKENS) * rng.choice([1, 1, 2, 64])
        elif op == 3 and data:
            del data[pos:pos + rng.randrange(1, 16)]
        elif op == 4 and data:
            end = min(len(data), pos + rng.randrange(1, 32))
            data[pos:pos] = data[pos:end] * rng.randrange(1, 4)
        elif op == 5 and corpus:
            other = rng.choice(corpus)
            cut = rng.randrange(len(other) + 1)
            data = data[:pos] + bytearray(other[cut:])
    return bytes(data[:MAX_LENGTH])


def next_input(rng, corpus):
    if corpus and rng.random() < 0.5:
        return mutate(rng, rng.choice(corpus), corpus)
    return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))


def fuzz(target, seeds, cases, rng):
    corpus = list(seeds)
    result = {"cases": 0, "failures": 0, "crashes": 0}
    first = None
    start = time.perf_counter()
    for _ in range(cases):
        data = next_input(rng, corpus)
        try:
            with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the JSON line.
                target(data)
        except AssertionError as e:
            result["failures"] += 1
            first = first or f"failure: {str(e)[:300]}"
        except Exception as e:  # A crash: what the fuzzer is for.
            result["crashes"] += 1
            first = first or f"crash: {type(e).__name__}: {str(e)[:300]}"
        else:
            if len(corpus) < CORPUS_SIZE:
                corpus.append(data)
            else:
                corpus[rng.randrange(CORPUS_SIZE)] = data
        result["cases"] += 1
    result["seconds"] = round(time.perf_counter() - start, 2)
    if first:
        result["first_problem"] = first
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=10000, help="cases per target (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--targets", default="", help="comma-separated target names (default all)")
    args = parser.parse_args(argv)
    wanted = [t for t in args.targets.split(",") if t]
    start = time.perf_counter()
    targets, seeds, closers, skipped = load_targets(wanted)
    results = {}
    try:
        for name, target in targets.items():
            # One stream per target: adding a target does not change another's cases.
            rng = random.Random(f"{args.seed}:{name}")
            results[name] = fuzz(target, seeds[name], args.cases, rng)
    finally:
        for close in closers:
            with contextlib.redirect_stdout(sys.stderr):
                close()
    print(json.dumps({
        "cases_per_target": args.cases, "seed": args.seed, "targets": results,
        "skipped": skipped, "seconds": round(time.perf_counter() - start, 1),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Overload benchmark: the server driven at 10x the request rate it can serve.

Exports a WordPiece classifier (heavier than bench/serving.py's, so that 10x
its capacity is a rate this machine's load generator can offer), starts
`python -m tfllm.serving serve --max_in_flight_requests=K` (batching off) on
loopback, then:

1. unloaded: sequential batch-1 gRPC Predicts: p99 latency and server RSS;
2. capacity: closed-loop clients (as many as K): the served rate;
3. overload: an open-loop generator offering `--overload` x that rate for
   `--seconds`, bounded to `--max_outstanding` requests in flight (beyond
   that it skips sends and counts them), sampling the server's RSS;
4. recovery: sequential Predicts right after the load stops, until one is
   answered within 2x the unloaded p99.

Prints ONE JSON line: offered and served rate, refused share, time to
refusal p50/p99, admitted p99 / unloaded p99, peak RSS / unloaded RSS,
recovery seconds, and raw figures.

    .venv/bin/python bench/overload.py [--seconds 30] [--overload 10] [--max_in_flight_requests 1]
"""

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import serving as serving_bench  # noqa: E402  (bench/serving.py: shared helpers)


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise OSError(f"no VmRSS for process {pid}")


def percentile_ms(samples, q):
    return round(float(np.percentile(np.asarray(samples) * 1000.0, q)), 3) if samples else None


async def measure(target, pid, requests, args):
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    async with grpc.aio.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

        async def timed(i):
            start = time.perf_counter()
            try:
                await stub.Predict(requests[i % len(requests)], timeout=30)
                code = grpc.StatusCode.OK
            except grpc.aio.AioRpcError as e:
                code = e.code()
            return code, time.perf_counter() - start

        for i in range(20):
            await timed(i)
        unloaded = [(await timed(i))[1] for i in range(args.latency_requests)]
        unloaded_p99 = float(np.percentile(unloaded, 99))
        rss_unloaded = rss_bytes(pid)

        # Capacity: closed loop with as many clients as the server admits.
        done, stop = [0], time.perf_counter() + args.capacity_seconds

        async def client(c):
            i = c
            while time.perf_counter() < stop:
                code, _ = await timed(i)
                done[0] += code == grpc.StatusCode.OK
                i += args.clients
        began = time.perf_counter()
        await asyncio.gather(*(client(c) for c in range(args.clients)))
        capacity = done[0] / (time.perf_counter() - began)

        # Overload: open loop at `overload` x capacity, bounded outstanding requests.
        rate = args.overload * capacity
        results, outstanding, skipped, rss_peak = [], [0], 0, rss_unloaded

        async def fire(i):
            outstanding[0] += 1
            try:
                results.append(await timed(i))
            finally:
                outstanding[0] -= 1
        tasks, sent = [], 0
        began = time.perf_counter()
        next_rss = began
        while True:
            now = time.perf_counter()
            if now - began >= args.seconds:
                break
            for _ in range(int((now - began) * rate) - sent - skipped):
                if outstanding[0] >= args.max_outstanding:
                    skipped += 1
                    continue
                tasks.append(asyncio.create_task(fire(sent)))
                sent += 1
            if now >= next_rss:
                rss_peak = max(rss_peak, rss_bytes(pid))
                next_rss = now + 0.25
            await asyncio.sleep(0.001)
        stopped = time.perf_counter()
        offered_seconds = stopped - began

        # Recovery: how soon after the load stops a request is served normally again.
        recovery = None
        i = 0
        while time.perf_counter() - stopped < 30:
            code, seconds = await timed(i)
            i += 1
            if code == grpc.StatusCode.OK and seconds <= 2 * unloaded_p99:
                recovery = time.perf_counter() - stopped
                break
        await asyncio.gather(*tasks)
        rss_peak = max(rss_peak, rss_bytes(pid))

    ok = [s for c, s in results if c == grpc.StatusCode.OK]
    refused = [s for c, s in results if c == grpc.StatusCode.UNAVAILABLE]
    other = sorted({c.name for c, _ in results} - {"OK", "UNAVAILABLE"})
    admitted_p99 = percentile_ms(ok, 99)
    return {
        "offered_rps": round((sent + skipped) / offered_seconds, 1),
        "sent_rps": round(sent / offered_seconds, 1),
        "served_rps": round(len(ok) / offered_seconds, 1),
        "capacity_rps": round(capacity, 1),
        "refused_share": round(len(refused) / max(1, len(results)), 4),
        "refusal_ms": {"p50": percentile_ms(refused, 50), "p99": percentile_ms(refused, 99)},
        "admitted_p99_ms": admitted_p99,
        "unloaded_p99_ms": round(unloaded_p99 * 1000, 3),
        "p99_ratio": round(admitted_p99 / (unloaded_p99 * 1000), 2) if admitted_p99 else None,
        "rss_unloaded_mb": round(rss_unloaded / 2 ** 20, 1),
        "rss_peak_mb": round(rss_peak / 2 ** 20, 1),
        "rss_ratio": round(rss_peak / rss_unloaded, 3),
        "recovery_s": None if recovery is None else round(recovery, 3),
        "requests": {"ok": len(ok), "unavailable": len(refused),
                     "other": len(results) - len(ok) - len(refused), "skipped_by_generator": skipped},
        "other_codes": other,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="overload duration (default 30)")
    parser.add_argument("--overload", type=float, default=10.0, help="offered rate / capacity (default 10)")
    parser.add_argument("--max_in_flight_requests", type=int, default=1, help="server flag (default 1)")
    parser.add_argument("--clients", type=int, default=None, help="capacity run clients (default the limit)")
    parser.add_argument("--capacity_seconds", type=float, default=3.0)
    parser.add_argument("--latency_requests", type=int, default=300)
    parser.add_argument("--max_outstanding", type=int, default=2000,
                        help="the load generator's bound on requests in flight")
    parser.add_argument("--load_generator_nice", type=int, default=0,
                        help="nice increment of this process once the server runs, so that on "
                             "a small machine the load generator yields the CPU to the server")
    parser.add_argument("--sequence_length", type=int, default=256)
    parser.add_argument("--hidden_dim", type=int, default=256)
    parser.add_argument("--num_layers", type=int, default=4)
    args = parser.parse_args(argv)
    args.clients = args.clients or max(1, args.max_in_flight_requests)

    from tfllm.serving.client import ServingClient

    workdir = tempfile.mkdtemp(prefix="tfllm-bench-overload-")
    base_path, texts, source = serving_bench.export_classifier(workdir, args)
    requests = serving_bench.predict_requests(texts)
    server, target = serving_bench.start_server(
        base_path, intra_op=1, inter_op=1,
        flags=[f"--max_in_flight_requests={args.max_in_flight_requests}"],
    )
    try:
        with ServingClient(target, retries=60, backoff=0.5, timeout=60) as client:
            client.predict("bench", {"text": texts[:1]})
        if args.load_generator_nice:
            os.nice(args.load_generator_nice)  # The server, already started, keeps its priority.
        result = asyncio.run(measure(target, server.pid, requests, args))
    finally:
        serving_bench.stop_server(server)
        shutil.rmtree(workdir, ignore_errors=True)
    result.update({
        "seconds": args.seconds, "overload": args.overload,
        "max_in_flight_requests": args.max_in_flight_requests, "texts": source,
        "load_generator_nice": args.load_generator_nice,
        "model": {"sequence_length": args.sequence_length, "hidden_dim": args.hidden_dim,
                  "num_layers": args.num_layers},
    })
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

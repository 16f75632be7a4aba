"""Serving benchmark: gRPC overhead over an in-process call, and what batching buys.

Builds a small WordPiece text classifier (vocabulary from SST-2 sentences when
TFLLM_DATA_DIR has them, 2 Transformer blocks, 64 tokens), exports it, then:

1. latency of batch-1 `serving_default` calls in this process (the reference)
   and of batch-1 gRPC Predict calls through `ServingClient` to
   `python -m tfllm.serving serve` in a separate process (batching off);
2. requests/s of 32 concurrent clients sending batch-1 requests, against the
   server with batching off, then on, and against a reference: a gRPC
   PredictionService in the same Python stack that answers every request with
   a canned response (no model, no batching), i.e. what the gRPC machinery
   alone costs. CPU per request (server + load generator, from /proc) is
   recorded for all three, so the ceiling the front end puts on batching shows
   in the same line.

Prints ONE JSON line: grpc_p50_overhead_ms (p50 gRPC - p50 in-process),
grpc_p99_ms, batching_throughput_ratio (batching on / off), and raw figures.

    .venv/bin/python bench/serving.py [--seconds 8] [--clients 32]
"""

import argparse
import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def load_sentences(limit):
    data_dir = os.environ.get("TFLLM_DATA_DIR", os.path.join(ROOT, "..", "shared", "data"))
    path = os.path.join(data_dir, "sst2", "train.tsv")
    if not os.path.exists(path):
        from tfllm.serving.demo import SENTENCES

        return list(SENTENCES) * (limit // len(SENTENCES) + 1), "demo sentences"
    with open(path, newline="", encoding="utf-8") as f:
        rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        sentences = [row["sentence"] for _, row in zip(range(limit), rows)]
    return sentences, "sst2/train.tsv"


def percentile_ms(samples, q):
    return float(np.percentile(np.asarray(samples) * 1000.0, q))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def export_classifier(workdir, args):
    """Exports the WordPiece classifier `args` sizes to `workdir`/bench.

    Returns `(base_path, texts, source)`: the texts to send (not in the
    vocabulary's sentences) and where the sentences came from.
    """
    from tfllm.serving.demo import TextClassifier, build_vocabulary
    from tfllm.serving.export import export_saved_model

    sentences, source = load_sentences(5000)
    texts = sentences[-1000:]
    base_path = os.path.join(workdir, "bench")
    model = TextClassifier(build_vocabulary(sentences[:4000], max_size=4000),
                           sequence_length=args.sequence_length, hidden_dim=args.hidden_dim,
                           num_layers=args.num_layers, seed=0)
    export_saved_model(model, base_path, {"serving_default": model.serve},
                       warmup_inputs={"text": texts[:4]})
    return base_path, texts, source


def predict_requests(texts):
    """One prebuilt batch-1 `PredictRequest` of model "bench" per text."""
    from tensorflow_serving.apis import predict_pb2

    from tfllm.serving import protocol

    requests = []
    for text in texts:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "bench"
        request.inputs["text"].CopyFrom(protocol.to_tensor_proto([text]))
        requests.append(request)
    return requests


def start_server(base_path, batching_file=None, intra_op=0, inter_op=0, flags=()):
    """Starts `python -m tfllm.serving serve` of model "bench" (plus `flags`); returns (process, target)."""
    arguments = [
        "-m", "tfllm.serving", "serve", "--model_name=bench", f"--model_base_path={base_path}",
        "--file_system_poll_wait_seconds=0", f"--tensorflow_intra_op_parallelism={intra_op}",
        f"--tensorflow_inter_op_parallelism={inter_op}", *flags,
    ]
    if batching_file:
        arguments += ["--enable_batching", f"--batching_parameters_file={batching_file}"]
    return _spawn(arguments, "--port={port}")


def start_echo_server():
    return _spawn([os.path.abspath(__file__)], "--serve-echo={port}")


def _spawn(arguments, port_argument):
    """Starts `python *arguments port_argument` on a free port; returns (process, target)."""
    port = free_port()
    command = [sys.executable, *arguments, port_argument.format(port=port)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)  # Logs: our stderr.
    return process, f"127.0.0.1:{port}"


def serve_echo(port):
    """A PredictionService answering every Predict with one canned response: the gRPC cost alone."""
    import asyncio

    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from tfllm.serving import protocol

    response = predict_pb2.PredictResponse()
    response.model_spec.name = "bench"
    response.model_spec.version.value = 1
    response.model_spec.signature_name = "serving_default"
    for key, value in (("probabilities", np.array([[0.3, 0.7]], np.float32)),
                       ("label", np.array([b"positive"], dtype=object)),
                       ("label_id", np.array([1], np.int64))):
        response.outputs[key].CopyFrom(protocol.to_tensor_proto(value))

    class Echo(prediction_service_pb2_grpc.PredictionServiceServicer):
        async def Predict(self, request, context):
            return response

    async def run():
        server = grpc.aio.server()
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Echo(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    asyncio.run(run())


def cpu_seconds(pid):
    """User + system CPU seconds of a process (Linux /proc), or None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_server(process):
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def throughput(server, target, texts, clients, seconds):
    """Requests/s of `clients` concurrent closed-loop clients sending batch-1 Predicts.

    The load comes from asyncio gRPC calls with prebuilt requests: on a
    machine this small, client threads would eat the CPU the server needs.
    Also returns the CPU ms per request, over the same window, of the
    `server` process and of this (load generator) process.
    """
    import asyncio

    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    requests = predict_requests(texts)

    async def run():
        async with grpc.aio.insecure_channel(target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            counts = [0] * clients
            stop = asyncio.Event()

            async def client(i):
                while not stop.is_set():
                    await stub.Predict(requests[(i * 997 + counts[i]) % len(requests)], timeout=60)
                    counts[i] += 1

            tasks = [asyncio.create_task(client(i)) for i in range(clients)]
            began = time.perf_counter()
            server_before, client_before = cpu_seconds(server.pid), time.process_time()
            await asyncio.sleep(seconds)
            stop.set()
            await asyncio.gather(*tasks)  # A failed request raises here: never hidden.
            server_after, client_after = cpu_seconds(server.pid), time.process_time()
            done = sum(counts)
            cpu = {"server": None, "load_generator": round((client_after - client_before) / done * 1000, 3)}
            if server_before is not None and server_after is not None:
                cpu["server"] = round((server_after - server_before) / done * 1000, 3)
            return done / (time.perf_counter() - began), cpu

    return asyncio.run(run())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="duration of each throughput run")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--latency_requests", type=int, default=500)
    parser.add_argument("--max_batch_size", type=int, default=32)
    parser.add_argument("--batch_timeout_micros", type=int, default=10000)
    parser.add_argument("--num_batch_threads", type=int, default=1)
    parser.add_argument("--sequence_length", type=int, default=64)
    parser.add_argument("--hidden_dim", type=int, default=64)
    parser.add_argument("--num_layers", type=int, default=2)
    parser.add_argument("--tensorflow_intra_op_parallelism", type=int, default=0,
                        help="server flag of the same name, both runs (0: TensorFlow's default)")
    parser.add_argument("--tensorflow_inter_op_parallelism", type=int, default=0,
                        help="server flag of the same name, both runs (0: TensorFlow's default)")
    parser.add_argument("--serve-echo", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_echo:
        serve_echo(args.serve_echo)
        return 0
    threads = {"intra_op": args.tensorflow_intra_op_parallelism,
               "inter_op": args.tensorflow_inter_op_parallelism}

    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    from tfllm.serving.client import ServingClient

    workdir = tempfile.mkdtemp(prefix="tfllm-bench-serving-")
    base_path, texts, source = export_classifier(workdir, args)
    fn = tf.saved_model.load(os.path.join(base_path, "1")).signatures["serving_default"]

    def call(i):
        return {k: v.numpy() for k, v in fn(text=tf.constant([texts[i % len(texts)]])).items()}

    batch32 = tf.constant(texts[:32])
    for _ in range(5):
        fn(text=batch32)
    t = time.perf_counter()
    for _ in range(50):
        fn(text=batch32)
    local_batch32_ms = (time.perf_counter() - t) / 50 * 1000

    server, target = start_server(base_path, **threads)
    try:
        client = ServingClient(target, timeout=60, retries=120, backoff=0.5)
        for i in range(50):  # Waits for the server, then warms both paths.
            client.predict("bench", {"text": [texts[i]]})
            call(i)
        # Interleaved, so both paths see the same background load.
        local, remote = [], []
        for i in range(args.latency_requests):
            text = texts[i % len(texts)]
            t = time.perf_counter()
            call(i)
            local.append(time.perf_counter() - t)
            t = time.perf_counter()
            client.predict("bench", {"text": [text]})
            remote.append(time.perf_counter() - t)
        client.close()
        rps_off, cpu_off = throughput(server, target, texts, args.clients, args.seconds)
    finally:
        stop_server(server)

    batching_file = os.path.join(workdir, "batching.config")
    with open(batching_file, "w") as f:
        f.write(f"max_batch_size {{ value: {args.max_batch_size} }}\n"
                f"batch_timeout_micros {{ value: {args.batch_timeout_micros} }}\n"
                f"num_batch_threads {{ value: {args.num_batch_threads} }}\n")
    def load_run(server, target):
        try:
            client = ServingClient(target, timeout=60, retries=120, backoff=0.5)
            for i in range(20):  # Waits for the server, then warms it.
                client.predict("bench", {"text": [texts[i]]})
            client.close()
            return throughput(server, target, texts, args.clients, args.seconds)
        finally:
            stop_server(server)

    rps_on, cpu_on = load_run(*start_server(base_path, batching_file, **threads))
    rps_echo, cpu_echo = load_run(*start_echo_server())

    shutil.rmtree(workdir, ignore_errors=True)
    result = {
        "grpc_p50_overhead_ms": round(percentile_ms(remote, 50) - percentile_ms(local, 50), 3),
        "grpc_p99_ms": round(percentile_ms(remote, 99), 3),
        "batching_throughput_ratio": round(rps_on / rps_off, 2),
        "grpc_p50_ms": round(percentile_ms(remote, 50), 3),
        "in_process_p50_ms": round(percentile_ms(local, 50), 3),
        "in_process_p99_ms": round(percentile_ms(local, 99), 3),
        "in_process_batch32_ms": round(local_batch32_ms, 3),
        "grpc_p99_over_in_process_p99": round(percentile_ms(remote, 99) / percentile_ms(local, 99), 2),
        "grpc_p50_over_in_process_p50": round(percentile_ms(remote, 50) / percentile_ms(local, 50), 2),
        "rps_batching_off": round(rps_off, 1),
        "rps_batching_on": round(rps_on, 1),
        "rps_grpc_echo": round(rps_echo, 1),
        "cpu_ms_per_request": {"batching_off": cpu_off, "batching_on": cpu_on, "grpc_echo": cpu_echo},
        "tensorflow_threads": threads,
        "clients": args.clients,
        "max_batch_size": args.max_batch_size,
        "batch_timeout_micros": args.batch_timeout_micros,
        "num_batch_threads": args.num_batch_threads,
        "model": {"sequence_length": args.sequence_length, "hidden_dim": args.hidden_dim,
                  "num_layers": args.num_layers},
        "latency_requests": args.latency_requests,
        "texts": source,
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

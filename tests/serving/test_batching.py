"""Server-side batching: the scheduler alone, then the server merging real requests."""

import threading

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serving_probe import BATCH_SIZE
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tfllm.serving import signatures as sig
from tfllm.serving.protocol import ServingError
from tfllm.serving.batching import BatchingParameters, BatchScheduler
from tfllm.serving.server import ModelServer


class Recorder:
    """A fake signature: doubles `x`, and records the batch sizes it ran with."""

    def __init__(self, fail=False):
        self.sizes = []
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, inputs):
        with self.lock:
            self.sizes.append(len(inputs["x"]))
        if self.fail:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "bad batch")
        return {"y": inputs["x"] * 2, "n": np.full(len(inputs["x"]), len(inputs["x"]))}


def _concurrently(scheduler, payloads):
    results = [None] * len(payloads)
    barrier = threading.Barrier(len(payloads))

    def run(i):
        barrier.wait()
        try:
            results[i] = scheduler.run({"x": payloads[i]}, len(payloads[i]))
        except ServingError as e:
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(payloads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_scheduler_merges_concurrent_calls_and_splits_results():
    fn = Recorder()
    params = BatchingParameters(max_batch_size=8, batch_timeout_micros=500_000, num_batch_threads=1)
    scheduler = BatchScheduler(fn, params)
    payloads = [np.arange(i, i + 1 + i % 2, dtype=np.float32) for i in range(8)]  # 1 or 2 rows.
    results = _concurrently(scheduler, payloads)
    scheduler.close()
    for payload, result in zip(payloads, results):
        np.testing.assert_array_equal(result["y"], payload * 2)
    assert sum(fn.sizes) == sum(len(p) for p in payloads)
    assert max(fn.sizes) > 2 and max(fn.sizes) <= 8  # Merged, never over max_batch_size.


def test_scheduler_pads_to_allowed_sizes_and_keeps_incompatible_shapes_apart():
    fn = Recorder()
    params = BatchingParameters(max_batch_size=8, batch_timeout_micros=0, allowed_batch_sizes=(4, 8))
    scheduler = BatchScheduler(fn, params)
    result = scheduler.run({"x": np.ones(3, np.float32)}, 3)
    assert fn.sizes == [4] and result["y"].shape == (3,)
    fn.sizes.clear()
    params = BatchingParameters(max_batch_size=8, batch_timeout_micros=300_000, num_batch_threads=1)
    scheduler2 = BatchScheduler(fn, params)
    payloads = [np.ones((1, 2), np.float32), np.ones((1, 3), np.float32)] * 2
    results = _concurrently(scheduler2, payloads)
    assert [r["y"].shape for r in results] == [(1, 2), (1, 3)] * 2
    assert sorted(fn.sizes) == [2, 2]  # Same trailing shape merged, the others not.
    scheduler.close()
    scheduler2.close()


def test_scheduler_errors_reach_every_caller_and_a_full_queue_is_unavailable():
    scheduler = BatchScheduler(Recorder(fail=True), BatchingParameters(max_batch_size=4, batch_timeout_micros=200_000))
    results = _concurrently(scheduler, [np.ones(1, np.float32)] * 3)
    assert all(isinstance(r, ServingError) and r.message == "bad batch" for r in results)
    scheduler.close()
    tiny = BatchScheduler(Recorder(), BatchingParameters(max_batch_size=2, max_enqueued_batches=1))
    with pytest.raises(ServingError) as e:
        tiny.run({"x": np.ones(3, np.float32)}, 3)
    assert e.value.code == grpc.StatusCode.UNAVAILABLE
    tiny.close()
    # After close, calls still succeed (run alone): a version being unloaded finishes its requests.
    assert tiny.run({"x": np.ones(1, np.float32)}, 1)["y"].tolist() == [2.0]


@pytest.mark.parametrize("fail", [False, True])
def test_scheduler_calls_back_on_the_event_loop_once_per_batch(fail):
    import asyncio

    fn = Recorder(fail=fail)
    params = BatchingParameters(max_batch_size=4, batch_timeout_micros=500_000, num_batch_threads=1)
    scheduler = BatchScheduler(fn, params)
    hops = []

    async def main():
        loop = asyncio.get_running_loop()
        wake = loop.call_soon_threadsafe

        def counting(*args):
            hops.append(threading.get_ident())
            return wake(*args)

        loop.call_soon_threadsafe = counting
        seen = []
        futures = []
        for i in range(4):
            future = loop.create_future()

            def callback(outputs, error, future=future):
                seen.append(threading.get_ident())
                future.set_result(error if error is not None else outputs)

            assert scheduler.submit({"x": np.array([float(i)])}, 1, callback, loop=loop)
            futures.append(future)
        return await asyncio.gather(*futures), seen, threading.get_ident()

    results, seen, loop_thread = asyncio.run(main())
    scheduler.close()
    assert fn.sizes == [4]
    assert len(hops) == 1 and hops[0] != loop_thread  # One wake-up, from the batch thread.
    assert seen == [loop_thread] * 4
    for i, result in enumerate(results):
        if fail:
            assert isinstance(result, ServingError) and result.message == "bad batch"
        else:
            np.testing.assert_array_equal(result["y"], [2.0 * i])


def test_batching_parameters_file_format(tmp_path):
    path = tmp_path / "batching.config"
    path.write_text(
        "max_batch_size { value: 16 }\n"
        "batch_timeout_micros { value: 2000 }  # two milliseconds\n"
        "num_batch_threads { value: 2 }\n"
        "allowed_batch_sizes: 8\nallowed_batch_sizes: 16\n"
        "pad_variable_length_inputs: false\n"
    )
    params = BatchingParameters.from_file(str(path))
    assert (params.max_batch_size, params.batch_timeout_micros, params.num_batch_threads) == (16, 2000, 2)
    assert params.allowed_batch_sizes == (8, 16)
    path.write_text("max_batch_sise { value: 16 }")
    with pytest.raises(ValueError, match="batching.config: unknown batching parameter 'max_batch_sise'"):
        BatchingParameters.from_file(str(path))
    with pytest.raises(ValueError, match="allowed_batch_sizes must increase and end with max_batch_size"):
        BatchingParameters(max_batch_size=16, allowed_batch_sizes=(8,))


@pytest.mark.slow
def test_server_merges_concurrent_requests(probe_base, in_process):
    params = BatchingParameters(max_batch_size=8, batch_timeout_micros=300_000, num_batch_threads=1)
    texts = [f"film number {i} was {'great' if i % 2 else 'awful'}" for i in range(16)]
    with ModelServer(model_name="probe", model_base_path=str(probe_base), port=0,
                     enable_batching=True, batching_parameters=params,
                     file_system_poll_wait_seconds=0) as server:
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        barrier = threading.Barrier(len(texts))
        responses = [None] * len(texts)

        def call(i):
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "probe"
            request.inputs[sig.TEXT].CopyFrom(tf.make_tensor_proto([texts[i]]))
            barrier.wait()
            responses[i] = stub.Predict(request, timeout=60)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(len(texts))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        channel.close()
        histogram = server.metrics.batch_sizes("probe")
    seen = [int(tf.make_ndarray(r.outputs[BATCH_SIZE])[0]) for r in responses]
    assert max(seen) > 1 and max(seen) <= 8, seen
    expected = in_process(2, texts)
    for i, r in enumerate(responses):  # Each caller got its own row back.
        np.testing.assert_allclose(
            tf.make_ndarray(r.outputs[sig.PROBABILITIES])[0], expected[sig.PROBABILITIES][i], rtol=1e-5
        )
    assert sum(histogram.values()) < len(texts)

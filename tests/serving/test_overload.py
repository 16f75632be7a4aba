"""Admission control: beyond the in-flight limit or a full batch queue, UNAVAILABLE / 503 fast."""

import http.client
import json
import threading
import time

import grpc
import pytest
import tensorflow as tf
from serving_probe import wait_for
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tfllm.serving import servables
from tfllm.serving import signatures as sig
from tfllm.serving.admission import InFlightLimit
from tfllm.serving.batching import BatchingParameters
from tfllm.serving.server import ModelServer


def _request():
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "probe"
    request.inputs[sig.TEXT].CopyFrom(tf.make_tensor_proto(["a great film"]))
    return request


def _rest(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.rest_api_port, timeout=30)
    try:
        conn.request("POST", "/v1/models/probe:predict", body=json.dumps({"instances": ["x"]}))
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.mark.parametrize("batching", [False, True])
def test_requests_beyond_capacity_are_refused_fast_then_served(probe_base, monkeypatch, batching):
    release, calls = threading.Event(), []
    original = servables.Servable._call

    def held(self, name, inputs):
        calls.append(name)
        release.wait(30)  # Holds the signature, so the server is full.
        return original(self, name, inputs)
    monkeypatch.setattr(servables.Servable, "_call", held)
    options = dict(enable_batching=True, batching_parameters=BatchingParameters(
        max_batch_size=1, max_enqueued_batches=1, batch_timeout_micros=0, num_batch_threads=1,
    )) if batching else dict(max_in_flight_requests=1)
    server = ModelServer(model_name="probe", model_base_path=str(probe_base), port=0,
                         rest_api_port=0, file_system_poll_wait_seconds=0, **options)
    release.set()  # Warmup runs unheld.
    server.start()
    release.clear()
    calls.clear()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    predict = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict
    try:
        # Batching: one batch runs, one waits in the queue; without: one in flight.
        admitted = [predict.future(_request(), timeout=30)]
        wait_for(lambda: calls, "the first request to reach the signature", timeout=30)
        if batching:
            # Sent only now: while the first still waits in the one-row queue, a
            # second would be refused.
            admitted.append(predict.future(_request(), timeout=30))
            scheduler = next(iter(server.manager.models["probe"].servables[2]._schedulers.values()))
            wait_for(lambda: scheduler._queued_rows == 1, "the second request to queue", timeout=30)
        start = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            predict(_request(), timeout=30)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        assert ("queue" if batching else "in flight") in e.value.details()
        status, body = _rest(server)
        assert status == 503 and set(body) == {"error"}
        assert time.monotonic() - start < 1.0  # Refused, not queued behind the held call.
        release.set()
        for future in admitted:
            assert future.result().outputs[sig.LABEL].string_val
        assert predict(_request(), timeout=30).outputs[sig.LABEL].string_val
        assert _rest(server)[0] == 200
        assert server.metrics.request_count("probe", "UNAVAILABLE") >= 1
    finally:
        release.set()
        channel.close()
        server.stop()


def test_in_flight_limit_counts_and_releases():
    limit = InFlightLimit(2)
    with limit.admit(), limit.admit():
        assert limit.in_flight == 2
        with pytest.raises(Exception, match="limit of 2 requests in flight"):
            with limit.admit():
                pass
    assert limit.in_flight == 0
    with InFlightLimit(0).admit():  # 0: no limit.
        pass
    with pytest.raises(ValueError, match="max_in_flight_requests must be >= 0"):
        InFlightLimit(-1)

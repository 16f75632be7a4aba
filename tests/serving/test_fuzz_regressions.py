"""Requests the fuzzers found mishandled: each must get a 4xx / INVALID_ARGUMENT naming the input."""

import http.client
import json
import socket
import time

import grpc
import pytest
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tfllm.serving import signatures as sig


@pytest.fixture(scope="module")
def stub(server):
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel)
    channel.close()


def _tensor(dtype, shape, content=b"", **values):
    proto = tensor_pb2.TensorProto(dtype=dtype, tensor_content=content)
    for d in shape:
        proto.tensor_shape.dim.add(size=d)
    for field, v in values.items():
        getattr(proto, field).extend(v)
    return proto


def _predict(stub, tensor, key=sig.TEXT):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "latest"
    request.inputs[key].CopyFrom(tensor)
    return stub.Predict(request, timeout=30)


@pytest.mark.parametrize("tensor, fragment", [
    # tensor_content not a multiple of the element size: INTERNAL (ValueError) before.
    (_tensor(types_pb2.DT_FLOAT, [1], b"abc"), "tensor_content has 3 bytes"),
    # A multiple, but not what the shape needs: INTERNAL (reshape) before.
    (_tensor(types_pb2.DT_FLOAT, [3], b"\0" * 8), "needs 12"),
    # A negative dimension let numpy infer it, so the tensor was answered before.
    (_tensor(types_pb2.DT_FLOAT, [-1], b"\0" * 8), "dimensions must be >= 0"),
    (_tensor(types_pb2.DT_STRING, [-2, -3], string_val=[b"x"] * 6), "dimensions must be >= 0"),
    # One value filling a shape of 2**31 strings: 16 GiB allocated before.
    (_tensor(types_pb2.DT_STRING, [2 ** 31], string_val=[b"x"]), "bytes a request may carry"),
    # A 0 beside a huge dimension: INTERNAL (numpy "array is too big") before.
    (_tensor(types_pb2.DT_STRING, [2 ** 62, 0]), "too large"),
    # Values out of the dtype's range: INTERNAL (OverflowError) before.
    (_tensor(types_pb2.DT_INT8, [1], int_val=[300]), "DT_INT8 values must lie in [-128, 127]"),
    (_tensor(types_pb2.DT_HALF, [1], half_val=[70000]), "DT_HALF values must lie in"),
    # A DataType value no enum name has: INTERNAL (ValueError in the message) before.
    (_tensor(95, [1]), "DataType(95)"),
    # Strings in tensor_content were silently read as empty strings before.
    (_tensor(types_pb2.DT_STRING, [1], b"abcd"), "string_val, not tensor_content"),
])
def test_malformed_grpc_tensors_are_invalid_arguments_naming_the_input(stub, tensor, fragment):
    with pytest.raises(grpc.RpcError) as e:
        _predict(stub, tensor)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    assert f'input "{sig.TEXT}"' in e.value.details() and fragment in e.value.details()
    assert _predict(stub, _tensor(types_pb2.DT_STRING, [1], string_val=[b"fine"])).outputs


def test_value_fields_decode_to_their_dtype_and_range_checks_only_narrow_ones():
    import numpy as np

    from tfllm.serving import protocol

    cases = [
        (_tensor(types_pb2.DT_INT8, [3], int_val=[-128, 0, 127]), np.array([-128, 0, 127], np.int8)),
        (_tensor(types_pb2.DT_UINT16, [2], int_val=[0, 65535]), np.array([0, 65535], np.uint16)),
        (_tensor(types_pb2.DT_HALF, [2], half_val=np.array([1.5, -2], np.float16).view(np.uint16)),
         np.array([1.5, -2], np.float16)),
        (_tensor(types_pb2.DT_INT32, [2], int_val=[-2 ** 31, 2 ** 31 - 1]),
         np.array([-2 ** 31, 2 ** 31 - 1], np.int32)),
        (_tensor(types_pb2.DT_UINT64, [1], uint64_val=[2 ** 64 - 1]), np.array([2 ** 64 - 1], np.uint64)),
        (_tensor(types_pb2.DT_UINT8, [3], int_val=[7]), np.array([7, 7, 7], np.uint8)),  # Last repeats.
    ]
    for tensor, expected in cases:
        array = protocol.to_ndarray(tensor, "x")
        assert array.dtype == expected.dtype and array.tolist() == expected.tolist()
    with pytest.raises(protocol.ServingError, match=r"DT_UINT8 values must lie in \[0, 255\]. Received: -1"):
        protocol.to_ndarray(_tensor(types_pb2.DT_UINT8, [2], int_val=[3, -1]), "x")


def _post(server, path, body):
    conn = http.client.HTTPConnection("127.0.0.1", server.rest_api_port, timeout=30)
    try:
        conn.request("POST", path, body=body)
        response = conn.getresponse()  # Before the fixes some of these dropped the connection.
        payload = json.loads(response.read())
        if isinstance(payload, dict) and set(payload) == {"error"}:
            return response.status, payload["error"]
        return response.status, payload
    finally:
        conn.close()


@pytest.mark.parametrize("path, body, fragment", [
    # json.loads raised RecursionError: the connection dropped with no response.
    ("/v1/models/latest:predict", b"[" * 30000 + b"]" * 30000, "nested too deeply"),
    # Parsed, but converting it recursed too deep: 500 before.
    ("/v1/models/latest:predict", b'{"instances": ' + b"[" * 900 + b'"x"' + b"]" * 900 + b"}",
     "nested more than 254 deep"),
    # Strings under 65 to 254 lists: within MAX_RANK but beyond numpy's 64 dimensions, 500 before.
    ("/v1/models/latest:predict", b'{"instances": ' + b"[" * 99 + b'"x"' + b"]" * 99 + b"}",
     "maximum supported dimension"),
    # int() of the URL's version overflowed the proto field: dropped connection.
    ("/v1/models/latest/versions/99999999999999999999:predict", b'{"instances": ["x"]}',
     "64-bit integer"),
    # A lone surrogate cannot be encoded as UTF-8: 500 before.
    ("/v1/models/latest:predict", b'{"instances": ["\\ud800"]}', "valid Unicode"),
    ("/v1/models/latest:predict", b'{"signature_name": "\\ud800", "instances": ["x"]}',
     "signature_name"),
    # A "context" that is not an object: 500 (AttributeError) before.
    ("/v1/models/latest:classify", b'{"examples": [{"text": "x"}], "context": 3}', '"context" must be'),
    # An integer feature beyond int64: 500 (ValueError) before.
    ("/v1/models/latest:classify", b'{"examples": [{"text": 99999999999999999999}]}', "int64"),
])
def test_hostile_rest_bodies_get_a_400_naming_the_problem(server, path, body, fragment):
    status, text = _post(server, path, body)
    assert status == 400 and fragment in text, (status, text)
    assert _post(server, "/v1/models/latest:predict", b'{"instances": ["fine"]}')[0] == 200


def test_unexpected_rest_failures_are_answered_not_dropped(server, monkeypatch):
    from tfllm.serving import rest

    def broken(*args):
        raise KeyError("boom")
    # Runs before the request is timed and counted: an escape dropped the connection.
    monkeypatch.setattr(rest, "_rest_model_spec", broken)
    status, text = _post(server, "/v1/models/latest:predict", b'{"instances": ["x"]}')
    assert status == 500 and "KeyError" in text


def test_a_stalled_rest_body_releases_its_connection(server, monkeypatch):
    from tfllm.serving import rest

    assert 0 < rest._RestHandler.timeout <= 120  # None (the default) waits forever.
    monkeypatch.setattr(rest._RestHandler, "timeout", 0.5)
    with socket.create_connection(("127.0.0.1", server.rest_api_port), timeout=10) as s:
        s.sendall(b"POST /v1/models/latest:predict HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
        start = time.monotonic()
        assert s.recv(1024) == b""  # Closed by the server, not held open forever.
        assert time.monotonic() - start < 5


def test_a_request_larger_than_the_batch_queue_is_served(probe_base):
    from tfllm.serving.batching import BatchingParameters
    from tfllm.serving.server import ModelServer

    params = BatchingParameters(max_batch_size=2, max_enqueued_batches=1, batch_timeout_micros=0)
    with ModelServer(model_name="probe", model_base_path=str(probe_base), port=0, rest_api_port=0,
                     enable_batching=True, batching_parameters=params,
                     file_system_poll_wait_seconds=0) as server:
        # 5 rows exceed the queue's 2 * 1: UNAVAILABLE however empty the queue was, before.
        status, body = _post(server, "/v1/models/probe:predict", json.dumps({"instances": ["x"] * 5}))
        assert status == 200, body
        assert len(body["predictions"]) == 5


def test_rest_string_features_decode_text_and_b64():
    from tfllm.serving import rest
    from tfllm.serving.protocol import ServingError

    feature = rest._feature(["a", {"b64": "Zm9v"}], "text")
    assert list(feature.bytes_list.value) == [b"a", b"foo"]
    with pytest.raises(ServingError, match='input "text": invalid base64'):
        rest._feature([{"b64": "%%%"}], "text")

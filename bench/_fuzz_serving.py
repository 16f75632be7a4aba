"""Fuzz targets for the model server: REST bodies and gRPC `PredictRequest`s.

`TARGETS` maps a name to `callable(data: bytes)`: each call sends one case
built from `data` to an in-process server (started on first use) and raises
`AssertionError` when the server breaks a property: a bad request gets a 4xx
/ gRPC client-error status naming the input (never INTERNAL, UNKNOWN or a
dropped connection), no malformed tensor is answered, a valid request is
served after every case, and RSS stays within `MEMORY_LIMIT_BYTES`.
`SEEDS` holds valid inputs to mutate. The first byte of `data` picks how the
rest is read: raw (a REST body, a serialized `PredictRequest`) or as the
seed of a structured generator.
"""

import http.client
import json
import os
import random
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import grpc  # noqa: E402
import numpy as np  # noqa: E402
from tensorflow.core.framework import tensor_pb2, types_pb2  # noqa: E402
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc  # noqa: E402

TIMEOUT = 30.0
MAX_MESSAGE_SIZE = 256 * 1024
# Room for TensorFlow's and numpy's caches; a leak per request blows it fast.
MEMORY_LIMIT_BYTES = 300 * 1024 * 1024
TEXT_MODEL, NUMERIC_MODEL = "text", "numeric"
# Statuses that blame the request. INTERNAL and UNKNOWN blame the server.
CLIENT_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.UNIMPLEMENTED,
}
# Words of messages naming an input (`input "x"`) or the request as a whole.
REQUEST_WORDS = (
    'input "', "instances", "inputs", "JSON", "request", "model_spec", "signature", "Servable",
    "examples", "feature", "version", "label", "Content-Length", "body", "output",
)
# Where each dtype's values live when tensor_content is empty, and their numpy dtype.
_T = types_pb2
TENSOR_DTYPES = {
    _T.DT_FLOAT: ("float_val", np.float32), _T.DT_DOUBLE: ("double_val", np.float64),
    _T.DT_HALF: ("half_val", np.uint16), _T.DT_INT8: ("int_val", np.int8),
    _T.DT_INT16: ("int_val", np.int16), _T.DT_INT32: ("int_val", np.int32),
    _T.DT_UINT8: ("int_val", np.uint8), _T.DT_UINT16: ("int_val", np.uint16),
    _T.DT_INT64: ("int64_val", np.int64), _T.DT_UINT32: ("uint32_val", np.uint32),
    _T.DT_UINT64: ("uint64_val", np.uint64), _T.DT_BOOL: ("bool_val", np.bool_),
}


def numeric_model():
    """A second model with numeric inputs, so dtype and shape checks are exercised."""
    import tensorflow as tf

    class Numeric(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x"),
                                      tf.TensorSpec([None], tf.int64, name="n")])
        def serve(self, x, n):
            return {"total": tf.reduce_sum(x, axis=1) + tf.cast(n, tf.float32)}

    return Numeric()


class _Fixture:
    """One server over a text classifier and the numeric model, plus clients."""

    def __init__(self):
        from tfllm.serving import signatures as sig
        from tfllm.serving.batching import BatchingParameters
        from tfllm.serving.demo import export_text_classifier
        from tfllm.serving.export import export_saved_model
        from tfllm.serving.server import ModelServer

        self.tmp = tempfile.mkdtemp(prefix="tfllm-fuzz-")
        export_text_classifier(os.path.join(self.tmp, TEXT_MODEL))
        numeric = numeric_model()
        export_saved_model(numeric, os.path.join(self.tmp, NUMERIC_MODEL),
                           {sig.SERVING_DEFAULT: numeric.serve})
        self.server = ModelServer(
            model_config={m: os.path.join(self.tmp, m) for m in (TEXT_MODEL, NUMERIC_MODEL)},
            port=0, rest_api_port=0, file_system_poll_wait_seconds=0,
            grpc_max_message_size=MAX_MESSAGE_SIZE, enable_batching=True,
            batching_parameters=BatchingParameters(max_batch_size=8, batch_timeout_micros=200),
        ).start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.server.port}", options=[
            ("grpc.max_send_message_length", 4 * MAX_MESSAGE_SIZE)])
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.rss_start = None
        self.cases = 0

    def close(self):
        self.channel.close()
        self.server.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


_fixture = None


def fixture():
    global _fixture
    if _fixture is None:
        _fixture = _Fixture()
    return _fixture


def close():
    global _fixture
    if _fixture is not None:
        _fixture.close()
        _fixture = None


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------------------
# Properties.


def names_something(message, names):
    return any(str(n) in message for n in names if n) or any(w in message for w in REQUEST_WORDS)


def malformed_input(proto):
    """Why a `TensorProto` is malformed, or None. Independent of the server's decoder."""
    dims = [d.size for d in proto.tensor_shape.dim]
    if proto.tensor_shape.unknown_rank:
        return "unknown rank"
    if any(d < 0 for d in dims):
        return "negative dimension"
    n = int(np.prod(dims, dtype=object)) if dims else 1
    extent = int(np.prod([max(d, 1) for d in dims], dtype=object)) if dims else 1
    itemsize = 8 if proto.dtype == types_pb2.DT_STRING else (
        np.dtype(TENSOR_DTYPES[proto.dtype][1]).itemsize if proto.dtype in TENSOR_DTYPES else 1)
    if extent * itemsize > MAX_MESSAGE_SIZE:
        return "more values than a request may hold"
    if proto.dtype == types_pb2.DT_STRING:
        if proto.tensor_content:
            return "tensor_content for strings"
        return "too many values" if len(proto.string_val) > n else None
    if proto.dtype not in TENSOR_DTYPES:
        return "unsupported dtype"
    field, dtype = TENSOR_DTYPES[proto.dtype]
    if proto.tensor_content:
        return None if len(proto.tensor_content) == n * itemsize else "tensor_content length"
    values = list(getattr(proto, field))
    if len(values) > n:
        return "too many values"
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        if any(not info.min <= v <= info.max for v in values):
            return "value out of range"
    return None


def check_valid_request_still_served(f):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = TEXT_MODEL
    request.inputs["text"].dtype = types_pb2.DT_STRING
    request.inputs["text"].tensor_shape.dim.add(size=2)
    request.inputs["text"].string_val.extend([b"a great film", b"a boring story"])
    response = f.stub.Predict(request, timeout=TIMEOUT)
    assert len(response.outputs["label"].string_val) == 2, response
    conn = http.client.HTTPConnection("127.0.0.1", f.server.rest_api_port, timeout=TIMEOUT)
    try:
        conn.request("POST", f"/v1/models/{TEXT_MODEL}:predict", body=b'{"instances": ["fine"]}')
        response = conn.getresponse()
        assert response.status == 200 and b"predictions" in response.read()
    finally:
        conn.close()
    f.cases += 1
    rss = rss_bytes()
    if f.rss_start is None or f.cases < 20:  # Caches fill during the first cases.
        f.rss_start = max(f.rss_start or 0, rss)
    assert rss - f.rss_start < MEMORY_LIMIT_BYTES, f"RSS grew by {(rss - f.rss_start) >> 20} MiB"


def check_grpc(request):
    """Sends `request`; asserts the answer keeps the properties."""
    f = fixture()
    try:
        f.stub.Predict(request, timeout=TIMEOUT)
    except grpc.RpcError as e:
        code, details = e.code(), e.details() or ""
        assert code in CLIENT_CODES, f"{code.name}: {details}"
        bad = {k: malformed_input(v) for k, v in request.inputs.items()}
        bad = {k: why for k, why in bad.items() if why}
        if bad and code == grpc.StatusCode.INVALID_ARGUMENT:
            assert any(f'"{k}"' in details for k in bad) or names_something(
                details, [request.model_spec.name, request.model_spec.signature_name]
            ), f"{details!r} names none of the malformed inputs {bad}"
        else:
            names = [request.model_spec.name, request.model_spec.signature_name, *request.inputs]
            assert names_something(details, names), f"{code.name}: {details!r} names nothing"
    else:
        bad = {k: malformed_input(v) for k, v in request.inputs.items()}
        assert not any(bad.values()), f"answered a malformed request: {bad}"
    check_valid_request_still_served(f)


def check_rest(path, body, headers=None):
    """POSTs `body` (bytes) to `path`; asserts a complete 200/4xx answer that names the problem."""
    f = fixture()
    conn = http.client.HTTPConnection("127.0.0.1", f.server.rest_api_port, timeout=TIMEOUT)
    try:
        conn.request("POST", path, body=body, headers=headers or {})
        try:
            response = conn.getresponse()
            payload = response.read()
        except (http.client.HTTPException, ConnectionError) as e:
            raise AssertionError(f"no answer to POST {path} ({len(body)} bytes): {e!r}") from None
    finally:
        conn.close()
    status = response.status
    assert status == 200 or 400 <= status < 500, f"HTTP {status}: {payload[:300]!r}"
    result = json.loads(payload)
    if status != 200:
        assert set(result) == {"error"} and result["error"], result
        model = path.split("/v1/models/")[-1].split(":")[0].split("/")[0]
        assert names_something(result["error"], [model]), f"{result['error']!r} names nothing"
    check_valid_request_still_served(f)


# ---------------------------------------------------------------------------
# Generators: a case from a `random.Random`.

PATHS = (
    f"/v1/models/{TEXT_MODEL}:predict", f"/v1/models/{NUMERIC_MODEL}:predict",
    f"/v1/models/{TEXT_MODEL}/versions/1:predict", f"/v1/models/{TEXT_MODEL}/labels/stable:predict",
    f"/v1/models/{TEXT_MODEL}/versions/99999999999999999999:predict",
    f"/v1/models/{TEXT_MODEL}:classify", f"/v1/models/{TEXT_MODEL}:regress",
    "/v1/models/nope:predict", f"/v1/models/{TEXT_MODEL}/versions/-3:predict",
)
KEYS = ("text", "x", "n", "instances", "inputs", "signature_name", "b64", "examples",
        "context", "bogus", "")


def json_value(rng, depth=0):
    kind = rng.randrange(12 if depth < 6 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, 1, -1, 2 ** 31, 2 ** 63, -(2 ** 64), 10 ** 30, rng.randrange(-300, 300)])
    if kind == 3:
        return rng.choice([0.5, -1e308, 1e308, float("nan"), float("inf"), rng.random()])
    if kind in (4, 5):
        return rng.choice(["great film", "", "é\u2028", "\ud800", "x" * rng.randrange(64), "\x00"])
    if kind == 6:
        return {"b64": rng.choice(["", "Z3JlYXQ=", "%%%", "Zg", "Zm9v\n", 7, None, ["Zg=="]])}
    if kind in (7, 8, 9):
        return [json_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(KEYS): json_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def rest_body(rng):
    """A JSON body: near-valid row/columnar requests with mutated parts, or odd shapes."""
    mode = rng.randrange(8)
    if mode == 0:  # Deep nesting.
        depth = rng.choice([50, 500, 5000, 50000])
        return ("[" * depth + "]" * depth).encode() if rng.random() < 0.5 else (
            '{"instances": ' + "[" * depth + '"x"' + "]" * depth + "}").encode()
    if mode == 1:  # Huge or irregular arrays.
        n = rng.choice([1000, 20000, 50000])
        return json.dumps({"instances": [rng.choice(["a", 1, [1]]) for _ in range(n)]}).encode()
    if mode == 2:  # Invalid UTF-8 and odd bytes.
        return b'{"instances": ["\xff\xfe' + bytes(rng.randrange(256) for _ in range(8)) + b'"]}'
    body = {}
    fmt = rng.choice(["instances", "inputs", "both", "none"])
    for key in (["instances", "inputs"] if fmt == "both" else [] if fmt == "none" else [fmt]):
        body[key] = rng.choice([
            ["a great film"], {"text": ["great"]}, [{"text": "a"}, {"text": "b"}],
            {"x": [[1.0, 2.0, 3.0]], "n": [1]}, [{"x": [1, 2, 3], "n": 4}],
            json_value(rng), [json_value(rng) for _ in range(rng.randrange(4))],
            {rng.choice(KEYS): json_value(rng)},
        ])
    for _ in range(rng.randrange(3)):
        body[rng.choice(KEYS)] = json_value(rng)
    return json.dumps(body).encode("utf-8", "surrogatepass")


def tensor_proto(rng):
    proto = tensor_pb2.TensorProto()
    dtypes = list(types_pb2.DataType.values())
    proto.dtype = rng.choice([types_pb2.DT_STRING, types_pb2.DT_FLOAT, types_pb2.DT_INT64,
                              rng.choice(dtypes)])
    rank = rng.choice([0, 1, 1, 2, 3])
    for _ in range(rank):
        proto.tensor_shape.dim.add(size=rng.choice([0, 1, 2, 3, -1, -2, 2 ** 31, 2 ** 62]))
    if rng.random() < 0.1:
        proto.tensor_shape.unknown_rank = True
    count = rng.choice([0, 1, 2, 3, 6])
    if proto.dtype == types_pb2.DT_STRING:
        proto.string_val.extend(
            rng.choice([b"great", b"\xff\xfe", b"", b"x" * 100]) for _ in range(count))
        if rng.random() < 0.1:
            proto.tensor_content = b"abc"
    elif rng.random() < 0.5:
        proto.tensor_content = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 4, 8, 12, 24])))
    elif proto.dtype in TENSOR_DTYPES:
        field = TENSOR_DTYPES[proto.dtype][0]
        choices = {"float_val": [0.5, -1.0], "double_val": [1e300], "bool_val": [True]}.get(
            field, [0, 1, 255, 70000, -129, 2 ** 31, 2 ** 32 - 1])
        for _ in range(count):
            value = rng.choice(choices)
            try:
                getattr(proto, field).append(value)
            except ValueError:  # Out of the field's own range: protobuf refuses it.
                pass
    return proto


def predict_request(rng):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = rng.choice([TEXT_MODEL, TEXT_MODEL, NUMERIC_MODEL, "nope", ""])
    if rng.random() < 0.2:
        request.model_spec.version.value = rng.choice([1, 2, 0, -1, 2 ** 62])
    if rng.random() < 0.1:
        request.model_spec.version_label = rng.choice(["stable", "x"])
    if rng.random() < 0.2:
        request.model_spec.signature_name = rng.choice(["serving_default", "nope", "__saved_model_init_op"])
    keys = rng.choice([["text"], ["x", "n"], ["x"], ["text", "bogus"], [], ["n"]])
    for key in keys:
        request.inputs[key].CopyFrom(tensor_proto(rng))
    if rng.random() < 0.1:
        request.output_filter.append(rng.choice(["label", "total", "nope"]))
    return request


# ---------------------------------------------------------------------------
# Targets.


def rest_target(data):
    if not data:
        return
    rng = random.Random(data)
    path = PATHS[(data[0] & 0x3F) % len(PATHS)] if data[0] & 0x80 else rng.choice(PATHS)
    body = data[1:] if data[0] & 0x40 else rest_body(rng)
    # Larger bodies get 413 before they are read; the tests cover that.
    check_rest(path, body[:MAX_MESSAGE_SIZE], {"Content-Type": "application/json"})


def grpc_target(data):
    if not data:
        return
    request = None
    if data[0] & 0x40:
        try:
            request = predict_pb2.PredictRequest.FromString(data[1:])
        except Exception:  # Not a PredictRequest: generate one instead.
            request = None
    if request is None:
        request = predict_request(random.Random(data))
    check_grpc(request)


def _tensor(dtype, shape, **fields):
    proto = tensor_pb2.TensorProto(dtype=dtype)
    proto.tensor_shape.dim.extend(proto.tensor_shape.Dim(size=d) for d in shape)
    for name, value in fields.items():
        if name == "tensor_content":
            proto.tensor_content = value
        else:
            getattr(proto, name).extend(value)
    return proto


def _seeds():
    rest = [bytes([0xC0 | path]) + body for path, body in (
        (0, b'{"instances": ["a great film"]}'), (0, b'{"inputs": {"text": ["a", "b"]}}'),
        (1, b'{"instances": [{"x": [1, 2, 3], "n": 4}]}'),
        (1, b'{"inputs": {"x": [[1.5, 2, 3]], "n": [2]}}'),
        (0, b'{"instances": [{"b64": "Z3JlYXQ="}]}'))]
    text = predict_pb2.PredictRequest(inputs={"text": _tensor(types_pb2.DT_STRING, [1], string_val=[b"great"])})
    text.model_spec.name = TEXT_MODEL
    numeric = predict_pb2.PredictRequest(inputs={
        "x": _tensor(types_pb2.DT_FLOAT, [1, 3], tensor_content=np.ones(3, np.float32).tobytes()),
        "n": _tensor(types_pb2.DT_INT64, [1], int64_val=[3])})
    numeric.model_spec.name = NUMERIC_MODEL
    grpc_seeds = [b"\x40" + r.SerializeToString() for r in (text, numeric)]
    return {"serving_rest": rest, "serving_grpc": grpc_seeds}


TARGETS = {"serving_rest": rest_target, "serving_grpc": grpc_target}
SEEDS = _seeds()

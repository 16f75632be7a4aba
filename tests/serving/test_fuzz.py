"""Property tests: random and mutated requests never break the server (bench/_fuzz_serving.py).

Every bad request gets a 4xx / gRPC client-error status naming the input, no
malformed tensor is answered, a valid request is served after each case, and
resident memory stays bounded. Derandomized, a few hundred cases per target.
"""

import json
import os
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2

import harness

sys.path.insert(0, os.path.join(harness.REPO_ROOT, "bench"))
import _fuzz_serving as fz  # noqa: E402

FUZZ = settings(derandomize=True, max_examples=200, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module", autouse=True)
def fuzz_server():
    yield fz.fixture()
    fz.close()


# JSON values: wrong types, deep nesting, odd strings, {"b64": ...} objects.
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.sampled_from(["great film", "\ud800", "Z3JlYXQ="]),
    st.builds(lambda v: {"b64": v}, st.one_of(st.text(max_size=8), st.integers(), st.none())),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(fz.KEYS), children, max_size=3),
    ),
    max_leaves=12,
)
formats = st.sampled_from([("instances",), ("inputs",), ("instances", "inputs"), ()])


@st.composite
def rest_bodies(draw):
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.binary(max_size=64))  # Not JSON, or not UTF-8.
    if kind == 1:
        depth = draw(st.sampled_from([10, 300, 3000, 30000]))
        return b'{"instances": ' + b"[" * depth + b'"x"' + b"]" * depth + b"}"
    if kind == 2:
        n = draw(st.sampled_from([100, 5000, 30000]))
        return json.dumps({"instances": [draw(json_scalars)] * n}).encode("utf-8", "surrogatepass")
    body = {key: draw(json_values) for key in draw(formats)}
    body.update(draw(st.dictionaries(st.sampled_from(fz.KEYS), json_values, max_size=2)))
    return json.dumps(body).encode("utf-8", "surrogatepass")


@FUZZ
@given(path=st.sampled_from(fz.PATHS), body=rest_bodies())
def test_rest_bodies(path, body):
    fz.check_rest(path, body[:fz.MAX_MESSAGE_SIZE], {"Content-Type": "application/json"})


dims = st.sampled_from([0, 1, 2, 3, -1, -5, 2 ** 31, 2 ** 62])


@st.composite
def tensor_protos(draw):
    proto = tensor_pb2.TensorProto()
    proto.dtype = draw(st.sampled_from(sorted(types_pb2.DataType.values()) + [95]))
    for d in draw(st.lists(dims, max_size=3)):
        proto.tensor_shape.dim.add(size=d)
    proto.tensor_shape.unknown_rank = draw(st.booleans()) and draw(st.booleans())
    if draw(st.booleans()):
        proto.tensor_content = draw(st.binary(max_size=48))
    if proto.dtype == types_pb2.DT_STRING:
        proto.string_val.extend(draw(st.lists(st.binary(max_size=12), max_size=6)))
    elif proto.dtype in fz.TENSOR_DTYPES:
        field = fz.TENSOR_DTYPES[proto.dtype][0]
        values = {
            "float_val": st.floats(width=32), "double_val": st.floats(),
            "bool_val": st.booleans(), "int64_val": st.integers(-(2 ** 63), 2 ** 63 - 1),
            "uint32_val": st.integers(0, 2 ** 32 - 1), "uint64_val": st.integers(0, 2 ** 64 - 1),
        }.get(field, st.integers(-(2 ** 31), 2 ** 31 - 1))
        getattr(proto, field).extend(draw(st.lists(values, max_size=6)))
    return proto


@st.composite
def predict_requests(draw):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = draw(st.sampled_from([fz.TEXT_MODEL, fz.NUMERIC_MODEL, "nope", ""]))
    if draw(st.booleans()) and draw(st.booleans()):
        request.model_spec.version.value = draw(st.sampled_from([1, 2, -1, 2 ** 62]))
    if draw(st.booleans()) and draw(st.booleans()):
        request.model_spec.signature_name = draw(st.sampled_from(["serving_default", "nope", ""]))
    for key in draw(st.lists(st.sampled_from(["text", "x", "n", "bogus"]), max_size=3, unique=True)):
        request.inputs[key].CopyFrom(draw(tensor_protos()))
    return request


@FUZZ
@given(request=predict_requests())
def test_grpc_predict_requests(request):
    fz.check_grpc(request)


@settings(FUZZ, max_examples=100)
@given(data=st.binary(min_size=1, max_size=64))
def test_bench_targets_accept_any_bytes(data):
    for target in fz.TARGETS.values():
        target(data)

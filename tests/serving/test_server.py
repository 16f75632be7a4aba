"""The model server over real `tensorflow_serving.apis` stubs and raw HTTP."""

import base64
import http.client
import json

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serving_probe import BATCH_SIZE, MAX_MESSAGE_SIZE
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    input_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tfllm.serving import signatures as sig
from tfllm.serving.demo import LABELS

TEXTS = ["a great film", "a boring story"]


@pytest.fixture(scope="module")
def stubs(server):
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    yield (prediction_service_pb2_grpc.PredictionServiceStub(channel),
           model_service_pb2_grpc.ModelServiceStub(channel))
    channel.close()


def predict_request(model, texts=TEXTS, *, version=None, label=None, signature=None, key=sig.TEXT):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    if signature:
        request.model_spec.signature_name = signature
    request.inputs[key].CopyFrom(tf.make_tensor_proto(texts))
    return request


def rest(server, method, path, body=None, raw=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.rest_api_port, timeout=30)
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    conn.request(method, path, body=data)
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    return response.status, json.loads(payload) if payload.startswith((b"{", b"[")) else payload.decode()


# ---------------------------------------------------------------------------
# gRPC.


def test_predict_on_strings_matches_in_process_call(stubs, in_process):
    response = stubs[0].Predict(predict_request("latest"), timeout=30)
    assert response.model_spec.name == "latest"
    assert response.model_spec.version.value == 2
    assert response.model_spec.signature_name == sig.SERVING_DEFAULT
    outputs = {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
    expected = in_process(2, TEXTS)
    assert set(outputs) == set(sig.CLASSIFIER_OUTPUTS) | {BATCH_SIZE}
    np.testing.assert_allclose(outputs[sig.PROBABILITIES], expected[sig.PROBABILITIES], rtol=1e-6)
    assert outputs[sig.PROBABILITIES].dtype == np.float32
    assert list(outputs[sig.LABEL]) == list(expected[sig.LABEL])
    assert {label.decode() for label in outputs[sig.LABEL]} <= set(LABELS)
    np.testing.assert_array_equal(outputs[sig.LABEL_ID], expected[sig.LABEL_ID])


def test_versions_labels_and_output_filter(stubs, in_process):
    predict = stubs[0].Predict
    by_version = {
        v: tf.make_ndarray(predict(predict_request("probe", version=v)).outputs[sig.PROBABILITIES])
        for v in (1, 2)
    }
    assert not np.allclose(by_version[1], by_version[2])
    np.testing.assert_allclose(by_version[1], in_process(1, TEXTS)[sig.PROBABILITIES], rtol=1e-6)
    for label, version in (("stable", 1), ("canary", 2)):
        response = predict(predict_request("probe", label=label))
        assert response.model_spec.version.value == version
    assert predict(predict_request("probe")).model_spec.version.value == 2  # Latest of all.
    request = predict_request("probe")
    request.output_filter.append(sig.LABEL)
    assert list(predict(request).outputs) == [sig.LABEL]


def test_string_outputs_of_a_generation_signature(stubs, server):
    response = stubs[0].Predict(predict_request("latest", ["hello", "héllo wörld"], signature="generate"))
    assert list(tf.make_ndarray(response.outputs[sig.OUTPUT_TEXT])) == [
        b"echo: HELLO", "echo: HéLLO WöRLD".encode()  # tf.strings.upper is ASCII-only.
    ]
    status, body = rest(server, "POST", "/v1/models/latest:predict",
                        {"signature_name": "generate", "instances": ["hello"]})
    assert (status, body) == (200, {"predictions": ["echo: HELLO"]})


def test_metadata(stubs):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "probe"
    request.model_spec.version.value = 1
    response = stubs[0].GetModelMetadata(request)
    assert response.model_spec.version.value == 1
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_map)
    default = signature_map.signature_def[sig.SERVING_DEFAULT]
    assert default.method_name == sig.PREDICT_METHOD
    assert default.inputs[sig.TEXT].dtype == tf.string.as_datatype_enum
    assert set(default.outputs) == set(sig.CLASSIFIER_OUTPUTS) | {BATCH_SIZE}
    assert signature_map.signature_def["classify"].method_name == sig.CLASSIFY_METHOD
    bad = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["graph"])
    bad.model_spec.name = "probe"
    with pytest.raises(grpc.RpcError) as e:
        stubs[0].GetModelMetadata(bad)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_status(stubs):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "probe"
    response = stubs[1].GetModelStatus(request)
    states = {s.version: s.state for s in response.model_version_status}
    assert states == {1: get_model_status_pb2.ModelVersionStatus.AVAILABLE,
                      2: get_model_status_pb2.ModelVersionStatus.AVAILABLE}
    request.model_spec.version_label = "stable"
    assert [s.version for s in stubs[1].GetModelStatus(request).model_version_status] == [1]
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "latest"
    assert [s.version for s in stubs[1].GetModelStatus(request).model_version_status] == [2]


def _oversized():
    return predict_request("latest", ["x" * MAX_MESSAGE_SIZE])


@pytest.mark.parametrize("request_factory, code, fragment", [
    (lambda: predict_request("nope"), grpc.StatusCode.NOT_FOUND, "Latest(nope)"),
    (lambda: predict_request("probe", version=7), grpc.StatusCode.NOT_FOUND, "Specific(probe, 7)"),
    (lambda: predict_request("probe", label="beta"), grpc.StatusCode.NOT_FOUND, "label: beta"),
    (lambda: predict_request("latest", key="txt"), grpc.StatusCode.INVALID_ARGUMENT, "txt"),
    (lambda: predict_request("latest", [1.5, 2.5]), grpc.StatusCode.INVALID_ARGUMENT, '"text" expects dtype DT_STRING'),
    (lambda: predict_request("latest", [["a", "b"]]), grpc.StatusCode.INVALID_ARGUMENT, '"text" expects shape [-1]'),
    (lambda: predict_request("latest", signature="nope"), grpc.StatusCode.INVALID_ARGUMENT, '"nope" not found'),
    (_oversized, grpc.StatusCode.RESOURCE_EXHAUSTED, ""),
])
def test_errors_have_tf_serving_codes_and_the_server_keeps_serving(stubs, request_factory, code, fragment):
    with pytest.raises(grpc.RpcError) as e:
        stubs[0].Predict(request_factory(), timeout=30)
    assert e.value.code() == code
    assert fragment in e.value.details()
    assert stubs[0].Predict(predict_request("latest"), timeout=30).outputs[sig.LABEL].string_val


def test_model_status_errors(stubs):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "nope"
    with pytest.raises(grpc.RpcError) as e:
        stubs[1].GetModelStatus(request)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    request.model_spec.name = "probe"
    request.model_spec.version.value = 9
    with pytest.raises(grpc.RpcError) as e:
        stubs[1].GetModelStatus(request)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def _examples(texts):
    examples = input_pb2.Input()
    for text in texts:
        example = examples.example_list.examples.add()
        example.features.feature[sig.TEXT].bytes_list.value.append(text.encode())
    return examples


def test_classify_and_regress(stubs, server, in_process):
    expected = in_process(2, TEXTS)[sig.PROBABILITIES]
    request = classification_pb2.ClassificationRequest(input=_examples(TEXTS))
    request.model_spec.name = "latest"
    request.model_spec.signature_name = "classify"
    result = stubs[0].Classify(request).result
    for row, probabilities in zip(result.classifications, expected):
        assert [c.label for c in row.classes] == list(LABELS)
        np.testing.assert_allclose([c.score for c in row.classes], probabilities, rtol=1e-6)
    request = regression_pb2.RegressionRequest(input=_examples(TEXTS))
    request.model_spec.name = "latest"
    request.model_spec.signature_name = "regress"
    values = [r.value for r in stubs[0].Regress(request).result.regressions]
    np.testing.assert_allclose(values, expected[:, 1], rtol=1e-6)
    status, body = rest(server, "POST", "/v1/models/latest:regress",
                        {"signature_name": "regress", "examples": [{sig.TEXT: t} for t in TEXTS]})
    assert status == 200
    np.testing.assert_allclose(body["result"], expected[:, 1], rtol=1e-5)
    # Classify needs a classify signature.
    request = classification_pb2.ClassificationRequest(input=_examples(TEXTS))
    request.model_spec.name = "latest"
    with pytest.raises(grpc.RpcError) as e:
        stubs[0].Classify(request)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# ---------------------------------------------------------------------------
# REST.


def test_rest_predict_row_and_columnar_formats(server, in_process):
    expected = in_process(2, TEXTS)
    status, body = rest(server, "POST", "/v1/models/latest:predict", {"instances": TEXTS})
    assert status == 200
    rows = body["predictions"]
    assert [r[sig.LABEL] for r in rows] == [x.decode() for x in expected[sig.LABEL]]
    np.testing.assert_allclose([r[sig.PROBABILITIES] for r in rows], expected[sig.PROBABILITIES], rtol=1e-6)
    # Named row inputs and base64 bytes give the same answer.
    encoded = [{sig.TEXT: {"b64": base64.b64encode(t.encode()).decode()}} for t in TEXTS]
    assert rest(server, "POST", "/v1/models/latest:predict", {"instances": encoded}) == (status, body)
    status, body = rest(server, "POST", "/v1/models/probe/versions/1:predict",
                        {"inputs": {sig.TEXT: TEXTS}})
    assert status == 200
    outputs = body["outputs"]
    np.testing.assert_allclose(outputs[sig.PROBABILITIES], in_process(1, TEXTS)[sig.PROBABILITIES], rtol=1e-6)
    assert outputs[sig.LABEL_ID] == in_process(1, TEXTS)[sig.LABEL_ID].tolist()
    status, body = rest(server, "POST", "/v1/models/probe/labels/stable:predict", {"inputs": TEXTS})
    assert status == 200 and body["outputs"][sig.LABEL] == outputs[sig.LABEL]


def test_rest_status_and_metadata(server):
    status, body = rest(server, "GET", "/v1/models/probe")
    assert status == 200
    assert body == {"model_version_status": [
        {"version": v, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        for v in ("2", "1")
    ]}
    assert rest(server, "GET", "/v1/models/probe/versions/1")[1]["model_version_status"][0]["version"] == "1"
    status, body = rest(server, "GET", "/v1/models/probe/labels/canary/metadata")
    assert status == 200
    assert body["model_spec"] == {"name": "probe", "signature_name": "", "version": "2"}
    default = body["metadata"]["signature_def"]["signature_def"][sig.SERVING_DEFAULT]
    assert default["inputs"][sig.TEXT]["dtype"] == "DT_STRING"
    assert default["methodName"] == sig.PREDICT_METHOD


@pytest.mark.parametrize("method, path, body, status, fragment", [
    ("POST", "/v1/models/nope:predict", {"instances": ["x"]}, 404, "Latest(nope)"),
    ("POST", "/v1/models/latest/versions/9:predict", {"instances": ["x"]}, 404, "Specific(latest, 9)"),
    ("GET", "/v1/models/nope", None, 404, "nope"),
    ("GET", "/v1/models/latest/versions/9/metadata", None, 404, "Specific(latest, 9)"),
    ("POST", "/v1/models/latest:predict", {"inputs": {"txt": ["x"]}}, 400, "txt"),
    ("POST", "/v1/models/latest:predict", {"instances": [1, 2]}, 400, 'input "text" must be DT_STRING'),
    ("POST", "/v1/models/latest:predict", {"inputs": [["a"], ["b"]]}, 400, 'input "text" expects shape'),
    ("POST", "/v1/models/latest:predict", {"instances": ["x"], "inputs": ["x"]}, 400, "exactly one of"),
    ("POST", "/v1/models/latest:predict", {"instances": [{"b64": "%%%"}]}, 400, "base64"),
    ("POST", "/v1/models/latest:predict", "{not json", 400, "JSON Parse error"),
    ("POST", "/v1/models/latest:predict", {"instances": ["x" * MAX_MESSAGE_SIZE]}, 413, "exceeds the limit"),
    ("POST", "/v1/models/latest:explode", {}, 404, "Malformed request"),
])
def test_rest_errors(server, method, path, body, status, fragment):
    raw = body if isinstance(body, str) else None
    got_status, got = rest(server, method, path, None if raw else body, raw=raw)
    assert got_status == status
    assert set(got) == {"error"} and fragment in got["error"]
    assert rest(server, "POST", "/v1/models/latest:predict", {"instances": ["fine"]})[0] == 200


def test_prometheus_metrics(server, stubs):
    stubs[0].Predict(predict_request("latest"))
    status, text = rest(server, "GET", "/monitoring/prometheus/metrics")
    assert status == 200
    ok = [line for line in text.splitlines()
          if line.startswith(":tensorflow:serving:request_count{")
          and 'model_name="latest"' in line and 'API="predict"' in line
          and 'entrypoint="GRPC"' in line and 'status="OK"' in line]
    assert len(ok) == 1 and int(ok[0].split()[-1]) >= 1
    assert "# TYPE :tensorflow:serving:request_latency histogram" in text
    assert ':tensorflow:serving:request_latency_count{model_name="latest",API="predict",entrypoint="GRPC"}' in text
    assert 'status="NOT_FOUND"' in text  # Failed requests are counted too.

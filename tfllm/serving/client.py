"""Clients for TF Serving's gRPC and REST APIs (stock `tensorflow_model_server` or tfllm's).

Both clients take inputs as `{name: list or numpy array}` and return outputs as
`{name: numpy array}`; strings come back as `str` (outputs whose name ends in
`_bytes`, and bytes that are not UTF-8, stay `bytes`), the way TF Serving's
REST API encodes them. No model code is imported here.

Example:

    from tfllm.serving.client import ServingClient
    with ServingClient("localhost:8500") as client:
        out = client.predict("sentiment", {"text": ["a great film"]})
        print(out["label"][0], out["probabilities"][0])
"""

import http.client
import json
import socket
import threading
import time
import urllib.parse

import grpc
from google.protobuf import json_format
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)
from tensorflow.core.framework import types_pb2

from tfllm.serving import protocol
from tfllm.serving.protocol import ServingError

__all__ = ["ServingClient", "RestClient", "ServingError"]

_STATES = get_model_status_pb2.ModelVersionStatus.State


class ServingClient:
    """gRPC client of TF Serving's PredictionService and ModelService.

    Args:
        target: `host:port` of the server.
        timeout: default deadline per call, in seconds.
        retries: extra attempts when the server is UNAVAILABLE (starting,
            restarting, briefly overloaded), with exponential backoff.
        backoff: first wait between attempts, in seconds.
        max_message_size: largest message sent or received, in bytes.
    """

    def __init__(self, target="localhost:8500", *, timeout=10.0, retries=3, backoff=0.1,
                 max_message_size=64 * 1024 * 1024):
        self.target = target
        self.timeout = timeout
        self.retries = int(retries)
        self.backoff = backoff
        self._channel = grpc.insecure_channel(target, options=[
            ("grpc.max_receive_message_length", max_message_size),
            ("grpc.max_send_message_length", max_message_size),
        ])
        self._predict = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def _call(self, method, request, timeout):
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout if timeout else None
        delay = self.backoff
        for attempt in range(self.retries + 1):
            remaining = None if deadline is None else max(0.001, deadline - time.monotonic())
            try:
                return method(request, timeout=remaining)
            except grpc.RpcError as e:
                code = e.code()
                retry = code == grpc.StatusCode.UNAVAILABLE and attempt < self.retries
                if retry and (deadline is None or time.monotonic() + delay < deadline):
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise ServingError(code, e.details() or code.name) from None

    @staticmethod
    def _spec(spec, model, signature=None, version=None, label=None):
        spec.name = model
        if signature:
            spec.signature_name = signature
        if version is not None:
            spec.version.value = int(version)
        if label is not None:
            spec.version_label = label

    def predict_response(self, model, inputs, *, signature=None, version=None, label=None,
                         output_filter=None, timeout=None):
        """Sends a Predict request; returns the raw `PredictResponse`."""
        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, model, signature, version, label)
        for key, value in inputs.items():
            try:
                request.inputs[key].CopyFrom(protocol.to_tensor_proto(value))
            except (TypeError, ValueError) as e:
                raise ValueError(f'input "{key}" cannot be sent as a tensor: {e}') from None
        if output_filter:
            request.output_filter.extend(output_filter)
        return self._call(self._predict.Predict, request, timeout)

    def predict(self, model, inputs, *, signature=None, version=None, label=None,
                output_filter=None, timeout=None):
        """Runs a signature (default `serving_default`); returns `{output: numpy array}`.

        Args:
            model: model name.
            inputs: `{input: value}`; lists of str become DT_STRING, numpy
                arrays keep their dtype (python floats become float32).
            signature: signature name.
            version: integer version, or `label`: a version label; default latest.
            output_filter: output names to return (default all).
            timeout: deadline in seconds (default the client's).
        """
        response = self.predict_response(
            model, inputs, signature=signature, version=version, label=label,
            output_filter=output_filter, timeout=timeout,
        )
        return {k: protocol.decode_strings(k, protocol.to_ndarray(v)) for k, v in response.outputs.items()}

    def classify(self, model, examples, *, context=None, signature=None, version=None,
                 label=None, timeout=None):
        """Classify on `examples` (dicts of features or `tf.train.Example`s); returns [[(label, score)]]."""
        request = classification_pb2.ClassificationRequest(input=protocol.input_proto(examples, context))
        self._spec(request.model_spec, model, signature, version, label)
        response = self._call(self._predict.Classify, request, timeout)
        return [[(c.label, c.score) for c in row.classes] for row in response.result.classifications]

    def regress(self, model, examples, *, context=None, signature=None, version=None,
                label=None, timeout=None):
        """Regress on `examples`; returns a list of floats."""
        request = regression_pb2.RegressionRequest(input=protocol.input_proto(examples, context))
        self._spec(request.model_spec, model, signature, version, label)
        response = self._call(self._predict.Regress, request, timeout)
        return [r.value for r in response.result.regressions]

    def metadata(self, model, *, version=None, label=None, timeout=None):
        """Returns `{"version": int, "signatures": {name: {method_name, inputs, outputs}}}`."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec, model, version=version, label=label)
        response = self._call(self._predict.GetModelMetadata, request, timeout)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        return {
            "version": response.model_spec.version.value,
            "signatures": protocol.summarize_signatures(signature_map.signature_def),
        }

    def status(self, model, *, version=None, label=None, timeout=None):
        """Returns `[{"version", "state", "error_code", "error_message"}]`, newest first."""
        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec, model, version=version, label=label)
        response = self._call(self._models.GetModelStatus, request, timeout)
        return [
            {
                "version": s.version,
                "state": _STATES.Name(s.state),
                "error_code": protocol.code_name(s.status.error_code),
                "error_message": s.status.error_message,
            }
            for s in response.model_version_status
        ]

    def reload_config(self, config, *, timeout=None):
        """Sends a `ModelServerConfig`; raises `ServingError` if the server rejects it."""
        request = model_management_pb2.ReloadConfigRequest(config=config)
        response = self._call(self._models.HandleReloadConfigRequest, request, timeout)
        if response.status.error_code:
            raise ServingError.from_code_value(response.status.error_code, response.status.error_message)

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RestClient:
    """Client of TF Serving's REST API, with the same methods as `ServingClient`.

    Args:
        base_url: e.g. `http://localhost:8501`.
        timeout: socket timeout per call, in seconds.
        retries: extra attempts on connection failures and HTTP 503.
        backoff: first wait between attempts, in seconds.
    """

    def __init__(self, base_url="http://localhost:8501", *, timeout=10.0, retries=3, backoff=0.1):
        url = urllib.parse.urlsplit(base_url if "://" in base_url else "http://" + base_url)
        if url.scheme not in ("http", "https"):
            raise ValueError(f"base_url must be http(s)://host:port. Received: {base_url!r}")
        self._scheme, self._netloc = url.scheme, url.netloc
        self.timeout = timeout
        self.retries = int(retries)
        self.backoff = backoff
        self._local = threading.local()
        self._output_specs = {}

    def _connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            conn = self._local.conn = cls(self._netloc, timeout=self.timeout)
        return conn

    def _request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"} if data is not None else {}
        delay = self.backoff
        for attempt in range(self.retries + 1):
            conn = self._connection()
            try:
                conn.request(method, path, body=data, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                status = response.status
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    self._local.conn = None
            except (ConnectionError, http.client.HTTPException, socket.timeout, OSError) as e:
                conn.close()
                self._local.conn = None
                if attempt < self.retries and not isinstance(e, socket.timeout):
                    time.sleep(delay)
                    delay *= 2
                    continue
                code = (grpc.StatusCode.DEADLINE_EXCEEDED if isinstance(e, socket.timeout)
                        else grpc.StatusCode.UNAVAILABLE)
                raise ServingError(code, f"{method} {path}: {e}") from None
            if status == 503 and attempt < self.retries:
                time.sleep(delay)
                delay *= 2
                continue
            try:
                result = json.loads(payload or b"{}")
            except ValueError:
                result = {"error": payload.decode("utf-8", "replace").strip()}
            if status != 200:
                message = result.get("error", "") if isinstance(result, dict) else str(result)
                raise ServingError.from_http(status, message or f"HTTP {status}")
            return result

    @staticmethod
    def _path(model, version=None, label=None, suffix=""):
        path = "/v1/models/" + urllib.parse.quote(model, safe="")
        if version is not None and label is not None:
            raise ValueError("give at most one of version and label")
        if version is not None:
            path += f"/versions/{int(version)}"
        elif label is not None:
            path += "/labels/" + urllib.parse.quote(label, safe="")
        return path + suffix

    def _output_dtypes(self, model, signature, version, label):
        """`{output: numpy dtype}` of a signature, from the model's metadata (cached)."""
        key = (model, signature or "serving_default", version, label)
        if key not in self._output_specs:
            signatures = self.metadata(model, version=version, label=label)["signatures"]
            if key[1] not in signatures:
                raise ServingError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f'Serving signature key "{key[1]}" not found. Available signatures: {sorted(signatures)}',
                )
            self._output_specs[key] = {
                name: protocol.numpy_dtype(types_pb2.DataType.Value(info["dtype"]))
                for name, info in signatures[key[1]]["outputs"].items()
            }
        return self._output_specs[key]

    def predict(self, model, inputs, *, signature=None, version=None, label=None,
                row_format=False, timeout=None):
        """Runs a signature; returns `{output: numpy array}` like `ServingClient.predict`.

        `row_format=True` sends `instances` (one object per example) instead of
        the columnar `inputs`.
        """
        body = {}
        if signature:
            body["signature_name"] = signature
        encoded = {k: protocol.to_json_value(v) for k, v in inputs.items()}
        if row_format:
            sizes = {len(v) for v in encoded.values() if isinstance(v, list)}
            if len(sizes) != 1 or len(encoded) != sum(isinstance(v, list) for v in encoded.values()):
                raise ValueError("row_format needs every input to be a list of the same length")
            n = sizes.pop()
            body["instances"] = [{k: v[i] for k, v in encoded.items()} for i in range(n)]
        else:
            body["inputs"] = encoded
        result = self._request("POST", self._path(model, version, label, ":predict"), body)
        # JSON carries no dtypes and drops the name of a lone output: the
        # signature's metadata restores both, so results match ServingClient's.
        dtypes = self._output_dtypes(model, signature, version, label)
        if row_format:
            rows = result["predictions"]
            if len(dtypes) == 1:
                columns = {next(iter(dtypes)): rows}
            else:
                columns = {k: [r[k] for r in rows] for k in dtypes}
        else:
            outputs = result["outputs"]
            columns = {next(iter(dtypes)): outputs} if len(dtypes) == 1 else outputs
        return {k: protocol.json_to_output(v, k, dtypes.get(k)) for k, v in columns.items()}

    def classify(self, model, examples, *, context=None, signature=None, version=None, label=None):
        body = {"examples": examples}
        if context is not None:
            body["context"] = context
        if signature:
            body["signature_name"] = signature
        result = self._request("POST", self._path(model, version, label, ":classify"), body)
        return [[(c[0], c[1]) for c in row] for row in result["result"]]

    def regress(self, model, examples, *, context=None, signature=None, version=None, label=None):
        body = {"examples": examples}
        if context is not None:
            body["context"] = context
        if signature:
            body["signature_name"] = signature
        return self._request("POST", self._path(model, version, label, ":regress"), body)["result"]

    def metadata(self, model, *, version=None, label=None):
        result = self._request("GET", self._path(model, version, label, "/metadata"))
        signature_map = json_format.ParseDict(
            result["metadata"]["signature_def"], get_model_metadata_pb2.SignatureDefMap()
        )
        return {
            "version": int(result["model_spec"]["version"]),
            "signatures": protocol.summarize_signatures(signature_map.signature_def),
        }

    def status(self, model, *, version=None, label=None):
        result = self._request("GET", self._path(model, version, label))
        return [
            {
                "version": int(s["version"]),
                "state": s["state"],
                "error_code": s.get("status", {}).get("error_code", "OK"),
                "error_message": s.get("status", {}).get("error_message", ""),
            }
            for s in result["model_version_status"]
        ]

    def close(self):
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

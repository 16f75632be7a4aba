"""TF Serving's REST API over the standard library's threaded HTTP server.

`POST /v1/models/NAME[/versions/N|/labels/L]:(predict|classify|regress)`,
`GET /v1/models/NAME[...]` (status), `GET .../metadata`, and
`GET /monitoring/prometheus/metrics`. Errors are `{"error": "..."}` with the
HTTP status TF Serving maps the gRPC code to.
"""

import http.server
import json
import re
import urllib.parse

import grpc
from google.protobuf import json_format
from tensorflow.core.example import feature_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    input_pb2,
    model_pb2,
    regression_pb2,
)

from tfllm.serving import protocol
from tfllm.serving import rest_json
from tfllm.serving import servables
from tfllm.serving.protocol import ServingError, invalid, not_found

_State = get_model_status_pb2.ModelVersionStatus.State

# REST.

_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>-?\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<verb>predict|classify|regress))?/?$"
)


def _rest_model_spec(match, signature_name=""):
    spec = model_pb2.ModelSpec(name=urllib.parse.unquote(match["name"]))
    if match["version"] is not None:
        version = int(match["version"])
        if not -2 ** 63 <= version < 2 ** 63:
            raise invalid(f"version must be a 64-bit integer. Received: {match['version']}")
        spec.version.value = version
    if match["label"] is not None:
        spec.version_label = urllib.parse.unquote(match["label"])
    if signature_name:
        try:
            spec.signature_name = signature_name
        except UnicodeEncodeError:  # A lone surrogate such as "\ud800".
            raise invalid('"signature_name" must be valid Unicode') from None
    return spec


def _rest_inputs(body, signature_def):
    """Decodes `instances` (row) or `inputs` (columnar) into numpy inputs; returns (inputs, row_format)."""
    specs = signature_def.inputs
    if ("instances" in body) == ("inputs" in body):
        raise invalid(
            'request must have exactly one of "instances" (row format) or "inputs" (columnar format)'
        )
    if "inputs" in body:
        value = body["inputs"]
        if isinstance(value, dict) and not (set(value) == {"b64"}):
            named = value
        elif len(specs) == 1:
            named = {next(iter(specs)): value}
        else:
            raise invalid(f'"inputs" must be an object keyed by input name ({sorted(specs)})')
        unknown = sorted(set(named) - set(specs))
        if unknown:
            raise invalid(
                f"input tensor alias not found in signature: {', '.join(unknown)}. Inputs expected "
                f"to be in the set {{{','.join(sorted(specs))}}}"
            )
        return {k: rest_json.json_to_ndarray(v, specs[k].dtype, k) for k, v in named.items()}, False
    instances = body["instances"]
    if not isinstance(instances, list) or not instances:
        raise invalid('"instances" must be a non-empty list')
    if all(isinstance(x, dict) and set(x) != {"b64"} for x in instances):
        keys = set(instances[0])
        for i, x in enumerate(instances):
            if set(x) != keys:
                raise invalid(
                    f"instances[{i}] has keys {sorted(x)} but instances[0] has {sorted(keys)}; "
                    "every instance needs the same named inputs"
                )
        unknown = sorted(keys - set(specs))
        if unknown:
            raise invalid(
                f"input tensor alias not found in signature: {', '.join(unknown)}. Inputs expected "
                f"to be in the set {{{','.join(sorted(specs))}}}"
            )
        columns = {k: [x[k] for x in instances] for k in keys}
    elif len(specs) == 1:
        columns = {next(iter(specs)): instances}
    else:
        raise invalid(f'"instances" must be objects keyed by input name ({sorted(specs)})')
    return {k: rest_json.json_to_ndarray(v, specs[k].dtype, k) for k, v in columns.items()}, True


def _rest_outputs(outputs, row_format):
    encoded = {k: rest_json.ndarray_to_json(v, k) for k, v in outputs.items()}
    if not row_format:
        return {"outputs": encoded[next(iter(encoded))] if len(encoded) == 1 else encoded}
    sizes = {v.shape[0] if v.ndim else None for v in outputs.values()}
    if len(sizes) != 1 or None in sizes:
        raise invalid(
            "outputs do not share a batch dimension, so they cannot be returned as rows; "
            'send "inputs" (columnar format) instead'
        )
    if len(encoded) == 1:
        return {"predictions": encoded[next(iter(encoded))]}
    n = sizes.pop()
    return {"predictions": [{k: v[i] for k, v in encoded.items()} for i in range(n)]}


def _feature(value, name):
    values = value if isinstance(value, list) else [value]
    feature = feature_pb2.Feature()
    if all(isinstance(v, bool) or isinstance(v, int) for v in values):
        if any(not -2 ** 63 <= v < 2 ** 63 for v in values):
            raise invalid(f'feature "{name}": integers must fit in int64. Received: {value!r:.80}')
        feature.int64_list.value.extend(int(v) for v in values)
    elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        feature.float_list.value.extend(float(v) for v in values)
    elif all(isinstance(v, str) or (isinstance(v, dict) and set(v) == {"b64"}) for v in values):
        feature.bytes_list.value.extend(rest_json.json_bytes(v, name) for v in values)
    else:
        raise invalid(f'feature "{name}" must be numbers or strings. Received: {value!r:.80}')
    return feature


def _rest_examples(body):
    examples = body.get("examples")
    if not isinstance(examples, list) or not examples:
        raise invalid('request needs a non-empty "examples" list')
    proto = input_pb2.Input()
    target = proto.example_list_with_context if "context" in body else proto.example_list
    if "context" in body:
        if not isinstance(body["context"], dict):
            raise invalid('"context" must be an object of features')
        for k, v in body["context"].items():
            target.context.features.feature[k].CopyFrom(_feature(v, k))
    for i, example in enumerate(examples):
        if not isinstance(example, dict):
            raise invalid(f"examples[{i}] must be an object of features")
        e = target.examples.add()
        for k, v in example.items():
            e.features.feature[k].CopyFrom(_feature(v, k))
    return proto


class _RestHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tfllm-model-server"
    # Seconds a connection may stall mid-request or idle between requests: a
    # client that never finishes its body must not hold a thread forever.
    timeout = 60

    def log_message(self, format, *args):  # Access logs stay quiet, as TF Serving's.
        pass

    @property
    def app(self):
        return self.server.app

    def _send(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_json(self, status, obj):
        self._send(status, json.dumps(obj, separators=(",", ":")))

    def _error(self, error):
        self._send_json(error.http_status, {"error": error.message})

    def _guarded(self, handler):
        """Runs `handler`; whatever goes wrong, the client gets an answer, never a dropped connection."""
        try:
            handler()
        except ServingError as e:
            self._error(e)
        except RecursionError:
            self._error(invalid("request nested too deeply"))
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # The client left or stalled; nobody to answer.
        except Exception as e:
            self._error(servables.as_serving_error(e, self.command, self.path))

    def do_GET(self):
        self._guarded(self._get)

    def do_POST(self):
        self._guarded(self._post)

    def _get(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/monitoring/prometheus/metrics":
            self._send(200, self.app.metrics.render(), "text/plain; version=0.0.4")
            return
        match = _PATH.match(path)
        if not match or match["verb"]:
            self._error(not_found(f"Malformed request: GET {path}"))
            return
        spec = _rest_model_spec(match)
        handle = self.app.rest_recorder
        try:
            if match["metadata"]:
                request = get_model_metadata_pb2.GetModelMetadataRequest(
                    model_spec=spec, metadata_field=["signature_def"]
                )
                servable, _ = handle(
                    "metadata", spec.name, lambda: servables.metadata(self.app.manager, request)
                )
                signature_map = {
                    name: json_format.MessageToDict(d) for name, d in servable.signature_defs.items()
                }
                self._send_json(200, {
                    "model_spec": {"name": servable.name, "signature_name": "",
                                   "version": str(servable.version)},
                    "metadata": {"signature_def": {"signature_def": signature_map}},
                })
            else:
                request = get_model_status_pb2.GetModelStatusRequest(model_spec=spec)
                response = handle(
                    "status", spec.name, lambda: servables.status(self.app.manager, request)
                )
                self._send_json(200, {"model_version_status": [
                    {
                        "version": str(s.version),
                        "state": _State.Name(s.state),
                        "status": {
                            "error_code": protocol.code_name(s.status.error_code),
                            "error_message": s.status.error_message,
                        },
                    }
                    for s in response.model_version_status
                ]})
        except ServingError as e:
            self._error(e)

    def _post(self):
        path = urllib.parse.urlsplit(self.path).path
        match = _PATH.match(path)
        if not match or not match["verb"]:
            self._drain()
            self._error(not_found(f"Malformed request: POST {path}"))
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._error(invalid("Content-Length must be a non-negative integer"))
            return
        if length > self.app.max_message_size:
            self.close_connection = True
            self._error(ServingError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"request body of {length} bytes exceeds the limit of {self.app.max_message_size} bytes",
            ))
            return
        raw = self.rfile.read(length)
        verb = match["verb"]
        spec_name = urllib.parse.unquote(match["name"])
        try:
            # Refused before parsing: under overload a refusal must stay cheap.
            with self.app.admission.admit():
                result = self._inference(match, verb, spec_name, raw)
            self._send_json(200, result)
        except ServingError as e:
            self._error(e)

    def _inference(self, match, verb, spec_name, raw):
        try:
            body = json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError) as e:
            raise invalid(f"JSON Parse error: {e}") from None
        except RecursionError:
            raise invalid("JSON Parse error: the request body is nested too deeply") from None
        if not isinstance(body, dict):
            raise invalid("request body must be a JSON object")
        signature_name = body.get("signature_name", "")
        if not isinstance(signature_name, str):
            raise invalid('"signature_name" must be a string')
        spec = _rest_model_spec(match, signature_name)
        return self.app.rest_recorder(verb, spec_name, lambda: self._run(verb, spec, body))

    def _drain(self):
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = 0
        if 0 < length <= self.app.max_message_size:
            self.rfile.read(length)
        elif length:
            self.close_connection = True

    def _run(self, verb, spec, body):
        manager = self.app.manager
        if verb == "predict":
            servable = manager.resolve(spec)
            name, signature_def = servable.signature(spec.signature_name)
            inputs, row_format = _rest_inputs(body, signature_def)
            _, outputs = servables.predict(servable, spec, inputs)
            return _rest_outputs(outputs, row_format)
        examples = _rest_examples(body)
        if verb == "classify":
            request = classification_pb2.ClassificationRequest(model_spec=spec, input=examples)
            _, _, result = servables.classify(manager, request)
            return {"result": [[[c.label, c.score] for c in row.classes] for row in result.classifications]}
        request = regression_pb2.RegressionRequest(model_spec=spec, input=examples)
        _, _, result = servables.regress(manager, request)
        return {"result": [r.value for r in result.regressions]}


class RestServer(http.server.ThreadingHTTPServer):
    """Threaded HTTP server answering TF Serving's REST API for a `ModelServer` (`app`)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, app):
        super().__init__(address, _RestHandler)
        self.app = app

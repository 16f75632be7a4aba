"""One loaded model version, and requests independent of the transport.

A `Servable` validates inputs against its SignatureDefs and runs signatures,
through the batcher when batching is on. The `predict`/`classify`/`regress`/
`metadata`/`status` functions implement TF Serving's semantics for both gRPC
and REST; `versions.ModelManager` resolves which servable a request gets.
"""

import asyncio
import functools
import logging
import threading
import time

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.example import example_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    regression_pb2,
)

from tfllm.serving import export
from tfllm.serving import protocol
from tfllm.serving import signatures as sig
from tfllm.serving.batching import BatchScheduler
from tfllm.serving.protocol import ServingError, invalid, not_found

log = logging.getLogger("tfllm.serving")

# Servables: one loaded version of one model.


def _set_future(future, outputs, error):
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(outputs)


class Servable:
    """A loaded SavedModel version: signature functions, their SignatureDefs, batchers."""

    def __init__(self, name, version, path, batching=None, metrics=None):
        self.name = name
        self.version = version
        self.path = path
        self.signature_defs = export.read_signature_defs(path)
        self._module = tf.saved_model.load(path, tags=["serve"])
        self._functions = dict(self._module.signatures)
        self._batching = batching
        self._metrics = metrics
        self._schedulers = {}
        self._closed = False
        self._lock = threading.Lock()

    # -- Validation.

    def signature(self, signature_name):
        signature_name = signature_name or sig.SERVING_DEFAULT
        if signature_name not in self._functions:
            raise invalid(
                f'Serving signature key "{signature_name}" not found. Available signatures: '
                f"{sorted(self._functions)}"
            )
        return signature_name, self.signature_defs[signature_name]

    @staticmethod
    def check_inputs(signature_name, signature_def, inputs):
        expected = signature_def.inputs
        missing = sorted(set(expected) - set(inputs))
        extra = sorted(set(inputs) - set(expected))
        if missing or extra:
            parts = []
            if extra:
                parts.append(f"input tensor alias not found in signature: {', '.join(extra)}")
            if missing:
                parts.append(f"missing input: {', '.join(missing)}")
            raise invalid(
                f"{'; '.join(parts)}. Inputs expected to be in the set {{{','.join(sorted(expected))}}} "
                f'for signature "{signature_name}"'
            )
        for key, value in inputs.items():
            info = expected[key]
            want = protocol.numpy_dtype(info.dtype)
            got_ok = (value.dtype == object) if want == object else (value.dtype == want)
            if not got_ok:
                raise invalid(
                    f'input "{key}" expects dtype {protocol.dtype_name(info.dtype)} but '
                    f"{protocol.describe_dtype(value.dtype)} was provided"
                )
            shape = protocol.shape_list(info.tensor_shape)
            if shape is not None and (
                len(shape) != value.ndim
                or any(d >= 0 and d != s for d, s in zip(shape, value.shape))
            ):
                raise invalid(
                    f'input "{key}" expects shape {shape} (-1: any size) but shape '
                    f"{list(value.shape)} was provided"
                )

    # -- Execution.

    def _call(self, signature_name, inputs):
        fn = self._functions[signature_name]
        try:
            outputs = fn(**{k: tf.constant(v) for k, v in inputs.items()})
        except tf.errors.OpError as e:
            raise ServingError.from_code_value(e.error_code, op_error_message(e)) from None
        return {k: v.numpy() for k, v in outputs.items()}

    def _scheduler(self, signature_name, inputs):
        """The signature's batch scheduler if this request can be batched, else None."""
        if self._batching is None:
            return None
        rows = {v.shape[0] if v.ndim else None for v in inputs.values()}
        if len(rows) != 1 or None in rows or 0 in rows:
            return None
        if max(rows) > self._batching.max_batch_size:
            # It would run alone anyway, and counted against the queue limit a
            # request over max_enqueued_batches * max_batch_size rows could
            # never be admitted: UNAVAILABLE forever, retries included.
            return None
        with self._lock:
            if self._closed:
                return None
            scheduler = self._schedulers.get(signature_name)
            if scheduler is None:
                on_batch = None
                if self._metrics is not None:
                    on_batch = lambda size: self._metrics.observe_batch(self.name, size)  # noqa: E731
                scheduler = BatchScheduler(
                    lambda x, s=signature_name: self._call(s, x), self._batching, on_batch
                )
                self._schedulers[signature_name] = scheduler
        return scheduler

    def run(self, signature_name, inputs):
        """Runs a validated signature, through the batcher when batching is on."""
        scheduler = self._scheduler(signature_name, inputs)
        if scheduler is None:
            return self._call(signature_name, inputs)
        return scheduler.run(inputs, len(next(iter(inputs.values()))))

    async def run_async(self, signature_name, inputs, executor):
        """`run` for an event loop: batched calls cost no thread hand-off per request."""
        loop = asyncio.get_running_loop()
        scheduler = self._scheduler(signature_name, inputs)
        if scheduler is not None:
            future = loop.create_future()
            callback = functools.partial(_set_future, future)  # Runs on `loop`.
            if scheduler.submit(inputs, len(next(iter(inputs.values()))), callback, loop=loop):
                return await future
        return await loop.run_in_executor(executor, self._call, signature_name, inputs)

    def warmup(self):
        """Replays `assets.extra/tf_serving_warmup_requests`; returns how many ran."""
        logs = export.read_warmup_requests(self.path)
        for entry in logs:
            if not entry.HasField("predict_log"):
                raise export.ExportError(
                    f"{self.path}: only predict warmup requests are supported"
                )
            request = entry.predict_log.request
            name, signature_def = self.signature(request.model_spec.signature_name)
            inputs = {k: protocol.to_ndarray(v, k) for k, v in request.inputs.items()}
            self.check_inputs(name, signature_def, inputs)
            self._call(name, inputs)
        return len(logs)

    def close(self):
        with self._lock:
            self._closed = True
            schedulers, self._schedulers = list(self._schedulers.values()), {}
        for scheduler in schedulers:
            scheduler.close()


# ---------------------------------------------------------------------------
# Requests, independent of the transport.


def filter_outputs(outputs, output_filter):
    if not output_filter:
        return outputs
    unknown = sorted(set(output_filter) - set(outputs))
    if unknown:
        raise invalid(f"output tensor alias not found in signature: {', '.join(unknown)}")
    return {k: outputs[k] for k in output_filter}


def prepare_predict(servable, model_spec, inputs):
    """Validates a Predict request against the signature; returns the signature name."""
    name, signature_def = servable.signature(model_spec.signature_name)
    if signature_def.method_name not in ("", sig.PREDICT_METHOD, sig.CLASSIFY_METHOD, sig.REGRESS_METHOD):
        raise invalid(f'signature "{name}" has unsupported method {signature_def.method_name}')
    servable.check_inputs(name, signature_def, inputs)
    return name


def predict(servable, model_spec, inputs, output_filter=()):
    """Runs a Predict request; returns `(signature_name, outputs)`."""
    name = prepare_predict(servable, model_spec, inputs)
    return name, filter_outputs(servable.run(name, inputs), output_filter)


def serialized_examples(input_proto):
    kind = input_proto.WhichOneof("kind")
    if kind == "example_list":
        examples = input_proto.example_list.examples
        return [e.SerializeToString() for e in examples]
    if kind == "example_list_with_context":
        context = input_proto.example_list_with_context.context
        out = []
        for example in input_proto.example_list_with_context.examples:
            merged = example_pb2.Example()
            merged.CopyFrom(context)
            merged.MergeFrom(example)  # The example's own features win.
            out.append(merged.SerializeToString())
        return out
    raise invalid("Input is empty: set example_list or example_list_with_context")


def _run_examples(manager, model_spec, input_proto, method):
    servable = manager.resolve(model_spec)
    name, signature_def = servable.signature(model_spec.signature_name)
    if signature_def.method_name != method:
        raise invalid(
            f'Expected {method} signature, but signature "{name}" has method_name '
            f'"{signature_def.method_name}"'
        )
    examples = serialized_examples(input_proto)
    if not examples:
        raise invalid("Input is empty: no examples")
    input_key = tf.saved_model.CLASSIFY_INPUTS  # Same key for regression.
    if set(signature_def.inputs) != {input_key}:
        raise invalid(f'signature "{name}" must have exactly one input named "{input_key}"')
    array = np.empty(len(examples), dtype=object)
    array[:] = examples
    return servable, name, servable.run(name, {input_key: array})


def classify(manager, request):
    servable, name, outputs = _run_examples(
        manager, request.model_spec, request.input, sig.CLASSIFY_METHOD
    )
    classes = outputs.get(tf.saved_model.CLASSIFY_OUTPUT_CLASSES)
    scores = outputs.get(tf.saved_model.CLASSIFY_OUTPUT_SCORES)
    if classes is None and scores is None:
        raise invalid(f'classify signature "{name}" has neither "classes" nor "scores" outputs')
    n = len(classes if classes is not None else scores)
    classes = None if classes is None else classes.reshape(n, -1)  # (examples, classes)
    scores = None if scores is None else scores.reshape(n, -1)  # (examples, classes)
    result = classification_pb2.ClassificationResult()
    for i in range(n):
        row = result.classifications.add()
        for j in range((classes if classes is not None else scores).shape[1]):
            entry = row.classes.add()
            if classes is not None:
                entry.label = classes[i, j].decode("utf-8", "replace")
            if scores is not None:
                entry.score = float(scores[i, j])
    return servable, name, result


def regress(manager, request):
    servable, name, outputs = _run_examples(
        manager, request.model_spec, request.input, sig.REGRESS_METHOD
    )
    values = outputs.get(tf.saved_model.REGRESS_OUTPUTS)
    if values is None:
        raise invalid(f'regress signature "{name}" has no "outputs" output')
    result = regression_pb2.RegressionResult()
    for v in values.reshape(len(values), -1)[:, 0]:
        result.regressions.add(value=float(v))
    return servable, name, result


def op_error_message(error):
    """The line of a TensorFlow error that says what failed (a graph's assertion, not its header)."""
    lines = [line.strip() for line in error.message.strip().splitlines() if line.strip()]
    if lines and lines[0].startswith("Graph execution error"):
        # What failed comes last, before the node it failed at ("[[{{node ...}}]]").
        lines = [line for line in lines[1:] if not line.startswith("[[")][-1:] or lines
    return lines[0] if lines else type(error).__name__


def fill_spec(spec, servable, signature_name):
    spec.name = servable.name
    spec.version.value = servable.version
    spec.signature_name = signature_name


def metadata(manager, request):
    servable = manager.resolve(request.model_spec)
    fields = list(request.metadata_field)
    if fields != ["signature_def"]:
        raise invalid(
            f"Metadata field {', '.join(f for f in fields if f != 'signature_def') or '(none)'} "
            'is not supported; request metadata_field "signature_def"'
        )
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    fill_spec(response.model_spec, servable, "")
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for name, signature_def in servable.signature_defs.items():
        signature_map.signature_def[name].CopyFrom(signature_def)
    response.metadata["signature_def"].Pack(signature_map)
    return servable, response


def status(manager, request):
    model = manager.model(request.model_spec.name)
    spec = request.model_spec
    status = dict(model.status)
    if spec.version_label:
        if spec.version_label not in model.config.version_labels:
            raise not_found(f"Unrecognized servable version label: {spec.version_label}")
        versions = [model.config.version_labels[spec.version_label]]
    elif spec.HasField("version"):
        versions = [spec.version.value]
    else:
        versions = sorted(status, reverse=True)
    response = get_model_status_pb2.GetModelStatusResponse()
    for version in versions:
        if version not in status:
            raise not_found(f"Could not find version {version} of model {model.name}")
        state, code, message = status[version]
        entry = response.model_version_status.add(version=version, state=state)
        entry.status.error_code = code
        entry.status.error_message = message
    if not versions:
        raise not_found(f"Could not find any versions of model {model.name}")
    return response


def as_serving_error(error, api, model_name):
    """The status a failed request answers with (unexpected errors are logged: INTERNAL)."""
    if isinstance(error, ServingError):
        return error
    if isinstance(error, export.ExportError):
        return ServingError(grpc.StatusCode.INVALID_ARGUMENT, str(error))
    log.error("%s request for model %s failed", api, model_name, exc_info=error)
    return ServingError(grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}")


class Recorder:
    """Runs requests of one transport: times and counts them, turns failures into statuses."""

    def __init__(self, metrics, entrypoint):
        self.metrics = metrics
        self.entrypoint = entrypoint

    def __call__(self, api, model_name, fn):
        start = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            return fn()
        except Exception as e:
            error = as_serving_error(e, api, model_name)
            code = error.code
            raise error from None
        finally:
            self.observe(api, model_name, code, start)

    def observe(self, api, model_name, code, start):
        self.metrics.observe_request(
            model_name or "", api, self.entrypoint, code, time.perf_counter() - start
        )

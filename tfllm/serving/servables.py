"""Loaded model versions, the policies that pick them, and transport-independent requests.

A `ModelManager` holds one `_Model` per configured name; each polls its base
path, loads the versions its policy wants (running their warmup requests) and
only then unloads the versions it no longer wants, so a request always finds
a ready version. The `predict`/`classify`/`regress`/`metadata`/`status`
functions implement TF Serving's semantics for both gRPC and REST.
"""

import asyncio
import functools
import logging
import os
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

_State = get_model_status_pb2.ModelVersionStatus.State

# Servables: one loaded version of one model.


def _set_future(future, outputs, error):
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(outputs)


class _Servable:
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
            raise ServingError.from_code_value(e.error_code, e.message.strip().splitlines()[0]) from None
        return {k: v.numpy() for k, v in outputs.items()}

    def _scheduler(self, signature_name, inputs):
        """The signature's batch scheduler if this request can be batched, else None."""
        if self._batching is None:
            return None
        rows = {v.shape[0] if v.ndim else None for v in inputs.values()}
        if len(rows) != 1 or None in rows or 0 in rows:
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
            inputs = {k: protocol.to_ndarray(v) for k, v in request.inputs.items()}
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
# Models: versions of one name under one base path.


class _Model:
    def __init__(self, config, manager):
        self.manager = manager
        self.servables = {}  # version -> _Servable; replaced, never mutated.
        self.status = {}  # version -> (state, error_code, error_message)
        self._failed = {}  # version -> saved_model.pb mtime that failed to load
        self._sync_lock = threading.Lock()
        self.configure(config)

    def configure(self, config):
        if config.model_platform not in ("", "tensorflow"):
            raise ValueError(
                f"model {config.name!r}: only model_platform 'tensorflow' is served. "
                f"Received: {config.model_platform!r}"
            )
        self.config = config
        self.name = config.name
        self.base_path = config.base_path

    def wanted(self, on_disk):
        policy = self.config.model_version_policy
        kind = policy.WhichOneof("policy_choice")
        if kind == "all":
            return set(on_disk)
        if kind == "specific":
            return set(on_disk) & set(policy.specific.versions)
        n = policy.latest.num_versions if kind == "latest" and policy.latest.num_versions else 1
        return set(on_disk[-n:])

    def sync(self):
        """Loads the versions the policy wants, then unloads the ones it no longer wants."""
        with self._sync_lock:
            try:
                on_disk = export.list_versions(self.base_path)
            except tf.errors.OpError as e:
                log.warning("model %s: cannot list %s: %s", self.name, self.base_path, e.message)
                return
            wanted = self.wanted(on_disk)
            for version in sorted(wanted - set(self.servables), reverse=True):
                self._load(version)
            unwanted = set(self.servables) - wanted
            if unwanted and not wanted & set(self.servables):
                # None of the wanted versions loaded: keep answering with the
                # newest one there is rather than with nothing.
                keep = max(unwanted)
                if keep in on_disk:
                    unwanted.discard(keep)
            for version in sorted(unwanted):
                self._unload(version)

    def _load(self, version):
        path = os.path.join(self.base_path, str(version))
        try:
            stamp = os.path.getmtime(os.path.join(path, "saved_model.pb"))
        except OSError:
            stamp = None
        if self._failed.get(version) == stamp:
            return
        self.status[version] = (_State.LOADING, 0, "")
        start = time.monotonic()
        try:
            servable = _Servable(
                self.name, version, path, self.manager.batching, self.manager.metrics
            )
            warmed = servable.warmup()
        except Exception as e:  # A broken version must never take the server down.
            message = str(getattr(e, "message", e)).strip().splitlines()
            message = message[0] if message else type(e).__name__
            self._failed[version] = stamp
            self.status[version] = (_State.END, grpc.StatusCode.UNKNOWN.value[0], message)
            log.error("model %s version %d failed to load from %s: %s", self.name, version, path, message)
            return
        self._failed.pop(version, None)
        servables = dict(self.servables)
        servables[version] = servable
        self.servables = servables
        self.status[version] = (_State.AVAILABLE, 0, "")
        log.info(
            "loaded model %s version %d from %s in %.2fs (%d warmup requests)",
            self.name, version, path, time.monotonic() - start, warmed,
        )

    def _unload(self, version):
        servable = self.servables.get(version)
        if servable is None:
            return
        self.status[version] = (_State.UNLOADING, 0, "")
        servables = dict(self.servables)
        del servables[version]
        self.servables = servables
        servable.close()
        self.status[version] = (_State.END, 0, "")
        log.info("unloaded model %s version %d", self.name, version)

    def unload_all(self):
        with self._sync_lock:
            for version in sorted(self.servables):
                self._unload(version)

    def resolve(self, model_spec):
        servables = self.servables
        if model_spec.HasField("version") and model_spec.version_label:
            raise invalid("model_spec sets both version and version_label; set at most one")
        if model_spec.version_label:
            label = model_spec.version_label
            labels = self.config.version_labels
            if label not in labels:
                raise not_found(f"Unrecognized servable version label: {label} (model {self.name})")
            version = labels[label]
            servable = servables.get(version)
            if servable is None:
                raise not_found(f"Servable not found for request: Specific({self.name}, {version})")
            return servable
        if model_spec.HasField("version"):
            version = model_spec.version.value
            servable = servables.get(version)
            if servable is None:
                raise not_found(f"Servable not found for request: Specific({self.name}, {version})")
            return servable
        if not servables:
            raise not_found(f"Servable not found for request: Latest({self.name})")
        return servables[max(servables)]


class ModelManager:
    """The served models, their versions, and the polling that keeps them current."""

    def __init__(self, config, *, batching=None, metrics=None):
        self.batching = batching
        self.metrics = metrics
        self.models = {}
        self._config_lock = threading.Lock()
        self.reload(config)

    def reload(self, config):
        """Applies a `ModelServerConfig`: adds, reconfigures and removes models, then syncs."""
        if config.WhichOneof("config") != "model_config_list":
            raise invalid("only model_config_list configs are supported")
        entries = list(config.model_config_list.config)
        names = [c.name for c in entries]
        for c in entries:
            if not c.name or not c.base_path:
                raise invalid(f"every model config needs a name and a base_path. Received: {c}")
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise invalid(f"model names must be unique. Received twice: {duplicates}")
        with self._config_lock:
            models = dict(self.models)
            for c in entries:
                try:
                    if c.name in models:
                        models[c.name].configure(c)
                    else:
                        models[c.name] = _Model(c, self)
                except ValueError as e:
                    raise invalid(str(e)) from None
            removed = [models.pop(n) for n in list(models) if n not in names]
            self.models = models
            for model in models.values():
                model.sync()
                for label, version in model.config.version_labels.items():
                    if version not in model.servables:
                        log.warning(
                            "model %s: label %r points at version %d, which is not loaded",
                            model.name, label, version,
                        )
            for model in removed:
                model.unload_all()

    def poll(self):
        for model in list(self.models.values()):
            model.sync()

    def model(self, name):
        model = self.models.get(name)
        if model is None:
            raise not_found(f"Servable not found for request: Latest({name})")
        return model

    def resolve(self, model_spec):
        if not model_spec.name:
            raise invalid("model_spec.name is required")
        return self.model(model_spec.name).resolve(model_spec)

    def close(self):
        for model in list(self.models.values()):
            model.unload_all()


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

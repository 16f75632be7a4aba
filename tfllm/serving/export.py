"""Versioned, atomic SavedModel exports laid out as TF Serving expects.

A model's base path holds one integer-named directory per version
(`saved_models/sentiment/1/`, `.../2/`). Exports are written to a hidden
temporary directory beside the versions and renamed into place, so a server
polling the base path never sees a half-written version, and an existing
version is never overwritten.
"""

import functools
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Mapping

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import saved_model_pb2

from tfllm.serving import signatures as sig

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# TF Serving reads at most this many warmup records.
MAX_WARMUP_RECORDS = 1000


class ExportError(ValueError):
    """An export could not be written or a model directory could not be read."""


def list_versions(base_path):
    """Returns the integer versions under `base_path`, ascending ([] if none)."""
    if not tf.io.gfile.isdir(base_path):
        return []
    versions = []
    for name in tf.io.gfile.listdir(base_path):
        name = name.rstrip("/")
        if name.isdigit() and tf.io.gfile.exists(
            os.path.join(base_path, name, "saved_model.pb")
        ):
            versions.append(int(name))
    return sorted(versions)


def next_version(base_path):
    """Returns the next free integer version under `base_path` (1 if empty)."""
    taken = [
        int(name.rstrip("/"))
        for name in (tf.io.gfile.listdir(base_path) if tf.io.gfile.isdir(base_path) else [])
        if name.rstrip("/").isdigit()
    ]
    return max(taken, default=0) + 1


def resolve_model_dir(path):
    """Returns the SavedModel directory for `path`.

    `path` is either a version directory (it holds `saved_model.pb`) or a base
    path, meaning its latest version.
    """
    if tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        return path
    if not tf.io.gfile.exists(path):
        raise ExportError(f"{path}: no such model directory")
    versions = list_versions(path)
    if not versions:
        raise ExportError(
            f"{path}: no SavedModel here (expected saved_model.pb or integer "
            "version directories holding one)"
        )
    return os.path.join(path, str(versions[-1]))


def export_saved_model(obj, base_path, signatures, *, version=None, options=None,
                       warmup_inputs=None, method_names=None, check_ops=True):
    """Writes `obj` as `base_path/<version>/` atomically and returns that path.

    Args:
        obj: a trackable (`tf.Module` or Keras model) holding the variables.
        base_path: the model's base path; created if missing.
        signatures: dict of signature name to concrete function (or
            `tf.function` with an input signature). Keys of the returned dicts
            become output names.
        version: integer version; default the next free one. An existing
            version is never overwritten.
        options: optional `tf.saved_model.SaveOptions`.
        warmup_inputs: example inputs written to
            `assets.extra/tf_serving_warmup_requests`, one batch-1 request per
            example: `{"text": [...]}` for `serving_default`, or
            `{signature_name: {"text": [...]}}` for several signatures.
        method_names: optional `{signature_name: method}` to mark signatures
            as `tensorflow/serving/classify` or `.../regress` (default predict).
        check_ops: run `check_serving_ops` on the export before publishing it.

    Returns:
        The path of the new version directory.

    Example:

        export_saved_model(model, "saved_models/sentiment",
                           {"serving_default": model.serve},
                           warmup_inputs={"text": ["a great film"]})
    """
    if version is None:
        version = next_version(base_path)
    if int(version) < 0:
        raise ExportError(f"version must be a non-negative integer. Received: version={version}")
    final = os.path.join(base_path, str(int(version)))
    if tf.io.gfile.exists(final):
        raise ExportError(f"{final}: version {version} already exists; refusing to overwrite it")
    tf.io.gfile.makedirs(base_path)
    # A dot-name is never an integer, so servers polling base_path ignore it.
    tmp = os.path.join(base_path, f".tmp-{version}-{uuid.uuid4().hex[:8]}")
    try:
        tf.saved_model.save(obj, tmp, signatures=signatures, options=options)
        if method_names:
            _set_method_names(tmp, method_names)
        if warmup_inputs:
            write_warmup_requests(tmp, warmup_inputs)
        if check_ops:
            check_serving_ops(tmp)
        if tf.io.gfile.exists(final):
            raise ExportError(
                f"{final}: version {version} appeared while exporting; refusing to overwrite it"
            )
        tf.io.gfile.rename(tmp, final)
    finally:
        if tf.io.gfile.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def read_saved_model_proto(path):
    """Returns the `SavedModel` proto of a version directory (or base path's latest)."""
    model_dir = resolve_model_dir(path)
    pb = os.path.join(model_dir, "saved_model.pb")
    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString(tf.io.gfile.GFile(pb, "rb").read())
    except Exception as e:  # DecodeError and I/O errors alike.
        raise ExportError(f"{pb}: not a readable SavedModel ({e})") from None
    return proto


def read_signature_defs(path):
    """Returns `{name: SignatureDef}` of the `serve` MetaGraph (TF Serving's view)."""
    proto = read_saved_model_proto(path)
    for meta_graph in proto.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    raise ExportError(f"{path}: the SavedModel has no MetaGraph tagged 'serve'")


def _set_method_names(model_dir, method_names):
    pb = os.path.join(model_dir, "saved_model.pb")
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString(tf.io.gfile.GFile(pb, "rb").read())
    allowed = (sig.PREDICT_METHOD, sig.CLASSIFY_METHOD, sig.REGRESS_METHOD)
    for name, method in method_names.items():
        if method not in allowed:
            raise ExportError(f"method_names[{name!r}] must be one of {allowed}. Received: {method!r}")
        found = False
        for meta_graph in proto.meta_graphs:
            if name in meta_graph.signature_def:
                meta_graph.signature_def[name].method_name = method
                found = True
        if not found:
            raise ExportError(f"method_names names an unknown signature. Received: {name!r}")
    with tf.io.gfile.GFile(pb, "wb") as f:
        f.write(proto.SerializeToString())


# ---------------------------------------------------------------------------
# Warmup requests.


def _per_signature(warmup_inputs):
    if all(isinstance(v, Mapping) for v in warmup_inputs.values()):
        return dict(warmup_inputs)
    return {sig.SERVING_DEFAULT: dict(warmup_inputs)}


def write_warmup_requests(model_dir, warmup_inputs, *, model_name=None):
    """Writes `model_dir/assets.extra/tf_serving_warmup_requests`; returns its path.

    One `PredictionLog` (batch-1 `PredictRequest`) per example, checked
    against the signatures' input keys and dtypes. See `export_saved_model`
    for the format of `warmup_inputs`.
    """
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    signature_defs = read_signature_defs(model_dir)
    logs = []
    for signature_name, inputs in _per_signature(warmup_inputs).items():
        if signature_name not in signature_defs:
            raise ExportError(
                f"warmup_inputs names an unknown signature (have {sorted(signature_defs)}). "
                f"Received: {signature_name!r}"
            )
        spec = signature_defs[signature_name].inputs
        if set(inputs) != set(spec):
            raise ExportError(
                f"warmup_inputs for signature {signature_name!r} must have exactly the keys "
                f"{sorted(spec)}. Received: {sorted(inputs)}"
            )
        arrays = {k: np.asarray(v) for k, v in inputs.items()}
        sizes = {len(a) if a.ndim else 0 for a in arrays.values()}
        if len(sizes) != 1 or 0 in sizes:
            raise ExportError(
                f"warmup_inputs for signature {signature_name!r} need one non-empty list per "
                f"input, all of the same length. Received lengths: {sorted(sizes)}"
            )
        for row in range(sizes.pop()):
            request = predict_pb2.PredictRequest()
            request.model_spec.signature_name = signature_name
            if model_name:
                request.model_spec.name = model_name
            for key, array in arrays.items():
                dtype = tf.dtypes.as_dtype(spec[key].dtype)
                try:
                    request.inputs[key].CopyFrom(tf.make_tensor_proto(array[row:row + 1], dtype=dtype))
                except (TypeError, ValueError) as e:
                    raise ExportError(
                        f"warmup input {key!r} of signature {signature_name!r} does not convert "
                        f"to {dtype.name}: {e}"
                    ) from None
            logs.append(prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)))
    if len(logs) > MAX_WARMUP_RECORDS:
        raise ExportError(f"at most {MAX_WARMUP_RECORDS} warmup requests. Received: {len(logs)}")
    path = os.path.join(model_dir, WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(model_dir):
    """Returns the `PredictionLog`s of a version directory's warmup file ([] if none)."""
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(model_dir, WARMUP_FILE)
    if not tf.io.gfile.exists(path):
        return []
    logs = []
    try:
        for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
            logs.append(prediction_log_pb2.PredictionLog.FromString(record))
    except Exception as e:
        raise ExportError(f"{path}: unreadable warmup file ({e})") from None
    return logs


# ---------------------------------------------------------------------------
# Op check.

_OP_REGISTRY_SCRIPT = """
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
from tensorflow.core.framework import op_def_pb2
from tensorflow.python.client import pywrap_tf_session as c_api

def registered():
    buf = c_api.TF_GetAllOpList()
    try:
        ops = op_def_pb2.OpList.FromString(c_api.TF_GetBuffer(buf))
    finally:
        c_api.TF_DeleteBuffer(buf)
    return {op.name for op in ops.op}

core = registered()
import tensorflow_text
text = registered() - core
sys.stdout.write(json.dumps({"core": sorted(core), "text": sorted(text)}))
"""


@functools.lru_cache(maxsize=1)
def registered_ops():
    """Returns `(core_ops, text_ops)`: op names of plain TensorFlow and those tensorflow-text adds.

    Both come from the op registry of a fresh `python` process, first right
    after `import tensorflow`, then after `import tensorflow_text`; this
    process may have loaded other custom-op libraries, so its registry cannot
    tell core ops apart.
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", _OP_REGISTRY_SCRIPT], capture_output=True, text=True, env=env
    )
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-1:] or ["no output"]
        raise ExportError(f"could not list the registered TensorFlow ops: {tail[0]}")
    ops = json.loads(result.stdout)
    return frozenset(ops["core"]), frozenset(ops["text"])


def saved_model_ops(path):
    """Returns the sorted op names used by every graph and function of a SavedModel."""
    proto = read_saved_model_proto(path)
    ops = set()
    for meta_graph in proto.meta_graphs:
        library = meta_graph.graph_def.library
        # Calling a library function puts its name in `op`; those are not kernels.
        functions = {f.signature.name for f in library.function}
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in library.function:
            ops.update(node.op for node in function.node_def)
        ops -= functions
    return sorted(ops)


def unsupported_ops(op_names, core_ops, text_ops):
    """Returns the sorted names in `op_names` that are neither core nor tensorflow-text ops."""
    return sorted(set(op_names) - set(core_ops) - set(text_ops))


def check_serving_ops(path):
    """Checks that stock TF Serving can run every op of the SavedModel at `path`.

    Stock TF Serving links core TensorFlow and tensorflow-text ops, nothing
    else. Returns the sorted op names; raises `ExportError` naming the others.
    """
    ops = saved_model_ops(path)
    core, text = registered_ops()
    unknown = unsupported_ops(ops, core, text)
    if unknown:
        raise ExportError(
            f"{path}: ops {unknown} are neither core TensorFlow nor tensorflow-text ops, so "
            "stock TF Serving cannot load this model"
        )
    return ops


# ---------------------------------------------------------------------------
# Model server config.


def _version_policy(policy, name):
    from tensorflow_serving.config import file_system_storage_path_source_pb2 as fs

    Policy = fs.FileSystemStoragePathSourceConfig.ServableVersionPolicy
    if policy is None or policy == "latest":
        return Policy(latest=Policy.Latest(num_versions=1))
    if policy == "all":
        return Policy(all=Policy.All())
    if isinstance(policy, Mapping) and set(policy) == {"latest"}:
        return Policy(latest=Policy.Latest(num_versions=int(policy["latest"])))
    if isinstance(policy, Mapping) and set(policy) == {"specific"}:
        policy = policy["specific"]
    if isinstance(policy, int):
        policy = [policy]
    if isinstance(policy, (list, tuple)) and policy and all(isinstance(v, int) for v in policy):
        return Policy(specific=Policy.Specific(versions=list(policy)))
    raise ExportError(
        f"version_policy of model {name!r} must be 'latest', 'all', {{'latest': n}}, or a list "
        f"of versions. Received: {policy!r}"
    )


def model_server_config(models):
    """Returns a `ModelServerConfig` proto for `models`.

    Args:
        models: `{name: base_path}`, or a list of dicts with keys `name`,
            `base_path` and optionally `version_policy` ('latest' (default),
            'all', `{'latest': n}`, or a list of versions) and `version_labels`
            (`{label: version}`).
    """
    from tensorflow_serving.config import model_server_config_pb2 as msc

    if isinstance(models, Mapping):
        models = [{"name": k, "base_path": v} for k, v in models.items()]
    config = msc.ModelServerConfig()
    seen = set()
    for i, model in enumerate(models):
        unknown = set(model) - {"name", "base_path", "version_policy", "version_labels"}
        if unknown or "name" not in model or "base_path" not in model:
            raise ExportError(
                f"models[{i}] needs keys name and base_path (optional version_policy, "
                f"version_labels). Received: {sorted(model)}"
            )
        name = model["name"]
        if name in seen:
            raise ExportError(f"model names must be unique. Received: {name!r} twice")
        seen.add(name)
        base_path = str(model["base_path"])
        if "://" not in base_path:
            base_path = os.path.abspath(base_path)
        entry = config.model_config_list.config.add(
            name=name, base_path=base_path, model_platform="tensorflow"
        )
        entry.model_version_policy.CopyFrom(_version_policy(model.get("version_policy"), name))
        for label, version in (model.get("version_labels") or {}).items():
            entry.version_labels[label] = int(version)
    return config


def write_model_config(path, models):
    """Writes a `ModelServerConfig` text proto for `models` to `path` (atomically).

    `models` is as for `model_server_config`. Both `tensorflow_model_server
    --model_config_file=PATH` and `python -m tfllm.serving serve
    --model_config_file=PATH` read the result.

    Example:

        write_model_config("models.config", [
            {"name": "sentiment", "base_path": "saved_models/sentiment"},
            {"name": "dialogue", "base_path": "saved_models/dialogue",
             "version_policy": "all", "version_labels": {"stable": 1}},
        ])
    """
    text = text_format.MessageToString(model_server_config(models))
    parent = os.path.dirname(os.path.abspath(path))
    tf.io.gfile.makedirs(parent)
    tmp = os.path.join(parent, f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex[:8]}")
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(text)
    tf.io.gfile.rename(tmp, path, overwrite=True)
    return path


def read_model_config(path):
    """Parses a `ModelServerConfig` text proto; raises `ExportError` naming the file."""
    from tensorflow_serving.config import model_server_config_pb2 as msc

    try:
        text = tf.io.gfile.GFile(path, "r").read()
    except tf.errors.OpError as e:
        raise ExportError(f"{path}: cannot read model config ({e.message})") from None
    try:
        return text_format.Parse(text, msc.ModelServerConfig())
    except text_format.ParseError as e:
        raise ExportError(f"{path}:{e}") from None

"""Versioned, atomic SavedModel exports laid out as TF Serving expects.

A model's base path holds one integer-named directory per version
(`saved_models/sentiment/1/`, `.../2/`). Exports are written to a hidden
temporary directory beside the versions and renamed into place, so a server
polling the base path never sees a half-written version, and an existing
version is never overwritten.
"""

import os
import shutil
import uuid

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from tfllm.serving import signatures as sig
from tfllm.serving.layout import (  # noqa: F401
    ExportError,
    list_versions,
    next_version,
    read_saved_model_proto,
    read_signature_defs,
    resolve_model_dir,
)
from tfllm.serving.model_config import (  # noqa: F401
    model_server_config,
    read_model_config,
    write_model_config,
)
from tfllm.serving.op_check import (  # noqa: F401
    check_serving_ops,
    registered_ops,
    saved_model_ops,
    unsupported_ops,
    xla_ops,
)
from tfllm.serving.warmup import (  # noqa: F401
    MAX_WARMUP_RECORDS,
    WARMUP_FILE,
    read_warmup_requests,
    write_warmup_requests,
)

# Callers import these from here; they live in the modules above.
__all__ = [
    "ExportError", "check_serving_ops", "export_saved_model", "list_versions", "load_export_module",
    "model_server_config", "next_version", "read_model_config", "read_saved_model_proto",
    "read_signature_defs", "read_warmup_requests", "registered_ops", "resolve_model_dir",
    "saved_model_ops", "unsupported_ops", "write_model_config", "write_warmup_requests", "xla_ops",
    "MAX_WARMUP_RECORDS", "WARMUP_FILE",
]


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
    # A dot-name is never an integer, so servers polling base_path ignore it.
    tmp = os.path.join(base_path, f".tmp-{version}-{uuid.uuid4().hex[:8]}")
    try:
        tf.io.gfile.makedirs(base_path)
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
    except (tf.errors.OpError, OSError) as e:
        # A read-only or full file system: TensorFlow's messages run to many lines.
        reason = str(getattr(e, "message", None) or e).strip().splitlines() or [type(e).__name__]
        raise ExportError(
            f"{final}: cannot write the export, nothing was published ({reason[0]})"
        ) from None
    finally:
        if tf.io.gfile.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def load_export_module(model_dir):
    """`(path, loaded module)` of the SavedModel at `model_dir` (a version, or a base path: its latest).

    Raises:
        ExportError: no SavedModel there, or one that does not load.
    """
    import tensorflow_text  # noqa: F401  (registers the ops tfllm's exports use)

    path = resolve_model_dir(model_dir)
    try:
        return path, tf.saved_model.load(path)
    except (OSError, ValueError, tf.errors.OpError) as error:
        message = " ".join(str(error).split())[:300]
        raise ExportError(f"{path}: cannot load the SavedModel ({message})") from None


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

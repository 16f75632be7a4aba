"""The model base path layout TF Serving reads, and reading a SavedModel's protos.

A base path holds one integer-named directory per version; a version counts
once it holds `saved_model.pb`.
"""

import os

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2


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

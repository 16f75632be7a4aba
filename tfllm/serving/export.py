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


def export_saved_model(obj, base_path, signatures, *, version=None, options=None):
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

    Returns:
        The path of the new version directory.
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
        if tf.io.gfile.exists(final):
            raise ExportError(f"{final}: version {version} appeared while exporting; refusing to overwrite it")
        tf.io.gfile.rename(tmp, final)
    finally:
        if tf.io.gfile.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return final

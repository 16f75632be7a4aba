"""`ModelServerConfig` text protos: several models (policies, labels) for one server."""

import os
import uuid
from collections.abc import Mapping

import tensorflow as tf
from google.protobuf import text_format

from tfllm.serving.layout import ExportError


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

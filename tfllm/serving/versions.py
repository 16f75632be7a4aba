"""Model versions: the policies that pick them, loading, swapping and unloading.

A `ModelManager` holds one `_Model` per configured name; each polls its base
path, loads the versions its policy wants (running their warmup requests) and
only then unloads the versions it no longer wants, so a request always finds
a ready version.
"""

import logging
import os
import threading
import time

import grpc
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2

from tfllm.serving import export
from tfllm.serving import signatures as sig
from tfllm.serving.protocol import invalid, not_found
from tfllm.serving.servables import Servable

log = logging.getLogger("tfllm.serving")

_State = get_model_status_pb2.ModelVersionStatus.State


def check_contract(old, new):
    """Raises ExportError if `new` breaks a signature clients of `old` call.

    A new version may add signatures and outputs; removing or renaming a
    signature, an input or an output, or changing an input's dtype, would
    fail every request once it took over.
    """
    # serving_default first: the signature most clients call names the break.
    for name in sorted(old.signature_defs, key=lambda n: (n != sig.SERVING_DEFAULT, n)):
        if name.startswith("__"):  # __saved_model_init_op is not callable.
            continue
        old_def = old.signature_defs[name]
        new_def = new.signature_defs.get(name)
        if new_def is None:
            raise export.ExportError(f"signature {name!r} of version {old.version} is missing")
        old_inputs = {k: v.dtype for k, v in old_def.inputs.items()}
        new_inputs = {k: v.dtype for k, v in new_def.inputs.items()}
        if old_inputs != new_inputs:
            raise export.ExportError(
                f"signature {name!r} takes inputs {sorted(new_inputs)} (dtypes "
                f"{[new_inputs[k] for k in sorted(new_inputs)]}) but version {old.version} takes "
                f"{sorted(old_inputs)} ({[old_inputs[k] for k in sorted(old_inputs)]})"
            )
        missing = sorted(set(old_def.outputs) - set(new_def.outputs))
        if missing:
            raise export.ExportError(
                f"signature {name!r} lacks outputs {missing} that version {old.version} has"
            )


class _Model:
    def __init__(self, config, manager):
        self.manager = manager
        self.servables = {}  # version -> Servable; replaced, never mutated.
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
        servable = None
        try:
            servable = Servable(
                self.name, version, path, self.manager.batching, self.manager.metrics
            )
            if self.servables and version > max(self.servables):
                check_contract(self.servables[max(self.servables)], servable)
            warmed = servable.warmup()
        except Exception as e:  # A broken version must never take the server down.
            message = str(getattr(e, "message", e)).strip().splitlines()
            message = message[0] if message else type(e).__name__
            if servable is not None:
                servable.close()
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

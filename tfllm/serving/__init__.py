"""Exports, model server and client speaking the TF Serving API.

Names resolve on first use, so `from tfllm.serving import ServingClient`
never loads the server or model code.
"""

import importlib

_EXPORTS = {
    "ExportError": "tfllm.serving.export",
    "export_saved_model": "tfllm.serving.export",
    "check_serving_ops": "tfllm.serving.export",
    "write_model_config": "tfllm.serving.export",
    "list_versions": "tfllm.serving.export",
    "resolve_model_dir": "tfllm.serving.export",
    "ModelServer": "tfllm.serving.server",
    "BatchingParameters": "tfllm.serving.server",
    "ServingClient": "tfllm.serving.client",
    "RestClient": "tfllm.serving.client",
    "ServingError": "tfllm.serving.protocol",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))

"""Shared serving fixtures: a two-version WordPiece classifier export and servers over it."""

import os
import shutil
import sys

import pytest
import tensorflow as tf

# Lets the serving tests import `serving_probe` under importlib mode.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from serving_probe import MAX_MESSAGE_SIZE, export_probe  # noqa: E402

from tfllm.serving import signatures as sig  # noqa: E402


@pytest.fixture(scope="session")
def probe_base(tmp_path_factory):
    """Base path with versions 1 and 2 (different weights) of the probe model."""
    base = tmp_path_factory.mktemp("models") / "probe"
    export_probe(base, seed=0)
    export_probe(base, seed=1)
    return base


@pytest.fixture
def copy_version(probe_base):
    """Copies a probe version into another base path the way an export publishes it."""
    def copy(version, base_path, as_version=None):
        base_path.mkdir(parents=True, exist_ok=True)
        tmp = base_path / f".tmp-copy-{version}"
        shutil.copytree(probe_base / str(version), tmp)
        final = base_path / str(as_version or version)
        tmp.rename(final)
        return final
    return copy


@pytest.fixture(scope="session")
def server(probe_base):
    """One server for the protocol tests: `probe` (all versions, labels) and `latest`."""
    from tfllm.serving.server import ModelServer

    config = [
        {"name": "probe", "base_path": str(probe_base), "version_policy": "all",
         "version_labels": {"stable": 1, "canary": 2}},
        {"name": "latest", "base_path": str(probe_base)},
    ]
    server = ModelServer(model_config=config, port=0, rest_api_port=0,
                         file_system_poll_wait_seconds=0, grpc_max_message_size=MAX_MESSAGE_SIZE)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def in_process(probe_base):
    """The probe's signatures called in-process, per version: the reference outputs."""
    import tensorflow_text  # noqa: F401

    loaded = {v: tf.saved_model.load(str(probe_base / str(v))) for v in (1, 2)}

    def call(version, texts, signature=sig.SERVING_DEFAULT):
        fn = loaded[version].signatures[signature]
        return {k: v.numpy() for k, v in fn(**{sig.TEXT: tf.constant(texts)}).items()}
    return call

"""Test session set-up shared by every test module."""

import collections
import os
import sys

# Lets test modules import shared helpers such as `harness` under importlib mode.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Two logical CPU devices let MirroredStrategy tests run without GPUs. This has
# to happen before anything initialises the runtime, hence at import time.
_cpus = tf.config.list_physical_devices("CPU")
try:
    tf.config.set_logical_device_configuration(
        _cpus[0],
        [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()],
    )
except RuntimeError:  # Runtime already initialised by a plugin; tests needing 2 devices skip.
    pass


def pytest_collection_modifyitems(config, items):
    """Files with the most slow tests run first (order within a file kept).

    `make test` hands whole files to parallel workers in this order, so the
    long files start early and the short ones fill in at the end.
    """
    slow = collections.Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Gives each test a fresh Keras name scope and the default dtype policy."""
    import keras

    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture(scope="session")
def mirrored_strategy():
    """The process's MirroredStrategy over the two logical CPU devices.

    Separate MirroredStrategy instances in one process hand out clashing
    collective keys, so every test shares the one `tfllm.training` keeps.
    """
    if len(tf.config.list_logical_devices("CPU")) < 2:
        pytest.skip("needs the two logical CPU devices set up by conftest")
    from tfllm.training import get_strategy

    return get_strategy("mirrored")

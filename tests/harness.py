"""Shared checks every tfllm layer must pass.

`check_layer` proves, for one layer configuration, that the layer
- round-trips its config through JSON and Keras (de)serialization,
- runs eagerly and symbolically (inside a functional model) with equal results,
- trains: one `fit` step on a plain `model.compile()` changes its weights,
- survives a `.keras` save/load with bit-identical outputs.
"""

import json
import os

import keras
import numpy as np


def _as_tuple(inputs):
    return tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)


def _symbolic_inputs(arrays):
    return tuple(
        keras.Input(shape=array.shape[1:], dtype=str(array.dtype), name=f"input_{i}")
        for i, array in enumerate(arrays)
    )


def check_config_round_trip(layer):
    """`from_config(json(get_config()))` rebuilds a layer with the same config."""
    config = layer.get_config()
    restored = layer.__class__.from_config(json.loads(json.dumps(config)))
    assert json.dumps(restored.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"].startswith("tfllm>")
    clone = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    assert type(clone) is type(layer)
    assert json.dumps(clone.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)


def build_model(make_layer, inputs, call=None):
    """A functional model `inputs -> call(make_layer(), *inputs)`."""
    call = call or (lambda layer, *xs: layer(*xs))
    symbolic = _symbolic_inputs(_as_tuple(inputs))
    layer = make_layer()
    outputs = call(layer, *symbolic)
    return keras.Model(symbolic if len(symbolic) > 1 else symbolic[0], outputs), layer


def check_layer(make_layer, inputs, tmp_path, *, call=None, expected_shape=None, fit=True):
    """Runs every harness check on the layer built by `make_layer()`.

    Args:
        make_layer: zero-argument callable returning a fresh layer.
        inputs: a numpy array, or a tuple of arrays fed as separate model inputs.
        tmp_path: a directory for the `.keras` file.
        call: `call(layer, *tensors) -> tensor`; defaults to `layer(*tensors)`.
        expected_shape: shape of the output on `inputs`, if known.
        fit: whether to run the training step (layers without weights skip it).

    Returns:
        The functional model wrapping the layer, for further checks.
    """
    call = call or (lambda layer, *xs: layer(*xs))
    arrays = _as_tuple(inputs)
    check_config_round_trip(make_layer())

    eager_layer = make_layer()
    eager = keras.ops.convert_to_numpy(call(eager_layer, *arrays))
    assert np.all(np.isfinite(eager))
    if expected_shape is not None:
        assert eager.shape == tuple(expected_shape)

    model, layer = build_model(make_layer, arrays, call)
    assert model.outputs[0].shape[1:] == eager.shape[1:]
    # Same weights, same numbers: the symbolic path must not differ from eager.
    eager_layer.set_weights(layer.get_weights())
    before = keras.ops.convert_to_numpy(model(arrays if len(arrays) > 1 else arrays[0]))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(call(eager_layer, *arrays)), before, rtol=1e-6, atol=1e-6
    )

    if fit:
        weights = [w.copy() for w in model.get_weights()]
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        target = np.ones_like(before)
        history = model.fit(arrays if len(arrays) > 1 else arrays[0], target, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        changed = [not np.array_equal(a, b) for a, b in zip(weights, model.get_weights())]
        assert any(changed), "one fit step did not change any weight"

    path = os.path.join(str(tmp_path), "layer.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    feed = arrays if len(arrays) > 1 else arrays[0]
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(feed)), keras.ops.convert_to_numpy(model(feed))
    )
    return model


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_app(name):
    """Imports `apps/<name>.py` (the apps are scripts, not package modules)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"{name}_app", os.path.join(REPO_ROOT, "apps", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def last_json(text):
    """The JSON object on the last line of a command's output."""
    return json.loads(text.strip().splitlines()[-1])

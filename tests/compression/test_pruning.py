"""Magnitude pruning: the schedule's numbers, sparsity reached and kept, `.keras` round trip, exports."""

import keras
import numpy as np
import pytest
from tiny_runs import make_run

from tfllm.compression import MagnitudePruning, PolynomialSparsity, compress_run, model_sparsity, strip_pruning
from tfllm.compression.pruning import magnitude_mask, prune_once


def test_polynomial_schedule_by_hand():
    schedule = PolynomialSparsity(0.8, begin_step=10, end_step=110, initial_sparsity=0.0, power=3, frequency=25)
    assert schedule(0) == 0.0 and schedule(10) == 0.0
    assert schedule(60) == pytest.approx(0.8 - 0.8 * 0.5**3)  # halfway: 0.7
    assert schedule(110) == pytest.approx(0.8) and schedule(500) == pytest.approx(0.8)
    assert [step for step in range(0, 120) if schedule.should_prune(step)][:5] == [10, 35, 60, 85, 110]


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.2, "half", None])
def test_sparsity_outside_zero_one_is_one_line_error(bad):
    with pytest.raises(ValueError, match="strictly between 0 and 1") as error:
        PolynomialSparsity(bad)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        prune_once(keras.Sequential([keras.layers.Dense(2)]), bad)


def test_magnitude_mask_zeroes_exactly_the_smallest():
    values = np.array([[0.0, -3.0, 0.5], [2.0, 0.0, -0.1]])
    mask = magnitude_mask(values, 0.5).reshape(values.shape)
    np.testing.assert_array_equal(mask, [[0, 1, 1], [1, 0, 0]])


def _model_and_data():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(3)])
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.RandomState(0).normal(size=(64, 16)).astype("float32")
    return model, x, (x[:, 0] > 0).astype("int32") + (x[:, 1] > 0)


@pytest.mark.parametrize("target", [0.5, 0.8, 0.9])
def test_pruning_reaches_the_target_and_keeps_pruned_weights_zero_through_training(tmp_path, target):
    model, x, y = _model_and_data()
    pruning = MagnitudePruning(PolynomialSparsity(target, begin_step=0, end_step=12, frequency=4))
    model.fit(x, y, batch_size=16, epochs=4, callbacks=[pruning], verbose=0)  # 16 steps
    strip_pruning(model, pruning)
    assert model_sparsity(model) == pytest.approx(target, abs=0.01)
    zeros = [keras.ops.convert_to_numpy(w) == 0 for w in pruning.pruned_weights]
    assert all(np.array_equal(z, keras.ops.convert_to_numpy(m) == 0) for z, m in zip(zeros, pruning.masks))
    model.fit(x, y, batch_size=16, epochs=2, callbacks=[pruning], verbose=0)  # the optimizer keeps pushing
    for was_zero, weight in zip(zeros, pruning.pruned_weights):
        assert np.all(keras.ops.convert_to_numpy(weight)[was_zero] == 0)
    # `.keras` round trip: same zeros, same outputs; fine-tuning it again keeps them.
    model.save(tmp_path / "pruned.keras")
    loaded = keras.models.load_model(tmp_path / "pruned.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert model_sparsity(loaded) == pytest.approx(model_sparsity(model))
    again = MagnitudePruning(PolynomialSparsity(target, begin_step=0, end_step=1, frequency=1))
    loaded.fit(x, y, batch_size=16, epochs=1, callbacks=[again], verbose=0)
    for was_zero, weight in zip(zeros, again.pruned_weights):
        assert np.all(keras.ops.convert_to_numpy(weight)[was_zero] == 0)


def test_only_kernels_and_tables_are_pruned():
    model, x, y = _model_and_data()
    pruning = MagnitudePruning(PolynomialSparsity(0.5, begin_step=0, end_step=1, frequency=1))
    model.fit(x, y, batch_size=32, epochs=1, callbacks=[pruning], verbose=0)
    assert [w.name for w in pruning.pruned_weights] == ["kernel", "kernel"]
    assert all(np.count_nonzero(keras.ops.convert_to_numpy(layer.bias)) > 0 for layer in model.layers)


@pytest.mark.slow
def test_compress_run_prunes_with_fine_tuning_and_gzip_pays(tmp_path, table):
    run = make_run(tmp_path / "run", "fasttext", train=True, extra_tokens=3000, embedding_dim=32)
    result = compress_run(run, "prune", str(tmp_path / "exports"), data=table, sparsity=0.8, epochs=2,
                          runs=3, log=lambda line: None)
    assert result["sparsity"] == pytest.approx(0.8, abs=0.01)
    assert result["parameter_ratio"] == pytest.approx(0.2, abs=0.03)
    assert result["gzip_ratio"] < 0.6
    assert result["accuracy"] >= result["base_accuracy"] - 0.1

"""`tfllm.training.fit`: replica equivalence, the custom loop's callbacks, resumption, mixed precision."""

import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfllm import training
from tfllm.serving import signatures as sig
from tfllm.serving.export import export_saved_model

needs_two_cpus = pytest.mark.skipif(
    len(tf.config.list_logical_devices("CPU")) < 2, reason="needs 2 logical CPU devices"
)

STEPS = 4  # batches per epoch


def _dataset(batch_size=16):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(STEPS * batch_size, 8)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


def _model(strategy, optimizer="sgd"):
    keras.utils.set_random_seed(1)
    with strategy.scope():
        model = keras.Sequential([
            keras.Input((8,)),
            keras.layers.Dense(8, activation="relu", kernel_regularizer=keras.regularizers.L2(1e-3)),
            keras.layers.Dense(2),
            keras.layers.Activation("softmax", dtype="float32"),
        ])
        opt = keras.optimizers.SGD(0.1, momentum=0.9) if optimizer == "sgd" else keras.optimizers.Adam(0.01)
        model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class _CountSteps(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1


@needs_two_cpus
def test_fit_trims_batches_to_a_multiple_of_the_replicas():
    data = _dataset().unbatch().take(2 * 16 + 1).batch(16)  # 16, 16, 1 rows.
    steps = {}
    for name in ("default", "mirrored"):
        counter = _CountSteps()
        history = training.fit(_model(training.get_strategy(name)), data, validation_data=data,
                               epochs=1, callbacks=[counter], loop="fit", verbose=0)
        assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
        steps[name] = counter.steps
    assert steps == {"default": 3, "mirrored": 2}  # 2 replicas cannot split 1 row.


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise KeyboardInterrupt(f"interrupted at epoch {epoch}")


@pytest.mark.slow
@needs_two_cpus
def test_two_replicas_match_one_device_for_the_same_global_batch():
    runs = {}
    for name, loop in (("default", "fit"), ("mirrored", "fit"), ("mirrored", "custom")):
        strategy = training.get_strategy(name)
        model = _model(strategy)
        history = training.fit(
            model, _dataset(), validation_data=_dataset(), epochs=3, loop=loop, verbose=0
        )
        runs[name, loop] = (history.history, model.get_weights())
    reference, reference_weights = runs["default", "fit"]
    assert reference["loss"][-1] < reference["loss"][0]  # it trains
    for key, (history, weights) in runs.items():
        assert sorted(history) == ["accuracy", "loss", "val_accuracy", "val_loss"], key
        for metric in history:
            np.testing.assert_allclose(history[metric], reference[metric], rtol=1e-5, err_msg=str(key))
        for w, ref in zip(weights, reference_weights):
            np.testing.assert_allclose(w, ref, rtol=1e-5, atol=1e-6, err_msg=str(key))


@pytest.mark.slow
def test_custom_loop_drives_the_standard_callbacks(tmp_path, capsys):
    strategy = tf.distribute.get_strategy()
    model = _model(strategy)
    checkpoint = tmp_path / "best.keras"
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=0, min_delta=10.0)
    history = training.fit(
        model,
        _dataset(),
        validation_data=_dataset(),
        epochs=5,
        loop="custom",
        verbose=1,
        callbacks=[
            keras.callbacks.ModelCheckpoint(str(checkpoint), monitor="val_loss", save_best_only=True),
            stop,
            keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
        ],
    )
    assert len(history.history["val_loss"]) == 2  # EarlyStopping ended it after epoch 2
    assert stop.stopped_epoch == 1
    assert checkpoint.exists()
    restored = keras.models.load_model(checkpoint)
    assert restored.count_params() == model.count_params()
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert rows[0] == "epoch,accuracy,loss,val_accuracy,val_loss" and len(rows) == 3
    out = capsys.readouterr().out
    assert "Epoch 2/5" in out and f"{STEPS}/{STEPS}" in out and "val_loss" in out


@pytest.mark.slow
@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_interrupted_run_resumes_without_repeating_finished_epochs(tmp_path, loop):
    strategy = training.get_strategy("mirrored" if loop == "custom" and
                                     len(tf.config.list_logical_devices("CPU")) > 1 else "default")
    epochs = 3
    backup = tmp_path / "backup"

    full = _model(strategy, optimizer="adam")
    full_steps = _CountSteps()
    training.fit(full, _dataset(), epochs=epochs, loop=loop, verbose=0, callbacks=[full_steps],
                 backup_dir=str(tmp_path / "other"))

    first = _model(strategy, optimizer="adam")
    first_steps = _CountSteps()
    with pytest.raises(KeyboardInterrupt):
        training.fit(first, _dataset(), epochs=epochs, loop=loop, verbose=0,
                     callbacks=[first_steps, _Interrupt(at_epoch=2)], backup_dir=str(backup))
    assert first_steps.steps == 2 * STEPS
    assert backup.exists()

    resumed = _model(strategy, optimizer="adam")  # a fresh process would rebuild it too
    resumed_steps = _CountSteps()
    history = training.fit(resumed, _dataset(), epochs=epochs, loop=loop, verbose=0,
                           callbacks=[resumed_steps], backup_dir=str(backup))
    assert len(history.history["loss"]) == 1
    assert first_steps.steps + resumed_steps.steps == full_steps.steps == epochs * STEPS
    assert int(resumed.optimizer.iterations.numpy()) == epochs * STEPS
    for w, ref in zip(resumed.get_weights(), full.get_weights()):
        np.testing.assert_allclose(w, ref, rtol=1e-5, atol=1e-6)
    assert not backup.exists() and not (tmp_path / "other").exists()  # deleted when done


def test_unreadable_backup_is_a_clear_error(tmp_path):
    (tmp_path / "backup.json").write_text("{not json")
    model = _model(tf.distribute.get_strategy())
    with pytest.raises(ValueError, match="backup.json: unreadable training backup"):
        training.fit(model, _dataset(), epochs=1, verbose=0, backup_dir=str(tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize("mode, loop", [("bfloat16", "fit"), ("bfloat16", "custom"), ("float16", "custom")])
def test_mixed_precision_trains_and_keeps_float32_outputs(tmp_path, mode, loop):
    policy = training.set_mixed_precision(mode)
    model = _model(tf.distribute.get_strategy(), optimizer="adam")
    assert model.layers[0].compute_dtype == policy.removeprefix("mixed_")
    assert model.layers[0].kernel.dtype == "float32"
    if mode == "float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    history = training.fit(model, _dataset(), epochs=2, loop=loop, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert int(model.optimizer.iterations.numpy()) == 2 * STEPS
    assert model.predict(np.zeros((2, 8), "float32"), verbose=0).dtype == np.float32

    serve = tf.function(
        lambda x: {sig.PROBABILITIES: model(x)},
        input_signature=[tf.TensorSpec([None, 8], tf.float32, name="features")],
    )
    path = export_saved_model(model, str(tmp_path / "export"), {sig.SERVING_DEFAULT: serve},
                              check_ops=False)
    outputs = tf.saved_model.load(path).signatures[sig.SERVING_DEFAULT](tf.zeros([1, 8]))
    assert outputs[sig.PROBABILITIES].dtype == tf.float32


def test_fit_rejects_bad_input():
    strategy = tf.distribute.get_strategy()
    model = _model(strategy)
    with pytest.raises(TypeError, match="train_data must be a batched tf.data.Dataset. Received: ndarray"):
        training.fit(model, np.zeros((4, 8)))
    with pytest.raises(ValueError, match="loop=.*'eager'"):
        training.fit(model, _dataset(), loop="eager")
    with pytest.raises(ValueError, match="Compile the model"):
        training.fit(keras.Sequential([keras.layers.Dense(1)]), _dataset())


@needs_two_cpus
def test_fit_rejects_a_model_built_outside_the_strategy():
    model = _model(tf.distribute.get_strategy())
    with pytest.raises(ValueError, match="build and compile the model inside strategy.scope()"):
        training.fit(model, _dataset(), strategy=training.get_strategy("mirrored"))


def test_non_chief_workers_write_to_private_directories(tmp_path):
    from tfllm.training.loop import _for_worker

    checkpoint = keras.callbacks.ModelCheckpoint(str(tmp_path / "best.keras"))
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    temp_dirs = []
    moved, restored = (_for_worker(cb, "worker-1", temp_dirs) for cb in (checkpoint, backup))
    assert moved.filepath.startswith(temp_dirs[0]) and moved.filepath.endswith("best.keras")
    assert checkpoint.filepath == str(tmp_path / "best.keras")  # the caller's object is untouched
    assert isinstance(restored, training.TrainingBackup)
    assert restored.backup_dir == str(tmp_path / "backup")  # reads the chief's backup
    assert restored.write_dir == temp_dirs[1]
    csv_log = _for_worker(keras.callbacks.CSVLogger(str(tmp_path / "log.csv")), "worker-1", temp_dirs)
    assert csv_log.filename == os.path.join(temp_dirs[2], "log.csv")

    class Scalars(keras.callbacks.Callback):  # a TensorBoard look-alike
        log_dir = str(tmp_path / "logs")

    assert _for_worker(Scalars(), "worker-1", temp_dirs).log_dir == temp_dirs[3]
    assert _for_worker(checkpoint, "chief", temp_dirs) is checkpoint
    assert _for_worker(backup, "chief", temp_dirs).write_dir is None
    # A restarted worker reuses its directories instead of leaving new ones behind.
    assert _for_worker(checkpoint, "worker-1", temp_dirs).filepath == moved.filepath
    assert _for_worker(checkpoint, "worker-2", temp_dirs).filepath != moved.filepath
    for path in temp_dirs:
        shutil.rmtree(path, ignore_errors=True)


def test_auto_verbosity_is_the_live_bar_on_a_terminal_and_one_line_per_epoch_elsewhere():
    import io

    from tfllm.training.loop import progress_verbosity

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert progress_verbosity("auto", Terminal()) == 1
    assert progress_verbosity("auto", io.StringIO()) == 2
    assert progress_verbosity(0, Terminal()) == 0


def test_a_model_without_weights_yet_resumes_from_its_backup(tmp_path):
    # Subclassed models (every tfllm classifier) have no weights before their
    # first batch, which Keras' fit runs after the backup is restored.
    def lazy_model():
        keras.utils.set_random_seed(1)
        model = keras.Sequential([keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2, activation="softmax")])
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
        return model

    backup = str(tmp_path / "backup")
    with pytest.raises(KeyboardInterrupt):
        training.fit(lazy_model(), _dataset(), epochs=3, verbose=0, callbacks=[_Interrupt(at_epoch=2)],
                     backup_dir=backup)
    resumed = lazy_model()
    assert not resumed.built
    history = training.fit(resumed, _dataset(), epochs=3, verbose=0, backup_dir=backup)
    assert len(history.history["loss"]) == 1
    assert int(resumed.optimizer.iterations.numpy()) == 3 * STEPS

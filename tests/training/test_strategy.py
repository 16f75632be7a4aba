"""Strategy choice, device simulation, batch/learning-rate scaling, sharding, CLI options."""

import argparse
import json

import keras
import pytest
import tensorflow as tf

from tfllm import training
from tfllm.training import strategy as strategy_module

needs_two_cpus = pytest.mark.skipif(
    len(tf.config.list_logical_devices("CPU")) < 2, reason="needs 2 logical CPU devices"
)


def _cluster(task_type="worker", index=0, workers=2, chief=False):
    cluster = {"worker": [f"127.0.0.1:{2000 + i}" for i in range(workers)]}
    if chief:
        cluster["chief"] = ["127.0.0.1:1999"]
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


def test_unknown_strategy_names_the_valid_ones():
    with pytest.raises(ValueError, match="auto, default, mirrored, multiworker, tpu.*'gpu'"):
        training.get_strategy("gpu")


def test_default_strategy_has_one_replica():
    assert training.get_strategy("default").num_replicas_in_sync == 1


@needs_two_cpus
def test_mirrored_uses_every_logical_cpu_and_logs_it(caplog):
    with caplog.at_level("INFO", logger="tfllm.training"):
        strategy = training.get_strategy("mirrored")
    assert isinstance(strategy, tf.distribute.MirroredStrategy)
    assert strategy.num_replicas_in_sync == 2
    assert "mirrored (MirroredStrategy), 2 replica(s)" in caplog.text
    # Reused: a second instance would collide with the first in collective ops.
    assert training.get_strategy("mirrored") is strategy


def test_auto_choice(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.setattr(strategy_module, "_simulated_cpu_devices", 0)
    assert strategy_module._auto_choice() == "default"
    monkeypatch.setattr(strategy_module, "_simulated_cpu_devices", 2)
    assert strategy_module._auto_choice() == "mirrored"
    monkeypatch.setenv("TF_CONFIG", _cluster(workers=2))
    assert strategy_module._auto_choice() == "multiworker"
    monkeypatch.setenv("TF_CONFIG", _cluster(workers=1))
    assert strategy_module._auto_choice() == "mirrored"


def test_bad_tf_config_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{cluster: ")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        training.get_strategy("auto")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1"], "ps": ["b:2"]}}))
    with pytest.raises(ValueError, match="parameter-server cluster"):
        training.get_strategy("auto")


@pytest.mark.parametrize(
    "tf_config, chief, name",
    [
        (None, True, "chief"),
        (_cluster("worker", 0), True, "chief"),
        (_cluster("worker", 1), False, "worker-1"),
        (_cluster("chief", 0, chief=True), True, "chief"),
        (_cluster("worker", 0, chief=True), False, "worker-0"),
    ],
)
def test_is_chief_follows_tf_config(monkeypatch, tf_config, chief, name):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    assert training.is_chief() is chief
    assert training.worker_id() == name


def test_is_chief_on_single_process_strategies():
    assert training.is_chief(tf.distribute.get_strategy())
    assert not training.is_multi_worker(tf.distribute.get_strategy())


@needs_two_cpus
def test_simulate_devices_after_initialisation(monkeypatch):
    monkeypatch.setattr(strategy_module, "_simulated_cpu_devices", 0)
    # conftest already split the CPU in two; asking for that again is fine.
    assert len(training.simulate_devices(2)) == 2
    with pytest.raises(RuntimeError, match=r"simulate_devices\(3\) must run before"):
        training.simulate_devices(3)
    with pytest.raises(ValueError, match="n=0"):
        training.simulate_devices(0)


@needs_two_cpus
def test_batch_size_and_learning_rate_scale_with_replicas():
    mirrored = training.get_strategy("mirrored")
    assert training.global_batch_size(8, mirrored) == 16
    assert training.scale_learning_rate(0.1, mirrored) == pytest.approx(0.2)
    assert training.global_batch_size(8) == 8  # default strategy
    with pytest.raises(ValueError, match="per_replica_batch_size=0"):
        training.global_batch_size(0, mirrored)
    with pytest.raises(ValueError, match="learning_rate=-1"):
        training.scale_learning_rate(-1, mirrored)


def _policy(dataset):
    return dataset.options().experimental_distribute.auto_shard_policy


def test_shard_policy_data_in_memory_auto_for_files(tmp_path):
    in_memory = tf.data.Dataset.range(10).map(lambda i: i * 2).batch(2)
    assert not strategy_module.reads_files(in_memory)
    assert _policy(strategy_module.with_shard_policy(in_memory)) == tf.data.experimental.AutoShardPolicy.DATA

    path = tmp_path / "lines.txt"
    path.write_text("a\nb\nc\n")
    files = tf.data.Dataset.list_files(str(path)).interleave(tf.data.TextLineDataset).batch(2)
    assert strategy_module.reads_files(files)
    assert _policy(strategy_module.with_shard_policy(files)) == tf.data.experimental.AutoShardPolicy.AUTO


@needs_two_cpus
def test_distribute_dataset_splits_the_global_batch():
    mirrored = training.get_strategy("mirrored")
    dataset = tf.data.Dataset.range(16).batch(training.global_batch_size(4, mirrored))
    first = next(iter(training.distribute_dataset(dataset, mirrored)))
    parts = mirrored.experimental_local_results(first)
    assert [p.numpy().tolist() for p in parts] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    with pytest.raises(TypeError, match="tf.data.Dataset"):
        training.distribute_dataset([1, 2], mirrored)


def test_mixed_precision_modes():
    assert training.set_mixed_precision("auto") == "float32"  # CPU only here
    assert training.set_mixed_precision("bfloat16") == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "mixed_bfloat16"
    assert training.set_mixed_precision("float16") == "mixed_float16"
    assert training.set_mixed_precision("off") == "float32"
    with pytest.raises(ValueError, match="auto, off, float16, bfloat16.*'fp8'"):
        training.set_mixed_precision("fp8")


def _parser():
    from tfllm.cli.arguments import add_training_arguments

    parser = argparse.ArgumentParser(prog="app")
    add_training_arguments(parser)
    return parser


def test_cli_defaults_and_errors(capsys):
    args = _parser().parse_args([])
    assert (args.strategy, args.simulate_devices, args.mixed_precision) == ("auto", None, "auto")
    for bad in (["--strategy", "gpu"], ["--simulate-devices", "0"], ["--mixed-precision", "fp8"]):
        with pytest.raises(SystemExit) as exit_info:
            _parser().parse_args(bad)
        assert exit_info.value.code == 2
    assert "--simulate-devices: must be a positive integer" in capsys.readouterr().err


@needs_two_cpus
def test_configure_from_args_applies_options_in_order(monkeypatch):
    monkeypatch.setattr(strategy_module, "_simulated_cpu_devices", 0)
    args = _parser().parse_args(["--simulate-devices", "2", "--mixed-precision", "bfloat16"])
    strategy = training.configure_from_args(args)
    assert isinstance(strategy, tf.distribute.MirroredStrategy)  # auto over simulated devices
    assert strategy.num_replicas_in_sync == 2
    assert keras.config.dtype_policy().name == "mixed_bfloat16"
    args = _parser().parse_args(["--strategy", "default", "--mixed-precision", "off"])
    assert training.configure_from_args(args).num_replicas_in_sync == 1
    assert keras.config.dtype_policy().name == "float32"


def test_even_batches_trims_to_a_multiple_of_replicas(mirrored_strategy):
    dataset = tf.data.Dataset.from_tensor_slices((tf.range(7), tf.range(7))).batch(5)
    assert [int(ids.shape[0]) for ids, _ in training.even_batches(dataset, 2)] == [4, 2]
    assert [int(ids.shape[0]) for ids, _ in training.even_batches(dataset, mirrored_strategy)] == [4, 2]
    assert [int(ids.shape[0]) for ids, _ in training.even_batches(dataset, 1)] == [5, 2]
    dataset = tf.data.Dataset.from_tensor_slices((tf.range(5), tf.range(5))).batch(4)
    assert [int(ids.shape[0]) for ids, _ in training.even_batches(dataset, 2)] == [4]  # a batch of 1 is dropped


def test_even_batches_keeps_nested_elements():
    features = {"encoder_token_ids": tf.zeros((7, 3), tf.int32), "decoder_token_ids": tf.ones((7, 2), tf.int32)}
    dataset = tf.data.Dataset.from_tensor_slices((features, tf.range(7))).batch(5)
    batches = list(training.even_batches(dataset, 2))
    assert [int(labels.shape[0]) for _, labels in batches] == [4, 2]
    assert [tuple(x["decoder_token_ids"].shape) for x, _ in batches] == [(4, 2), (2, 2)]
    alone = tf.data.Dataset.from_tensor_slices(features).batch(5)
    assert [int(x["encoder_token_ids"].shape[0]) for x in training.even_batches(alone, 2)] == [4, 2]

"""int8/int4 quantization of tfllm layers and classifiers: numbers, export, op check."""

import gc
import http.client
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from tiny_runs import make_frame, make_run

from tfllm.compression import compress_run, quantize_model
from tfllm.compression.quantize import quantized_layers
from tfllm.layers.multi_head_attention import MultiHeadAttention

KINDS = ("fasttext", "lstm", "bilstm", "transformer")
# Worst-case output error of abs-max quantization on these unit-scale inputs.
TOLERANCE = {"int8": 0.02, "int4": 0.3}


@pytest.mark.parametrize("mode", ["int8", "int4"])
@pytest.mark.parametrize("cross", [False, True])
def test_attention_quantizes_close_to_float_and_round_trips(tmp_path, mode, cross):
    rng = np.random.RandomState(0)
    query = keras.Input((5, 8))
    value = keras.Input((7, 8 if not cross else 6))
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    model = keras.Model([query, value], layer(query, query if not cross else value))
    inputs = [rng.normal(size=(2, 5, 8)), rng.normal(size=(2, 7, 8 if not cross else 6))]
    inputs = [array.astype("float32") for array in inputs]
    expected = model(inputs).numpy()
    layer.quantize(mode)
    assert layer.quantization_mode == mode
    kernels = layer.quantizable_kernels()
    assert all(getattr(layer, name).dtype == "int8" for name in kernels)
    actual = model(inputs).numpy()
    assert 0 < np.abs(actual - expected).max() < TOLERANCE[mode] * np.abs(expected).max()
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(loaded(inputs).numpy(), actual)


def test_quantize_model_reaches_every_tfllm_layer_of_a_transformer():
    from tfllm.models.classifier import build_classifier

    model = build_classifier("transformer", 50, 2, 8, embedding_dim=8, intermediate_dim=16, num_layers=2)
    model(np.ones((1, 4), "int32"))
    quantize_model(model, "int8")
    names = {path.split("/", 1)[1] for path in quantized_layers(model)}
    assert {"embedding/token_embedding", "classifier"} <= names
    for block in ("encoder_block_0", "encoder_block_1"):
        assert {f"{block}/self_attention", f"{block}/feedforward_intermediate_dense"} <= names
    with pytest.raises(ValueError, match="already quantized"):
        quantize_model(model, "int8")
    with pytest.raises(ValueError, match="int8, int4"):
        quantize_model(build_classifier("fasttext", 50, 2, 8), "int2")


def test_quantizing_runs_one_full_garbage_collection_not_one_per_kernel():
    # Keras collects all garbage each time a layer deletes a variable; with
    # TensorFlow loaded each such collection scans about a million objects.
    from tfllm.models.classifier import build_classifier

    model = build_classifier("transformer", 50, 2, 8, embedding_dim=8, intermediate_dim=16, num_layers=2)
    model(np.ones((1, 4), "int32"))
    full = []

    def count(phase, info):
        if phase == "stop" and info["generation"] == 2 and not gc.get_freeze_count():
            full.append(info)

    gc.callbacks.append(count)
    try:
        quantize_model(model, "int8")
    finally:
        gc.callbacks.remove(count)
    assert len(quantized_layers(model)) >= 8
    assert 1 <= len(full) <= 2
    assert not gc.get_freeze_count()


def variables_bytes(path):
    directory = os.path.join(path, "variables")
    return sum(os.path.getsize(os.path.join(directory, name)) for name in os.listdir(directory))


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_every_classifier_kind_exports_int8_through_the_op_check_and_answers_as_float(tmp_path, kind):
    from tfllm.compression.runs import export_classifier, load_run
    from tfllm.tasks.classifier_export import ClassifierExport, load_classifier_export, predict_outputs

    run = make_run(tmp_path / "run", kind, train=True, extra_tokens=2000, embedding_dim=16)
    export, labels, metadata = load_run(run)
    model, tokenizer = export.model, export.tokenizer
    texts = make_frame(40, seed=1).text.tolist()
    in_memory = ClassifierExport(tokenizer, model, labels.labels, max_length=16)
    float_probabilities, float_ids = predict_outputs(in_memory, texts)
    float_path = export_classifier(model, tokenizer, labels.labels, metadata, str(tmp_path / "float"))
    quantize_model(model, "int8")
    path = export_classifier(model, tokenizer, labels.labels, metadata, str(tmp_path / "int8"))  # op check inside
    signature, names, _, _ = load_classifier_export(path)
    probabilities, ids = predict_outputs(signature, texts)
    assert names == labels.labels
    assert np.mean(ids == float_ids) >= 0.95
    assert np.abs(probabilities - float_probabilities).max() < 0.05
    assert variables_bytes(path) < 0.4 * variables_bytes(float_path)


@pytest.mark.slow
def test_compress_run_int8_exports_a_new_version_and_reports_beside_the_float_model(tmp_path, table):
    run = make_run(tmp_path / "run", "transformer", train=True, extra_tokens=3000, embedding_dim=32)
    os.makedirs(tmp_path / "exports" / "1")  # an existing version is kept
    result = compress_run(run, "int8", str(tmp_path / "exports"), data=table, runs=3, log=lambda line: None)
    assert result["export_path"] == str(tmp_path / "exports" / "2")
    loaded = tf.saved_model.load(result["export_path"])
    assert "int8" in loaded.metadata.numpy().decode()
    for key in ("size_ratio", "latency_ratio", "accuracy", "base_accuracy", "gzip_ratio", "parameter_ratio"):
        assert key in result, key
    for record in (result["base"], result["compressed"]):
        for key in ("parameters", "size_bytes", "gzip_bytes", "p50_ms", "p99_ms", "accuracy"):
            assert key in record, key
        assert record["p50_ms"] <= record["p99_ms"]
    assert result["size_ratio"] < 1
    assert abs(result["accuracy"] - result["base_accuracy"]) <= 0.05
    # tfllm's model server answers from the quantized version as the in-process signature does.
    from tfllm.serving.server import ModelServer
    from tfllm.tasks.classifier_export import load_classifier_export, predict_outputs

    texts = ["good film", "awful plot"]
    expected, _ = predict_outputs(load_classifier_export(result["export_path"])[0], texts)
    with ModelServer(model_name="sentiment", model_base_path=str(tmp_path / "exports"), port=0, rest_api_port=0,
                     file_system_poll_wait_seconds=0) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.rest_api_port, timeout=30)
        connection.request("POST", "/v1/models/sentiment/versions/2:predict", body=json.dumps({"instances": texts}))
        response = connection.getresponse()
        body = json.loads(response.read())
        connection.close()
    assert response.status == 200, body
    np.testing.assert_allclose([row["probabilities"] for row in body["predictions"]], expected, rtol=1e-5)


def test_compress_run_rejects_what_is_not_a_run_directory(tmp_path):
    from tfllm.data import DataError

    with pytest.raises(DataError, match="not a tfllm classification run directory"):
        compress_run(tmp_path, "int8", str(tmp_path / "out"))
    with pytest.raises(ValueError, match="unknown compression method"):
        compress_run(tmp_path, "int3")
    with pytest.raises(ValueError, match="between 0 and 1"):
        compress_run(tmp_path, "prune", sparsity=1.0)


def test_encoder_and_decoder_blocks_quantize_with_their_attention():
    from tfllm.layers.transformer_decoder_block import TransformerDecoderBlock
    from tfllm.layers.transformer_encoder_block import TransformerEncoderBlock

    rng = np.random.RandomState(0)
    encoder_input, decoder_input = keras.Input((6, 16)), keras.Input((4, 16))
    encoded = TransformerEncoderBlock(32, 2, name="encoder")(encoder_input)
    decoded = TransformerDecoderBlock(32, 2, name="decoder")(decoder_input, encoded)
    model = keras.Model([encoder_input, decoder_input], decoded)
    inputs = [rng.normal(size=(2, 6, 16)).astype("float32"), rng.normal(size=(2, 4, 16)).astype("float32")]
    expected = model(inputs).numpy()
    quantize_model(model, "int8")
    modes = quantized_layers(model)
    assert sum(path.endswith("attention") for path in modes) == 3, modes  # encoder self, decoder self + cross
    assert all(mode == "int8" for mode in modes.values())
    np.testing.assert_allclose(model(inputs).numpy(), expected, atol=0.05)

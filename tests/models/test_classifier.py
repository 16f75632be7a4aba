import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import harness
from tfllm.models.classifier import KINDS, build_classifier
from tfllm.tasks.classifier_export import ClassifierExport, pad_token_ids, read_export_metadata
from tfllm.models.ngram_classifier import NGramClassifier
from tfllm.models.transformer_classifier import TransformerClassifier
from tfllm.serving import signatures

VOCAB = 50
IDS = np.array([[5, 7, 9, 11, 0, 0], [3, 4, 0, 0, 0, 0]], dtype="int32")


class IdentityTokenizer(keras.layers.Layer):
    """Maps "3 4 5" to ids [3, 4, 5] (ragged), standing in for a real tokenizer."""

    def call(self, text):
        return tf.strings.to_number(tf.strings.split(text), tf.int32)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_is_a_plain_compilable_keras_model(kind):
    keras.utils.set_random_seed(0)
    model = build_classifier(kind, VOCAB, 3, sequence_length=8, embedding_dim=8)
    probabilities = keras.ops.convert_to_numpy(model(IDS))
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"])
    before = [w.copy() for w in model.get_weights()]
    model.fit(IDS, np.array([0, 2]), epochs=1, batch_size=2, verbose=0)
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))


def test_unknown_kind_and_bad_options_raise():
    with pytest.raises(ValueError, match="Unknown model kind 'gpt'"):
        build_classifier("gpt", VOCAB, 2, 8)
    with pytest.raises(ValueError, match="feature_dropout"):
        build_classifier("fasttext", VOCAB, 2, 8, feature_dropout=1.5)
    with pytest.raises(ValueError, match="divisible"):
        build_classifier("transformer", VOCAB, 2, 8, embedding_dim=10, num_heads=3)


def test_ngram_ids_hash_bigrams_and_skip_padding():
    model = NGramClassifier(VOCAB, 2, embedding_dim=4, ngram_order=3, num_buckets=97)
    features, weights = (keras.ops.convert_to_numpy(t) for t in model.ngram_ids(IDS))
    # 6 tokens + 5 bigrams + 4 trigrams per row.
    assert features.shape == weights.shape == (2, 15)
    np.testing.assert_array_equal(features[:, :6], IDS)
    np.testing.assert_array_equal(weights[0], [1, 1, 1, 1, 0, 0] + [1, 1, 1, 0, 0] + [1, 1, 0, 0])
    np.testing.assert_array_equal(weights[1], [1, 1, 0, 0, 0, 0] + [1, 0, 0, 0, 0] + [0, 0, 0, 0])
    assert (features[:, 6:] >= VOCAB).all() and (features[:, 6:] < VOCAB + 97).all()
    # The bigram hash is (a * vocabulary_size + b + 2 * 1_000_003) mod buckets.
    assert features[0, 6] == VOCAB + (5 * VOCAB + 7 + 2 * 1_000_003) % 97
    # The same bigram hashes to the same bucket wherever it occurs.
    again, _ = model.ngram_ids(np.array([[1, 5, 7]]))
    assert keras.ops.convert_to_numpy(again)[0, 3 + 1] == features[0, 6]


@pytest.mark.parametrize("kind", ["fasttext", "transformer", "lstm"])
def test_padding_never_changes_outputs(kind):
    keras.utils.set_random_seed(1)
    model = build_classifier(kind, VOCAB, 2, sequence_length=8, embedding_dim=8)
    short = model(np.array([[5, 7, 9]]))
    padded = model(np.array([[5, 7, 9, 0, 0, 0, 0, 0]]))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(short), keras.ops.convert_to_numpy(padded), atol=1e-5)


def test_ngram_average_equals_hand_computed_mean():
    model = NGramClassifier(VOCAB, 2, embedding_dim=4, ngram_order=2, num_buckets=11)
    ids = np.array([[5, 7, 0]])
    model(ids)
    table = model.embedding.embeddings.numpy()
    bucket = VOCAB + (5 * VOCAB + 7 + 2 * 1_000_003) % 11
    mean = (table[5] + table[7] + table[bucket]) / 3
    kernel, bias = model.classifier.get_weights()
    logits = mean @ kernel + bias
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(model(ids).numpy()[0], expected, rtol=1e-5)


@pytest.mark.parametrize("cls, kwargs", [
    (NGramClassifier, dict(vocabulary_size=VOCAB, num_classes=3, embedding_dim=8, feature_dropout=0.2)),
    (TransformerClassifier, dict(vocabulary_size=VOCAB, num_classes=3, sequence_length=8, embedding_dim=8,
                                 num_heads=2, intermediate_dim=16, num_layers=2, normalize_first=True)),
])
def test_config_and_keras_file_round_trip(cls, kwargs, tmp_path):
    model = cls(**kwargs)
    harness.check_config_round_trip(model)
    expected = model(IDS).numpy()
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_array_equal(restored(IDS).numpy(), expected)


def test_pad_token_ids_truncates_and_keeps_one_column():
    ragged = tf.ragged.constant([[1, 2, 3, 4], [5]])
    np.testing.assert_array_equal(pad_token_ids(ragged, 3).numpy(), [[1, 2, 3], [5, 0, 0]])
    empty = tf.ragged.constant([[], []], dtype=tf.int32)
    assert pad_token_ids(empty).shape == (2, 1)


def test_export_module_outputs_and_metadata(tmp_path):
    keras.utils.set_random_seed(2)
    model = build_classifier("transformer", VOCAB, 3, sequence_length=6, embedding_dim=8)
    export = ClassifierExport(IdentityTokenizer(), model, ["neg", "neu", "pos"], max_length=6, metadata={"kind": "t"})
    outputs = export(["5 7 9 11 13 15 17 19", "3 4", ""])
    assert sorted(outputs) == sorted(signatures.CLASSIFIER_OUTPUTS)
    assert outputs[signatures.PROBABILITIES].dtype == tf.float32
    assert outputs[signatures.LABEL_ID].dtype == tf.int64
    # Truncated to max_length, then the same as calling the model on ids.
    direct = model(np.array([[5, 7, 9, 11, 13, 15], [3, 4, 0, 0, 0, 0]])).numpy()
    np.testing.assert_allclose(outputs[signatures.PROBABILITIES].numpy()[:2], direct, atol=1e-6)
    ids = outputs[signatures.LABEL_ID].numpy()
    np.testing.assert_array_equal(ids, outputs[signatures.PROBABILITIES].numpy().argmax(-1))
    assert [label.decode() for label in outputs[signatures.LABEL].numpy()] == [["neg", "neu", "pos"][i] for i in ids]

    tf.saved_model.save(export, str(tmp_path / "sm"), signatures=export.signatures())
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    labels, metadata = read_export_metadata(loaded)
    assert labels == ["neg", "neu", "pos"] and metadata == {"kind": "t"}
    served = loaded.signatures[signatures.SERVING_DEFAULT](**{signatures.TEXT: tf.constant(["3 4"])})
    np.testing.assert_allclose(served[signatures.PROBABILITIES].numpy()[0], direct[1], atol=1e-6)
    spec = loaded.signatures[signatures.SERVING_DEFAULT].structured_input_signature[1]
    assert spec[signatures.TEXT].shape.as_list() == [None] and spec[signatures.TEXT].dtype == tf.string


def test_export_needs_labels():
    with pytest.raises(ValueError, match="at least one class"):
        ClassifierExport(IdentityTokenizer(), build_classifier("fasttext", VOCAB, 2, 8), [])


def _one_step(optimizer, ids):
    keras.utils.set_random_seed(3)
    model = NGramClassifier(VOCAB, 2, embedding_dim=4, num_buckets=13)
    model(ids)
    before = model.embedding.embeddings.numpy().copy()
    model.compile(optimizer, "sparse_categorical_crossentropy")
    model.train_on_batch(ids, np.array([1]))
    return before, model.embedding.embeddings.numpy()


def test_sparse_adam_first_step_equals_adam_and_leaves_untouched_rows():
    from tfllm.training.optimizers import SparseAdam

    ids = np.array([[3, 5, 7, 0]])
    before, dense = _one_step(keras.optimizers.Adam(0.1), ids)
    _, sparse = _one_step(SparseAdam(0.1), ids)
    np.testing.assert_allclose(sparse, dense, atol=1e-5)
    touched = set(np.flatnonzero(np.abs(sparse - before).sum(-1) > 0))
    assert {3, 5, 7} <= touched and len(touched) == 5  # 3 tokens + 2 bigram buckets


def test_sparse_adam_sums_repeated_rows_before_the_update():
    from tfllm.training.optimizers import SparseAdam

    # Row 5 appears twice: Adam's first step on the summed gradient moves each
    # coordinate by the learning rate (m / sqrt(v) = sign(g) at step 1).
    before, after = _one_step(SparseAdam(0.1), np.array([[3, 5, 5, 0]]))
    np.testing.assert_allclose(np.abs(after[5] - before[5]), 0.1, rtol=1e-3)


@pytest.mark.parametrize("kind", ["bilstm", "fasttext"])
def test_every_kind_exports_and_reloads(kind, tmp_path):
    # Keras' LSTM keeps a dropout seed state that tf.Module tracking misses
    # unless the export lists the model's variables.
    model = build_classifier(kind, VOCAB, 2, sequence_length=8, embedding_dim=8)
    model(np.ones((1, 3), "int32"))  # Built, as after training.
    export = ClassifierExport(IdentityTokenizer(), model, ["a", "b"], max_length=8)
    expected = export(["3 4 5"])[signatures.PROBABILITIES].numpy()
    tf.saved_model.save(export, str(tmp_path / kind), signatures=export.signatures())
    served = tf.saved_model.load(str(tmp_path / kind)).signatures[signatures.SERVING_DEFAULT](
        **{signatures.TEXT: tf.constant(["3 4 5"])}
    )
    np.testing.assert_allclose(served[signatures.PROBABILITIES].numpy(), expected, atol=1e-6)
    # Each weight is written once: the variables take about the weights' bytes, not twice them.
    weight_bytes = sum(np.asarray(weight).nbytes for weight in model.weights)
    variables = tmp_path / kind / "variables"
    saved_bytes = sum(path.stat().st_size for path in variables.iterdir())
    assert saved_bytes < 1.5 * weight_bytes, (saved_bytes, weight_bytes)


@pytest.mark.parametrize("kind", ["fasttext", "lstm", "bilstm", "transformer"])
def test_set_token_vectors_fills_the_token_rows(kind):
    from tfllm.models.classifier import DEFAULTS, build_classifier, set_token_vectors

    model = build_classifier(kind, 50, 2, 8)
    vectors = np.random.default_rng(0).normal(size=(50, DEFAULTS[kind]["embedding_dim"])).astype("float32")
    set_token_vectors(model, vectors)
    table = getattr(model.embedding, "token_embedding", model.embedding).embeddings.numpy()
    np.testing.assert_array_equal(table[:50], vectors)
    with pytest.raises(ValueError, match="do not fit"):
        set_token_vectors(model, vectors[:, :3])

"""ClassifierPacker and Seq2SeqPacker: values, config round trip, agreement with the seq2seq dataset."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfllm.data import make_seq2seq_dataset
from tfllm.text import ClassifierPacker, Seq2SeqPacker

CLS, SEP, START, END = 2, 3, 4, 5


def test_classifier_packer_ragged_and_dense_agree():
    packer = ClassifierPacker(6, start_value=CLS, end_value=SEP)
    ragged = tf.ragged.constant([[7, 8], [9, 10, 11, 12, 13, 14, 15]])
    dense = tf.constant([[7, 8, 0, 0, 0, 0, 0], [9, 10, 11, 12, 13, 14, 15]])
    expected = [[CLS, 7, 8, SEP, 0, 0], [CLS, 9, 10, 11, 12, SEP]]
    assert packer(ragged).numpy().tolist() == expected
    assert packer(dense).numpy().tolist() == expected  # trailing padding dropped first
    plain = ClassifierPacker(3)
    assert plain(ragged).numpy().tolist() == [[7, 8, 0], [9, 10, 11]]


def test_classifier_packer_config_round_trip():
    packer = ClassifierPacker(12, start_value=CLS, end_value=SEP, pad_value=0)
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(packer)))
    restored = keras.saving.deserialize_keras_object(config)
    assert isinstance(restored, ClassifierPacker)
    ids = tf.ragged.constant([[7, 8, 9]])
    assert restored(ids).numpy().tolist() == packer(ids).numpy().tolist()
    with pytest.raises(ValueError, match="sequence_length=2"):
        ClassifierPacker(2, start_value=CLS, end_value=SEP)


def test_seq2seq_packer_values():
    packer = Seq2SeqPacker(4, 4, start_value=START, end_value=END)
    source = tf.ragged.constant([[7, 8, 9, 10, 11], [12]])
    target = tf.constant([[20, 21, 22, 23, 24], [25, 0, 0, 0, 0]])
    inputs, labels = packer(source, target)
    assert inputs["encoder_token_ids"].numpy().tolist() == [[7, 8, 9, 10], [12, 0, 0, 0]]
    assert inputs["decoder_token_ids"].numpy().tolist() == [[START, 20, 21, 22], [START, 25, 0, 0]]
    assert labels.numpy().tolist() == [[20, 21, 22, END], [25, END, 0, 0]]
    only = packer(source)
    assert list(only) == ["encoder_token_ids"]
    restored = Seq2SeqPacker.from_config(packer.get_config())
    assert restored.get_config() == packer.get_config()
    with pytest.raises(ValueError, match="decoder_sequence_length=1"):
        Seq2SeqPacker(4, 1, start_value=START, end_value=END)


def test_seq2seq_packer_matches_seq2seq_dataset():
    vocabulary = ["[PAD]", "[UNK]", "[START]", "[END]", "a", "b", "c", "d"]

    def tokenizer(texts):
        words = tf.strings.split(texts)
        return tf.ragged.map_flat_values(
            lambda w: tf.cast(tf.argmax(tf.cast(tf.equal(w[:, None], vocabulary), tf.int32), 1), tf.int32),
            words,
        )

    sources, targets = ["a b c", "d"], ["b c d a", "a"]
    dataset = make_seq2seq_dataset(
        sources, targets, tokenizer=tokenizer, start_id=2, end_id=3, batch_size=2,
        max_source_length=4, max_target_length=4, bucket_boundaries=([4], [4]), shuffle=False,
    )
    (inputs, labels), = list(dataset)
    packer = Seq2SeqPacker(4, 4, start_value=2, end_value=3)
    packed, packed_labels = packer(tokenizer(tf.constant(sources)), tokenizer(tf.constant(targets)))
    for key in ("encoder_token_ids", "decoder_token_ids"):
        np.testing.assert_array_equal(inputs[key].numpy(), packed[key].numpy())
    np.testing.assert_array_equal(labels.numpy(), packed_labels.numpy())

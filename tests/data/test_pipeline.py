"""make_dataset / make_seq2seq_dataset: bucketing, truncation, shuffling, seq2seq shifting."""

import collections
import itertools
import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfllm.data import (
    LabelVocabulary,
    auto_bucket_boundaries,
    load_sample,
    make_dataset,
    make_seq2seq_dataset,
    sequence_lengths,
)
from tfllm.text import build_word_vectorizer, build_wordpiece_vocabulary, make_wordpiece_tokenizer


@pytest.fixture(scope="module")
def sentiment():
    return load_sample("sentiment")


@pytest.fixture(scope="module")
def tokenizer(sentiment):
    dialogue = load_sample("dialogue")
    corpus = list(sentiment.text) + list(dialogue.context) + list(dialogue.response)
    return make_wordpiece_tokenizer(build_wordpiece_vocabulary(corpus, 600))


def batches(dataset):
    return [tuple(np.asarray(part) for part in batch) for batch in dataset]


def test_bucketing_keeps_every_example_and_only_boundary_shapes(sentiment, tokenizer):
    labels = LabelVocabulary.from_labels(sentiment.label).encode(sentiment.label)
    max_length = 16
    dataset = make_dataset(
        sentiment.text,
        labels,
        tokenizer=tokenizer,
        batch_size=16,
        max_length=max_length,
        bucket_boundaries=[6, 10],
    )
    lengths = sequence_lengths(list(sentiment.text), tokenizer)
    assert lengths.max() > max_length  # the sample exercises truncation
    seen = collections.Counter()
    shapes = set()
    all_batches = batches(dataset)
    assert len(all_batches) == int(dataset.cardinality())  # Keras knows the epoch length
    for ids, batch_labels in all_batches:
        assert ids.dtype == np.int32 and batch_labels.dtype == np.int32
        assert ids.shape[0] <= 16
        shapes.add(ids.shape[1])
        for row, label in zip(ids, batch_labels):
            length = int(np.count_nonzero(row))
            assert np.all(row[length:] == 0)  # right padding only
            # Each example sits in the smallest bucket that holds it.
            assert ids.shape[1] == min(b for b in (6, 10, 16) if b >= length)
            seen[(tuple(row[:length]), int(label))] += 1
    assert shapes <= {6, 10, 16}
    expected = collections.Counter()
    for row, label in zip(tokenizer(list(sentiment.text)), labels):
        row = list(row)[:max_length]
        expected[(tuple(row), int(label))] += 1
    assert seen == expected


def test_auto_buckets_pad_far_less_than_fixed_length(sentiment, tokenizer):
    dataset = make_dataset(sentiment.text, None, tokenizer=tokenizer, batch_size=32, max_length=64)
    lengths = np.minimum(sequence_lengths(list(sentiment.text), tokenizer), 64)
    bounds = auto_bucket_boundaries(lengths, 64)
    padded = 0
    for (ids,) in ((batch,) for batch in dataset):
        assert ids.shape[1] in bounds
        padded += ids.shape[0] * ids.shape[1]
    assert padded < 0.6 * len(lengths) * 64
    assert padded >= lengths.sum()


def test_auto_bucket_boundaries_are_optimal_on_a_small_case():
    lengths = np.array([1, 2, 3, 9, 10, 11, 12, 30, 31, 32, 60])
    bounds = auto_bucket_boundaries(lengths, max_length=64, num_buckets=3, multiple=4)

    def padded(tops):
        return sum(min(t for t in tops if t >= n) for n in lengths)

    # The last bucket is the longest length rounded up (60); try every choice
    # of up to two more bucket lengths below it.
    best = min(
        padded(list(tops) + [60])
        for k in range(3)
        for tops in itertools.combinations(range(4, 60, 4), k)
    )
    assert bounds[-1] == 60 and len(bounds) <= 3
    assert padded(bounds) == best
    assert auto_bucket_boundaries([5, 5, 5], max_length=None) == [8]
    assert auto_bucket_boundaries([500], max_length=100) == [100]


def test_truncation_is_reported_once(sentiment, tokenizer, caplog):
    with caplog.at_level(logging.INFO, logger="tfllm.data"):
        make_dataset(sentiment.text, None, tokenizer=tokenizer, max_length=8)
    records = [r for r in caplog.records if "truncated" in r.getMessage()]
    assert len(records) == 1 and records[0].levelno == logging.WARNING
    lengths = sequence_lengths(list(sentiment.text), tokenizer)
    expected = int(np.sum(lengths > 8))
    assert records[0].getMessage().startswith(f"{expected} of {len(sentiment)} texts")


@pytest.mark.slow
def test_shuffle_is_seeded_and_reshuffles_each_epoch(tokenizer):
    texts = [f"text number {i}" for i in range(64)]
    labels = np.arange(64)

    def order(seed):
        dataset = make_dataset(texts, labels, tokenizer=tokenizer, batch_size=8, seed=seed)
        first = np.concatenate([y for _, y in batches(dataset)])
        second = np.concatenate([y for _, y in batches(dataset)])
        return first, second

    a1, a2 = order(0)
    b1, _ = order(0)
    c1, _ = order(1)
    assert sorted(a1) == list(range(64))
    assert a1.tolist() == b1.tolist()
    assert a1.tolist() != c1.tolist() and a1.tolist() != a2.tolist()
    unshuffled = make_dataset(texts, labels, tokenizer=tokenizer, shuffle=False, batch_size=8)
    assert np.concatenate([y for _, y in batches(unshuffled)]).tolist() == list(range(64))
    dropped = make_dataset(
        texts[:20], labels[:20], tokenizer=tokenizer, batch_size=8, drop_remainder=True
    )
    assert [len(y) for _, y in batches(dropped)] == [8, 8] and int(dropped.cardinality()) == 2


def test_dense_text_vectorization_and_no_bucketing(sentiment):
    vectorizer = build_word_vectorizer(sentiment.text, 500)
    dataset = make_dataset(
        sentiment.text[:50], None, tokenizer=vectorizer, batch_size=10,
        max_length=None, bucket_boundaries=None, shuffle=False,
    )
    first = next(iter(dataset)).numpy()
    expected = vectorizer(tf.constant(list(sentiment.text[:10]))).numpy()
    assert first.shape == expected.shape  # padded to the longest in the batch
    np.testing.assert_array_equal(first, expected)


def test_input_errors(tokenizer):
    with pytest.raises(ValueError, match="LabelVocabulary"):
        make_dataset(["a", "b"], ["pos", "neg"], tokenizer=tokenizer)
    with pytest.raises(ValueError, match="item 1 is float"):
        make_dataset(["a", float("nan")], tokenizer=tokenizer)
    with pytest.raises(ValueError, match="2 texts but 3 labels"):
        make_dataset(["a", "b"], [0, 1, 1], tokenizer=tokenizer)
    with pytest.raises(ValueError, match="batch_size=0"):
        make_dataset(["a"], tokenizer=tokenizer, batch_size=0)


def test_dataset_trains_a_keras_model(sentiment, tokenizer):
    vocab = LabelVocabulary.from_labels(sentiment.label)
    dataset = make_dataset(
        sentiment.text, vocab.encode(sentiment.label), tokenizer=tokenizer, batch_size=64,
        max_length=32,
    )
    model = keras.Sequential(
        [
            keras.layers.Embedding(tokenizer.vocabulary_size(), 8, mask_zero=True),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(len(vocab)),
        ]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(dataset, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_seq2seq_dataset_shifts_targets_and_buckets_both_sides(tokenizer):
    dialogue = load_sample("dialogue")
    start, end = tokenizer.token_to_id("[START]"), tokenizer.token_to_id("[END]")
    dataset = make_seq2seq_dataset(
        dialogue.context, dialogue.response, tokenizer=tokenizer, batch_size=16,
        max_source_length=24, max_target_length=12, shuffle=False,
    )
    expected = collections.Counter(
        (tuple(list(s)[:24]), tuple(list(t)[:11]))
        for s, t in zip(tokenizer(list(dialogue.context)), tokenizer(list(dialogue.response)))
    )
    seen = collections.Counter()
    source_shapes, target_shapes = set(), set()
    assert len(list(dataset)) == int(dataset.cardinality())
    for inputs, labels in dataset:
        encoder = inputs["encoder_token_ids"].numpy()
        decoder = inputs["decoder_token_ids"].numpy()
        labels = labels.numpy()
        assert decoder.shape == labels.shape and encoder.dtype == np.int32
        source_shapes.add(encoder.shape[1])
        target_shapes.add(decoder.shape[1])
        for enc, dec, lab in zip(encoder, decoder, labels):
            n = int(np.count_nonzero(lab))
            assert dec[0] == start and lab[n - 1] == end
            np.testing.assert_array_equal(dec[1:n], lab[: n - 1])  # teacher forcing shift
            assert np.all(dec[n:] == 0) and np.all(lab[n:] == 0)
            seen[(tuple(enc[enc != 0]), tuple(lab[: n - 1]))] += 1
    assert seen == expected
    assert max(source_shapes) <= 24 and max(target_shapes) <= 12
    assert len(source_shapes) <= 4 and len(target_shapes) <= 4


def test_seq2seq_needs_start_and_end_ids(sentiment):
    vectorizer = build_word_vectorizer(sentiment.text[:20], 100)
    with pytest.raises(ValueError, match="Pass `start_id`"):
        make_seq2seq_dataset(["a"], ["b"], tokenizer=vectorizer)
    with pytest.raises(ValueError, match=r"a pair \(source_lengths, target_lengths\)"):
        make_seq2seq_dataset(
            ["a"], ["b"], tokenizer=vectorizer, start_id=1, end_id=2, bucket_boundaries=[8, 16]
        )
    dataset = make_seq2seq_dataset(
        ["a good film"], ["great"], tokenizer=vectorizer, start_id=98, end_id=99,
        max_target_length=4, bucket_boundaries=None,
    )
    inputs, labels = next(iter(dataset))
    assert inputs["decoder_token_ids"].numpy()[0, 0] == 98
    assert labels.numpy()[0, 1] == 99

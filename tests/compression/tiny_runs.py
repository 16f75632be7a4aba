"""Tiny classification runs and tables for the compression tests."""

import json
import os

import numpy as np
import pandas as pd

POSITIVE = ["good", "great", "fine", "lovely", "superb", "nice"]
NEGATIVE = ["bad", "awful", "poor", "dull", "boring", "weak"]
FILLER = ["the", "film", "was", "plot", "acting", "really", "quite", "a"]


def make_frame(count=120, seed=0):
    """A separable two-class table: a text's label is the sentiment word it contains."""
    rng = np.random.RandomState(seed)
    rows = []
    for index in range(count):
        label = "pos" if index % 2 == 0 else "neg"
        words = list(rng.choice(FILLER, size=rng.randint(3, 7)))
        words.insert(rng.randint(0, len(words) + 1), rng.choice(POSITIVE if label == "pos" else NEGATIVE))
        rows.append({"text": " ".join(words), "label": label})
    return pd.DataFrame(rows)


def make_run(run_dir, kind, *, train=False, epochs=2, frame=None, max_length=16, extra_tokens=0, **options):
    """Writes a run directory as `ClassificationTask.train` leaves it (tiny model, optionally trained).

    `extra_tokens` unused vocabulary entries make the embedding table, not
    the graph, the bulk of the export, as in real models.
    """
    import keras

    from tfllm import data, text
    from tfllm.models.classifier import build_classifier

    frame = make_frame() if frame is None else frame
    os.makedirs(run_dir, exist_ok=True)
    vocabulary = text.build_wordpiece_vocabulary(frame.text, vocabulary_size=200)
    vocabulary += [f"unused{index}" for index in range(extra_tokens)]
    text.save_vocabulary(vocabulary, os.path.join(run_dir, "vocabulary.txt"))
    labels = data.LabelVocabulary.from_labels(frame.label)
    labels.save(os.path.join(run_dir, "labels.txt"))
    defaults = {
        "fasttext": {"embedding_dim": 8, "num_buckets": 64, "feature_dropout": 0.0, "dropout": 0.0},
        "lstm": {"embedding_dim": 8, "units": 8},
        "bilstm": {"embedding_dim": 8, "units": 8},
        "transformer": {"embedding_dim": 16, "num_heads": 2, "intermediate_dim": 32},
    }[kind]
    keras.utils.set_random_seed(0)
    model = build_classifier(kind, len(vocabulary), len(labels), max_length, **{**defaults, **options})
    model(np.ones((1, 4), "int32"))
    if train:
        dataset = data.make_dataset(
            frame.text, labels.encode(frame.label), tokenizer=text.make_wordpiece_tokenizer(vocabulary),
            batch_size=16, max_length=max_length,
        )
        model.compile(keras.optimizers.Adam(0.02), "sparse_categorical_crossentropy")
        model.fit(dataset, epochs=epochs, verbose=0)
    model.save(os.path.join(run_dir, "model.keras"))
    metadata = {"app": "sentiment", "model": kind, "max_length": max_length, "vocabulary_size": len(vocabulary)}
    with open(os.path.join(run_dir, "metadata.json"), "w", encoding="utf-8") as file:
        json.dump(metadata, file)
    return run_dir


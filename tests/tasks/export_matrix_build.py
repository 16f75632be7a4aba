"""Trains every model kind of every task under a 2-device MirroredStrategy and exports it.

`python export_matrix_build.py BASE_DIR` prints one JSON line: `[[task, kind,
export path], ...]`. `test_export_matrix.py` runs it in a fresh process: in
the long-lived test process the same trainings take about three times as
long (state that earlier tests leave behind), and they need a process whose
runtime is set up with two logical CPU devices anyway.
"""

import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

TEXTS = ["great fun, i loved it", "Anna: are we still on for tonight?"]


def build_exports(base, mirrored_strategy):
    """`{(task, kind): export path}`, each trained one epoch on a small built-in sample."""
    from tfllm import data
    from tfllm.tasks import classification, text_to_text, token_classification

    paths = {}
    task = classification.ClassificationTask(name="sentiment", sample="sentiment", demo_texts=tuple(TEXTS[:1]))
    frame = data.load_sample("sentiment").iloc[:48]
    frames = data.train_val_split(frame, 0.25, seed=0)
    for kind in classification.MODEL_KINDS:
        config = task.config(
            model=kind, epochs=1, batch_size=8, vocabulary_size=200, max_length=32, verbose=0,
            export_dir=str(base / "export" / kind), run_dir=str(base / "run" / kind),
        )
        result = task.train(config, mirrored_strategy, frames=frames, log=lambda message: None)
        paths["classification", kind] = result["export_path"]

    pairs = data.load_sample("summarization").iloc[:16]
    seq2seq = text_to_text.TextToTextTask(
        name="summarization", source_column="dialogue", target_column="summary", dataset="samsum",
        sample="summarization", config=None, demo_config=None, demo_texts=tuple(TEXTS[1:]),
        metrics=lambda *args: {},
    )
    split = (list(pairs.dialogue[:12]), list(pairs.summary[:12]), list(pairs.dialogue[12:]),
             list(pairs.summary[12:]), "sample")
    for kind in text_to_text.MODEL_KINDS:
        config = text_to_text.TextToTextConfig(
            model=kind, vocabulary_size=200, max_source_length=32, max_target_length=8, hidden_dim=16,
            num_layers=1, num_heads=2, intermediate_dim=16, epochs=1, batch_size=8, verbose=0,
        )
        result = seq2seq.train(
            config, split, decoding={"strategy": "greedy"}, run_dir=str(base / "run-s2s" / kind),
            strategy=mirrored_strategy, eval_limit=2, export_dir=str(base / "export-s2s" / kind),
            log=lambda message: None,
        )
        paths["text_to_text", kind] = result["export_path"]

    tagging = token_classification.TokenClassificationTask(name="ner", sample="ner", demo_texts=tuple(TEXTS[1:]))
    for kind in token_classification.MODEL_KINDS:
        config = tagging.config(model=kind, epochs=1, batch_size=8, verbose=0, model_options={"units": 8},
                                export_dir=str(base / "export-ner" / kind), run_dir=str(base / "run-ner" / kind))
        result = tagging.train(config, mirrored_strategy, log=lambda message: None)
        paths["token_classification", kind] = result["export_path"]
    return paths


def main(base):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tfllm.training import get_strategy

    paths = build_exports(pathlib.Path(base), get_strategy("mirrored"))
    print(json.dumps([[task, kind, path] for (task, kind), path in paths.items()]))


if __name__ == "__main__":
    main(sys.argv[1])

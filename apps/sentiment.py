"""Sentiment classification from a text table to a TF Serving SavedModel.

    python apps/sentiment.py                        # demo on the built-in sample
    python apps/sentiment.py train --data reviews.csv [--model fasttext|lstm|bilstm|transformer]
    python apps/sentiment.py evaluate --model-dir saved_models/sentiment --data test.csv
    python apps/sentiment.py predict --model-dir saved_models/sentiment "great film" "dull plot"
    python apps/sentiment.py export --run-dir runs/sentiment

Training tokenizes with a WordPiece vocabulary built on the training split
(inside tf.data, bucketed by length), trains on int ids with early stopping
on validation loss, and exports tokenizer + model + label names as one
SavedModel that takes raw strings (`tfllm.tasks.classification`). Relative
paths are relative to the current directory (the repository root under
`make run`). See docs/sentiment.md.
"""

import sys

from tfllm.cli.classification import ClassificationApp
from tfllm.tasks.classification import ClassificationTask

DEMO_TEXTS = (
    "An absolute delight from start to finish, I loved every minute.",
    "The battery died after two days and support never answered.",
    "The package arrived on Tuesday.",
    "Not bad at all, better than I expected.",
)

TASK = ClassificationTask(name="sentiment", sample="sentiment", datasets=("imdb", "sst2"), demo_texts=DEMO_TEXTS)
APP = ClassificationApp(
    task=TASK,
    description="Train, evaluate and serve sentiment classifiers. Without a command: "
    "a demo that trains on the built-in sample and exports a model.",
)


def main(argv=None):
    """Runs the command line; returns the exit code (2 for bad input)."""
    return APP.main(argv)


if __name__ == "__main__":
    sys.exit(main())

"""Extractive question answering: SQuAD v1.1 files in, a (question, context)-in SavedModel out.

    python apps/qa.py                                    # demo on the built-in sample
    python apps/qa.py train --data squad/train.json [--validation-data squad/validation.json]
    python apps/qa.py train --data train.json --backbone runs/squad_mlm   # a pre-trained encoder
    python apps/qa.py evaluate --model-dir saved_models/qa --data squad/validation.json
    python apps/qa.py predict --model-dir saved_models/qa --context "The lighthouse is red." "What colour is it?"
    python apps/qa.py export --run-dir runs/qa

Question and context are packed as BERT inputs (`[CLS] q [SEP] c [SEP]`,
segment ids 0 and 1); contexts longer than a window are split into
overlapping windows (`--doc-stride`); a span model (by default a BiLSTM reader
with question-matching features; with `--backbone`, an encoder with a span head) predicts
start and end logits, and the best span over all windows (at most
`--max-answer-length` tokens) is mapped back to character offsets of the
context. Evaluation prints SQuAD exact match and F1 beside the sliding-window
baseline on the same questions. The export maps `question` and `context`
(strings) to `answer`, `score`, `start` and `end`. See docs/question_answering.md.
"""

import sys

from tfllm.cli.question_answering import QuestionAnsweringApp
from tfllm.tasks.question_answering import QuestionAnsweringConfig, QuestionAnsweringTask

DEMO_QUESTIONS = (
    ("When was the railway opened?",
     "The Copper Kettle Railway is a narrow-gauge line that climbs from the valley town of Ostmere to the "
     "mountain village of Halden. The line is 23 kilometres long and was opened in 1898."),
    ("What colour is the lighthouse?", "The old lighthouse of the harbor is painted red and white."),
    ("Who guards the eggs?", "In many species of glass frogs the male guards the eggs for several weeks."),
)

TASK = QuestionAnsweringTask(
    name="qa",
    config=QuestionAnsweringConfig(),
    # About a minute on two CPU cores: far too little data to answer well.
    demo_config=QuestionAnsweringConfig(
        vocabulary_size=400, num_layers=2, num_heads=2, hidden_dim=64, intermediate_dim=128,
        max_seq_length=96, doc_stride=32, max_query_length=24, max_answer_length=12, epochs=30,
        batch_size=8, learning_rate=2e-3, patience=30, val_fraction=0.2,
    ),
    demo_questions=DEMO_QUESTIONS,
)
APP = QuestionAnsweringApp(
    task=TASK,
    description="Train, evaluate and serve extractive question-answering models on SQuAD files. Without a "
    "command: a demo that trains on the built-in sample, scores it against the sliding-window baseline and "
    "exports a model.",
)


def main(argv=None):
    """Runs the command line; returns the exit code (2 for bad input)."""
    return APP.main(argv)


if __name__ == "__main__":
    sys.exit(main())

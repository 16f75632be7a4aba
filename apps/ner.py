"""Named-entity recognition, from CoNLL files or entity tables to a text-in, entities-out SavedModel.

    python apps/ner.py                          # demo on the built-in sample
    python apps/ner.py train --data train.txt --val-data valid.txt       # CoNLL files (IOB1 or IOB2)
    python apps/ner.py train --data spans.jsonl --entities-column entities   # texts + [start, end, type] spans
    python apps/ner.py train --data train.txt --backbone bert_tiny_en_uncased   # an encoder with a token head
    python apps/ner.py evaluate --model-dir saved_models/ner --data valid.txt [--baseline-data train.txt]
    python apps/ner.py predict --model-dir saved_models/ner "Anna Berg flew to Oslo."
    python apps/ner.py export --run-dir runs/ner

Trains a BiLSTM tagger over word, case and character-CNN features
(`tfllm.tasks.token_classification`), or fine-tunes an encoder backbone
with labels on each word's first sub-word, and reports entity-level
precision / recall / F1 (seqeval) next to the majority-tag-per-word
baseline. The export's `serving_default` maps `text` to the entities of each
text: `entity_text`, `entity_type`, `entity_start` / `entity_end` (character
offsets), `entity_score`, padded to the batch's most, and `entity_count`.
See docs/ner.md.
"""

import sys

from tfllm.cli.token_classification import TokenClassificationApp
from tfllm.tasks.token_classification import TokenClassificationTask

DEMO_TEXTS = (
    "Anna Berg flew from Oslo to Lisbon with Tomas Varga.",
    "Shares in Redwood Telecom rose after the Nordlys Bank report.",
    "The Italian coach Paolo Bianchi met fans in Madrid on Friday.",
)

TASK = TokenClassificationTask(name="ner", sample="ner", demo_texts=DEMO_TEXTS)
APP = TokenClassificationApp(
    task=TASK,
    description="Train, evaluate and serve named-entity recognizers. Without a command: a demo that "
    "trains on the built-in sample, scores it against the majority-tag baseline and exports a model.",
)


def main(argv=None):
    """Runs the command line; returns the exit code (2 for bad input)."""
    return APP.main(argv)


if __name__ == "__main__":
    sys.exit(main())

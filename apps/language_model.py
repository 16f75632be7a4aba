"""Language-model pre-training: a corpus in, a backbone out; causal backbones generate and export.

    python apps/language_model.py                        # demo: a character model on built-in rhymes
    python apps/language_model.py pretrain --objective causal --tokenizer char \
        --data $TFLLM_DATA_DIR/lm/tiny_shakespeare/input.txt --run-dir runs/shakespeare
    python apps/language_model.py pretrain --objective mlm --data $TFLLM_DATA_DIR/lm/gutenberg
    python apps/language_model.py pretrain --objective mlm --data unsup.csv --text-column review
    python apps/language_model.py evaluate --backbone-dir runs/shakespeare/backbone --data held_out.txt
    python apps/language_model.py generate --backbone-dir runs/shakespeare/backbone "ROMEO:"
    python apps/language_model.py export --backbone-dir runs/shakespeare/backbone --decoding top_k
    python apps/language_model.py predict --model-dir saved_models/language_model "ROMEO:"

`pretrain` trains an encoder with masked language modelling (15% of the
tokens: 80% [MASK], 10% random, 10% kept, drawn per batch) or a decoder with
causal language modelling, on text files, folders of them or a table column,
packed into fixed-length windows; the tokenizer is a WordPiece vocabulary
learned on the corpus or one id per character (`--tokenizer char`). It runs
under every strategy (`--strategy mirrored|multiworker|tpu`,
`--mixed-precision`), resumes when started again with the same `--run-dir`,
logs tokens per second and validation loss / perplexity each epoch (and to
TensorBoard), and saves the backbone and tokenizer with keras-hub's
`save_to_preset` (`tfllm.models.load_backbone` reads them back); its JSON
line names that directory as `backbone_dir`. See docs/language_model.md.
"""

import sys

from tfllm.cli.language_modeling import LanguageModelApp
from tfllm.tasks.language_modeling import LanguageModelConfig, LanguageModelTask

TASK = LanguageModelTask(
    name="language_model",
    sample="rhymes",
    config=LanguageModelConfig(
        objective="causal", tokenizer="wordpiece", vocabulary_size=8000, sequence_length=128, num_layers=4,
        num_heads=4, hidden_dim=256, intermediate_dim=1024, dropout=0.1, epochs=10, batch_size=32,
        learning_rate=5e-4, patience=3,
    ),
    # About a minute on two CPU cores. The sample is small: the validation
    # loss is lowest after a few epochs, whose weights are kept.
    demo_config=LanguageModelConfig(
        objective="causal", tokenizer="char", sequence_length=64, num_layers=2, num_heads=4, hidden_dim=64,
        intermediate_dim=256, dropout=0.2, epochs=10, steps_per_epoch=120, batch_size=16, learning_rate=2e-3,
        val_fraction=0.1, patience=3,
    ),
    demo_prompts=("Twinkle, twinkle, ", "The king was in his ", "Little "),
)
APP = LanguageModelApp(
    task=TASK,
    description="Pre-train language models (masked or causal) on a text corpus, evaluate perplexity, "
    "generate text and export it. Without a command: a demo that trains a character-level model on a "
    "built-in public-domain sample and prints generated text.",
)


def main(argv=None):
    """Runs the command line; returns the exit code (2 for bad input)."""
    return APP.main(argv)


if __name__ == "__main__":
    sys.exit(main())

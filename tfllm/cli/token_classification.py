"""The command line of a token-classification app (`tfllm.tasks.token_classification`)."""

import dataclasses

from tfllm import cli
from tfllm.cli import arguments
from tfllm.cli.app import App, log

# The built-in sample has about 95 training sentences: small batches give enough steps per epoch.
DEMO_DEFAULTS = {"epochs": 40, "batch_size": 8, "patience": 6, "min_word_count": 1, "val_fraction": 0.15}


def add_sentence_arguments(parser, required=False):
    """`--data` (a CoNLL file or an entity table), its columns and `--encoding`."""
    parser.add_argument("--data", required=required, metavar="PATH",
                        help="a CoNLL file (word ... tag per line, blank line between sentences) or a table "
                             "(.csv, .tsv, .json, .jsonl, .parquet) of texts and entity spans")
    parser.add_argument("--text-column", default="text", metavar="C", help="a table's text column (default: %(default)s)")
    parser.add_argument("--entities-column", default="entities", metavar="C",
                        help="a table's column of JSON [start, end, type] character spans (default: %(default)s)")
    parser.add_argument("--encoding", default="utf-8", metavar="NAME", help="text encoding of --data (default: %(default)s)")


@dataclasses.dataclass
class TokenClassificationApp(App):
    """`App` over a `TokenClassificationTask`: tagged sentences in, entities out."""

    def add_train_options(self, parser, demo):
        from tfllm.tasks.token_classification import MODEL_KINDS, TokenClassificationConfig

        defaults = TokenClassificationConfig(**DEMO_DEFAULTS) if demo else TokenClassificationConfig()
        if not demo:
            add_sentence_arguments(parser, required=True)
            parser.add_argument("--val-data", metavar="PATH", help="validation sentences (default: --val-fraction of --data)")
        parser.add_argument("--model", default=defaults.model, metavar="KIND",
                            help=f"one of {', '.join(MODEL_KINDS)} (default: %(default)s)")
        parser.add_argument("--epochs", type=arguments.positive_int, default=defaults.epochs, help="most epochs; early stopping may end sooner (default: %(default)s)")
        parser.add_argument("--batch-size", type=arguments.positive_int, default=defaults.batch_size, help="sentences per replica and step (default: %(default)s)")
        parser.add_argument("--learning-rate", type=arguments.positive_float, default=None, help="Adam learning rate (default: 2e-3; 5e-4 for the head with --backbone)")
        parser.add_argument("--val-fraction", type=arguments.fraction, default=defaults.val_fraction, help="share of sentences held out without --val-data (default: %(default)s)")
        parser.add_argument("--patience", type=arguments.non_negative_int, default=defaults.patience, help="epochs without a higher validation entity F1 before stopping (default: %(default)s)")
        parser.add_argument("--min-word-count", type=arguments.positive_int, default=defaults.min_word_count, help="rarer words share the unknown-word vector (default: %(default)s)")
        if not demo:
            tune = arguments.add_finetuning_arguments(
                parser, defaults, "fine-tuning a pre-trained encoder backbone instead of --model",
                "an encoder backbone directory, its pre-training run directory, or a keras-hub preset such as "
                "bert_tiny_en_uncased (downloaded)",
            )
            tune.add_argument("--max-length", type=arguments.positive_int, default=defaults.max_length, help="sub-words per sentence, [CLS] and [SEP] included (default: %(default)s)")
        arguments.add_seed_argument(parser)
        arguments.add_export_argument(parser, self.default_export_dir())
        arguments.add_run_dir_argument(parser, self.default_run_dir())
        arguments.add_training_arguments(parser)

    def add_evaluate_options(self, parser):
        add_sentence_arguments(parser, required=True)
        parser.add_argument("--baseline-data", metavar="PATH", help="training sentences: also score the majority-tag-per-word baseline")
        parser.add_argument("--batch-size", type=arguments.positive_int, default=128, help="sentences per call (default: %(default)s)")

    def add_predict_options(self, parser):
        parser.add_argument("--data", metavar="PATH", help="a table whose --text-column holds the texts")
        parser.add_argument("--text-column", default="text", metavar="C", help="(default: %(default)s)")
        parser.add_argument("--encoding", default="utf-8", metavar="NAME", help="text encoding of --data (default: %(default)s)")
        parser.add_argument("--batch-size", type=arguments.positive_int, default=128, help="texts per call (default: %(default)s)")

    def config_from_args(self, args, demo):
        from tfllm.tasks.token_classification import MODEL_KINDS

        if args.model not in MODEL_KINDS:
            raise cli.UsageError(f"unknown model {args.model!r}; expected one of {', '.join(MODEL_KINDS)}")
        names = ["model", "epochs", "batch_size", "learning_rate", "val_fraction", "patience", "min_word_count",
                 "seed", "export_dir", "run_dir"]
        if not demo:
            names += ["data", "val_data", "text_column", "entities_column", "encoding", "backbone", "max_length",
                      "backbone_lr_factor", "freeze_epochs", "warmup_fraction"]
        return self.task.config(**{name: getattr(args, name) for name in names})

    def show_demo(self, export, result):
        from tfllm.tasks.tagger_export import entity_records

        texts = list(self.task.demo_texts)
        for text, entities in zip(texts, entity_records(export, texts)):
            found = ", ".join(f"{e['text']} ({e['type']} {e['score']:.2f})" for e in entities) or "no entities"
            log(f"  {text}\n    -> {found}")

    def evaluate_command(self, args):
        from tfllm.tasks.tagging_data import load_sentences

        loaded = self.task.load_export(args.model_dir)  # A wrong directory is named before a wrong file.
        options = {"text_column": args.text_column, "entities_column": args.entities_column, "encoding": args.encoding}
        sentences = load_sentences(args.data, **options)
        baseline = load_sentences(args.baseline_data, **options) if args.baseline_data else None
        report = self.task.evaluate(loaded, sentences, baseline=baseline, batch_size=args.batch_size)
        cli.print_json({"command": "evaluate", **report})
        return 0

"""The command line of a text-classification app (`tfllm.tasks.classification`)."""

import dataclasses

from tfllm import cli
from tfllm.cli import arguments
from tfllm.cli.app import App, log

# The demo's sample is small (561 training texts): smaller batches give the
# model enough steps per epoch, and early stopping ends it long before 30.
DEMO_DEFAULTS = {"epochs": 30, "batch_size": 16}


@dataclasses.dataclass
class ClassificationApp(App):
    """`App` over a `ClassificationTask`: columns text/label, labels and probabilities out."""

    def add_train_options(self, parser, demo):
        from tfllm.tasks.classification import MODEL_KINDS, ClassificationConfig

        defaults = ClassificationConfig(**DEMO_DEFAULTS) if demo else ClassificationConfig()
        if not demo:
            arguments.add_data_arguments(parser)
            parser.add_argument("--dataset", choices=self.task.datasets, help="a public data set instead of --data ($TFLLM_DATA_DIR)")
            parser.add_argument("--data-dir", metavar="DIR", help="directory holding the --dataset folder (default: $TFLLM_DATA_DIR)")
        parser.add_argument(
            "--model", default=defaults.model, metavar="KIND",
            help=f"one of {', '.join(MODEL_KINDS)} (default: %(default)s)",
        )
        parser.add_argument("--epochs", type=arguments.positive_int, default=defaults.epochs, help="most epochs; early stopping may end sooner (default: %(default)s)")
        parser.add_argument("--batch-size", type=arguments.positive_int, default=defaults.batch_size, help="examples per replica and step (default: %(default)s)")
        parser.add_argument("--max-length", type=arguments.positive_int, default=None, help="truncate texts to this many tokens (default: per model kind)")
        parser.add_argument("--vocabulary-size", type=arguments.positive_int, default=defaults.vocabulary_size, help="WordPiece vocabulary size (default: %(default)s)")
        parser.add_argument("--learning-rate", type=arguments.positive_float, default=None, help="Adam learning rate (default: per model kind)")
        parser.add_argument("--val-fraction", type=arguments.fraction, default=defaults.val_fraction, help="share of rows held out for validation (default: %(default)s)")
        parser.add_argument("--patience", type=arguments.non_negative_int, default=defaults.patience, help="epochs without a lower validation loss before stopping (default: %(default)s)")
        parser.add_argument("--no-class-weights", dest="class_weights", action="store_false", help="do not weight classes by inverse frequency")
        if not demo:
            pretrain = parser.add_argument_group("pre-training on unlabeled text (word vectors for the token embedding)")
            pretrain.add_argument("--pretrain-data", metavar="PATH", help="a table of unlabeled texts (its --text-column; labels ignored)")
            pretrain.add_argument("--pretrain-dataset", choices=self.task.datasets, help="the texts of a public data set's train split ($TFLLM_DATA_DIR)")
            pretrain.add_argument("--pretrain-epochs", type=arguments.positive_int, default=defaults.pretrain_epochs, help="skip-gram passes over the texts (default: %(default)s)")
            arguments.add_finetuning_arguments(
                parser, defaults, "fine-tuning a pre-trained backbone instead of --model",
                "a backbone directory (apps/language_model.py pretrain writes one), its run directory, or a "
                "keras-hub preset such as bert_tiny_en_uncased (downloaded)",
            )
        arguments.add_seed_argument(parser)
        arguments.add_export_argument(parser, self.default_export_dir())
        arguments.add_run_dir_argument(parser, self.default_run_dir())
        arguments.add_training_arguments(parser)

    def kind_commands(self):
        from tfllm.cli import compression

        return compression.commands(self)

    def add_evaluate_options(self, parser):
        arguments.add_data_arguments(parser, required=True)
        parser.add_argument("--batch-size", type=arguments.positive_int, default=256, help="texts per call (default: %(default)s)")

    def add_predict_options(self, parser):
        arguments.add_data_arguments(parser, label_column=None)
        parser.add_argument("--batch-size", type=arguments.positive_int, default=256, help="texts per call (default: %(default)s)")

    def config_from_args(self, args, demo):
        """The `ClassificationConfig` the parsed `train` / `demo` options describe."""
        from tfllm.tasks.classification import MODEL_KINDS

        if args.model not in MODEL_KINDS:
            raise cli.UsageError(f"unknown model {args.model!r}; expected one of {', '.join(MODEL_KINDS)}")
        settings = {
            name: getattr(args, name)
            for name in ("model", "epochs", "batch_size", "max_length", "vocabulary_size", "learning_rate",
                         "val_fraction", "patience", "class_weights", "seed", "export_dir", "run_dir")
        }
        if not demo:
            if args.data and args.dataset:
                raise cli.UsageError("give either --data or --dataset, not both")
            if not args.data and not args.dataset:
                raise cli.UsageError("train needs --data PATH or --dataset NAME (run without a command for the demo)")
            if args.pretrain_data and args.pretrain_dataset:
                raise cli.UsageError("give either --pretrain-data or --pretrain-dataset, not both")
            if args.backbone and (args.pretrain_data or args.pretrain_dataset):
                raise cli.UsageError("give either --backbone or --pretrain-data/--pretrain-dataset, not both")
            settings.update({
                name: getattr(args, name)
                for name in ("data", "dataset", "data_dir", "encoding", "text_column", "label_column",
                             "pretrain_data", "pretrain_dataset", "pretrain_epochs", "backbone",
                             "backbone_lr_factor", "freeze_epochs", "warmup_fraction")
            })
        return self.task.config(**settings)

    def show_demo(self, export, result):
        from tfllm.tasks.classifier_export import predict_outputs

        texts = list(self.task.demo_texts)
        probabilities, label_ids = predict_outputs(export, texts)
        for text, row, label_id in zip(texts, probabilities, label_ids):
            log(f"  {result['labels'][label_id]:>10s} {row[label_id]:.2f}  {text}")

    def evaluate_command(self, args):
        from tfllm import data

        loaded = self.task.load_export(args.model_dir)  # A wrong directory is named before a wrong table.
        frame = data.load_table(args.data, args.text_column, args.label_column, encoding=args.encoding)
        report = self.task.evaluate(loaded, frame, source=args.data, batch_size=args.batch_size)
        cli.print_json({"command": "evaluate", **report})
        return 0

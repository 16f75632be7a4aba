"""The command line of an extractive question-answering app (`tfllm.tasks.question_answering`)."""

import dataclasses
import os

from tfllm import cli
from tfllm.cli import arguments
from tfllm.cli.app import App, log

# Options of `train` / `demo` that are `QuestionAnsweringConfig` fields of the same name.
_SIZES = ("vocabulary_size", "num_layers", "num_heads", "hidden_dim", "intermediate_dim", "max_seq_length",
          "doc_stride", "max_query_length", "max_answer_length", "epochs", "batch_size", "patience")
_RATES = ("learning_rate", "warmup_fraction", "backbone_lr_factor", "dropout")


def _default_help(defaults, name):
    """`(default: X)`, or the recipe of each model kind where the config leaves the setting to it."""
    from tfllm.tasks.question_answering import RECIPES

    if getattr(defaults, name) is not None:
        return "(default: %(default)s)"
    return "(default: " + ", ".join(f"{recipe[name]} for the {kind}" for kind, recipe in RECIPES.items()) + ")"


@dataclasses.dataclass
class QuestionAnsweringApp(App):
    """`App` over a `QuestionAnsweringTask`: SQuAD files in, answers with character offsets out."""

    def add_train_options(self, parser, demo):
        defaults = self.task.demo_config if demo else self.task.config
        if not demo:
            parser.add_argument("--data", required=True, metavar="PATH", help="a SQuAD v1.1 JSON file to train on")
            parser.add_argument("--validation-data", metavar="PATH",
                                help="a SQuAD file for early stopping and the final scores (default: "
                                     "--val-fraction of the articles of --data)")
            parser.add_argument("--encoding", default="utf-8", metavar="NAME", help="(default: %(default)s)")
            parser.add_argument("--backbone", metavar="DIR_OR_PRESET",
                                help="a pre-trained encoder: a backbone directory, a run directory of "
                                     "`apps/language_model.py pretrain --objective mlm`, or a keras-hub preset "
                                     "(default: the same encoder from scratch)")
        from tfllm.tasks.question_answering import MODEL_KINDS

        model = parser.add_argument_group("model and windows")
        model.add_argument("--model", default=defaults.model, metavar="KIND",
                           help=f"one of {', '.join(MODEL_KINDS)}: an encoder with a span head (the model "
                                "--backbone fine-tunes), or a BiLSTM reader with question-matching features "
                                "(default: the transformer with --backbone, else the reader)")
        for name in _SIZES:
            flag = "--" + name.replace("_", "-")
            model.add_argument(flag, type=arguments.positive_int, default=getattr(defaults, name),
                               help=_default_help(defaults, name))
        for name in _RATES:
            kind = arguments.positive_float if name != "dropout" else float
            model.add_argument("--" + name.replace("_", "-"), type=kind, default=getattr(defaults, name),
                               help=_default_help(defaults, name))
        parser.add_argument("--val-fraction", type=arguments.fraction, default=defaults.val_fraction,
                            help="share of the articles held out when there is no --validation-data "
                                 "(default: %(default)s)")
        parser.add_argument("--no-export", dest="export", action="store_false", help="train and score only")
        arguments.add_seed_argument(parser, defaults.seed)
        arguments.add_export_argument(parser, self.default_export_dir())
        arguments.add_run_dir_argument(parser, self.default_run_dir())
        arguments.add_training_arguments(parser)

    def add_evaluate_options(self, parser):
        parser.add_argument("--data", required=True, metavar="PATH", help="a SQuAD v1.1 JSON file with answers")
        parser.add_argument("--encoding", default="utf-8", metavar="NAME", help="(default: %(default)s)")
        parser.add_argument("--batch-size", type=arguments.positive_int, default=64,
                            help="questions per call (default: %(default)s)")
        parser.add_argument("--no-baseline", dest="baseline", action="store_false",
                            help="skip the sliding-window baseline")

    def add_predict_options(self, parser):
        parser.add_argument("--context", metavar="TEXT", help="the paragraph every TEXT question is asked about")
        parser.add_argument("--data", metavar="PATH", help="a SQuAD JSON file instead (answers not needed)")
        parser.add_argument("--encoding", default="utf-8", metavar="NAME", help="(default: %(default)s)")
        parser.add_argument("--batch-size", type=arguments.positive_int, default=64,
                            help="questions per call (default: %(default)s)")

    def config_from_args(self, args, demo):
        if args.max_query_length + 3 >= args.max_seq_length:
            raise cli.UsageError(f"--max-query-length {args.max_query_length} leaves no room for the context in "
                                 f"--max-seq-length {args.max_seq_length}")
        if args.doc_stride > args.max_seq_length - args.max_query_length - 3:
            raise cli.UsageError(f"--doc-stride {args.doc_stride} is longer than a window's context "
                                 f"({args.max_seq_length - args.max_query_length - 3} tokens)")
        if args.dropout is not None and not 0.0 <= args.dropout < 1.0:
            raise cli.UsageError(f"--dropout must be in [0, 1), got {args.dropout}")
        settings = {name: getattr(args, name) for name in (*_SIZES, *_RATES)}
        settings.update({name: getattr(args, name) for name in ("model", "val_fraction", "seed", "export_dir",
                                                                "run_dir", "export")})
        if not demo:
            settings.update({name: getattr(args, name) for name in ("data", "validation_data", "encoding",
                                                                    "backbone")})
        base = self.task.demo_config if demo else self.task.config
        config = self.task.make_config(base, **settings)
        try:
            config.resolved()  # an unknown model kind, or the reader given a backbone
        except ValueError as error:
            raise cli.UsageError(str(error)) from None
        return config

    def train_command(self, args, demo):
        from tfllm.tasks.qa_export import answer_questions

        result, export = self.train_task(args, demo)
        if demo:
            questions = [question for question, _ in self.task.demo_questions]
            contexts = [context for _, context in self.task.demo_questions]
            for question, record in zip(questions, answer_questions(export, questions, contexts)):
                log(f"  {record['score']:.2f}  {question} -> {record['answer']!r}")
        return self.report_training(result, os.path.join(result["run_dir"], "curves.png"))

    def evaluate_command(self, args):
        from tfllm.data.squad import read_squad

        loaded = self.task.load_export(args.model_dir)  # A wrong directory is named before a wrong file.
        questions = read_squad(args.data, encoding=args.encoding)
        report = self.task.evaluate(loaded, questions, source=args.data, batch_size=args.batch_size,
                                    baseline=args.baseline)
        cli.print_json({"command": "evaluate", **report})
        return 0

    def predict_command(self, args):
        from tfllm.data.squad import read_squad

        if args.data and (args.texts or args.context):
            raise cli.UsageError("give --data, or questions with --context, not both")
        if args.data:
            questions = read_squad(args.data, require_answers=False, encoding=args.encoding)
            ids = [q.id for q in questions]
            texts, contexts = [q.question for q in questions], [q.context for q in questions]
        else:
            if not args.texts or args.context is None:
                raise cli.UsageError("predict needs QUESTION arguments and --context TEXT, or --data PATH")
            if not args.context.strip():
                raise cli.UsageError("--context is empty")
            for index, question in enumerate(args.texts, start=1):
                if not question.strip():
                    raise cli.UsageError(f"question {index} is empty")
            ids, texts, contexts = None, list(args.texts), [args.context] * len(args.texts)
        records = self.task.predict(args.model_dir, texts, contexts, args.batch_size)
        for index, record in enumerate(records):
            cli.print_json({"id": ids[index], **record} if ids else record)
        return 0

    def export_command(self, args):
        path = self.task.export_run(args.run_dir, args.export_dir)
        cli.print_json({"command": "export", "run_dir": args.run_dir, "export_path": path})
        return 0

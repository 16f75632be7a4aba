"""Command line shared by the text-to-text apps (summarization, dialogue).

An app is a `TextToTextApp`: its name, data columns, public data set, demo
settings and metrics. `TextToTextApp.main(argv)` gives it the subcommands

    demo       train on the built-in sample, evaluate, export, predict (default)
    train      train on a table (--data) or a public data set (--dataset), export
    evaluate   generate for a table with an export and score the outputs
    predict    generate for texts (arguments or --data) with an export
    export     export a trained run again, e.g. with beam search

plus any `extra_commands` (dialogue adds `chat`). Bad input ends with one
line on stderr and exit code 2; results are one JSON line on stdout.
"""

import dataclasses
import os
import sys
import time

from tfllm import cli
from tfllm.generation.text_to_text import MODEL_KINDS, TextToTextConfig

DECODING = ("greedy", "beam", "top_k", "top_p", "random")


@dataclasses.dataclass
class TextToTextApp:
    """Describes one text-to-text app.

    Attributes:
        name: app and default export name ("summarization").
        description: one line for --help.
        source_column, target_column: default table columns.
        dataset: public data set name for `--dataset` (tfllm.data.load_dataset).
        sample: built-in sample name (tfllm.data.load_sample).
        config: default `TextToTextConfig` for `train`.
        demo_config: `TextToTextConfig` for the demo (small and quick).
        demo_texts: inputs the demo generates for at the end.
        metrics: `metrics(sources, references, predictions, perplexity)`
            -> dict; `perplexity()` computes teacher-forced perplexity.
        read_file: optional `read_file(path) -> frame (source, target
            columns)` for formats `load_table` does not read, or None.
        extra_commands: {name: (help, add_arguments(parser), run(app, args))}.
    """

    name: str
    description: str
    source_column: str
    target_column: str
    dataset: str
    sample: str
    config: TextToTextConfig
    demo_config: TextToTextConfig
    demo_texts: tuple
    metrics: object
    read_file: object = None
    extra_commands: dict = dataclasses.field(default_factory=dict)

    # Command line.

    def build_parser(self):
        parser = cli.ArgumentParser(prog=self.name, description=self.description)
        commands = parser.add_subparsers(dest="command", metavar="COMMAND")
        demo = commands.add_parser("demo", help="train on the built-in sample, export, predict (the default)")
        self._add_train_options(demo, self.demo_config, demo=True)
        train = commands.add_parser("train", help="train on a table or a public data set and export")
        self._add_train_options(train, self.config, demo=False)

        evaluate = commands.add_parser("evaluate", help="generate for a table with an export and score it")
        cli.add_model_dir_argument(evaluate)
        self._add_data_source(evaluate)
        evaluate.add_argument("--limit", type=cli.positive_int, help="score only the first N rows")
        evaluate.add_argument("--batch-size", type=cli.positive_int, default=64, help="texts per call (default: %(default)s)")

        predict = commands.add_parser("predict", help="generate for texts with an export")
        cli.add_model_dir_argument(predict)
        predict.add_argument("texts", nargs="*", metavar="TEXT", help="input texts")
        cli.add_data_arguments(predict, text_column=self.source_column, label_column=None)
        predict.add_argument("--batch-size", type=cli.positive_int, default=64, help="texts per call (default: %(default)s)")

        export = commands.add_parser("export", help="export a trained run (e.g. with beam search)")
        cli.add_run_dir_argument(export, os.path.join("runs", self.name))
        cli.add_export_argument(export, os.path.join("saved_models", self.name))
        self._add_decoding_options(export)

        for name, (help_text, add_arguments, _) in self.extra_commands.items():
            add_arguments(commands.add_parser(name, help=help_text))
        return parser

    def _add_data_source(self, parser):
        cli.add_data_arguments(
            parser, text_column=self.source_column, label_column=None, target_column=self.target_column
        )
        parser.add_argument("--dataset", choices=(self.dataset,), help="the public data set ($TFLLM_DATA_DIR)")
        parser.add_argument("--split", default="validation", help="split of --dataset (default: %(default)s)")
        parser.add_argument("--data-dir", metavar="DIR", help="directory holding the --dataset folder (default: $TFLLM_DATA_DIR)")

    def _add_decoding_options(self, parser):
        group = parser.add_argument_group("decoding (inside the export)")
        group.add_argument("--decoding", choices=DECODING, default="greedy", help="(default: %(default)s)")
        group.add_argument("--num-beams", type=cli.positive_int, default=4, help="beam width for --decoding beam (default: %(default)s)")
        group.add_argument("--top-k", type=cli.positive_int, default=10, help="k for --decoding top_k (default: %(default)s)")
        group.add_argument("--top-p", type=cli.fraction, default=0.9, help="p for --decoding top_p (default: %(default)s)")
        group.add_argument("--temperature", type=cli.positive_float, default=1.0, help="(default: %(default)s)")
        group.add_argument("--max-output-length", type=cli.positive_int, help="most generated tokens (default: the model's)")

    def _add_train_options(self, parser, defaults, demo):
        if not demo:
            self._add_data_source(parser)
            parser.add_argument("--val-fraction", type=cli.fraction, default=0.1, help="validation share of --data rows (default: %(default)s)")
        parser.add_argument("--model", choices=MODEL_KINDS, default=defaults.model, help="(default: %(default)s)")
        for flag, kind, help_text in (
            ("epochs", cli.positive_int, "most epochs; early stopping may end sooner"),
            ("batch-size", cli.positive_int, "examples per replica and step"),
            ("vocabulary-size", cli.positive_int, "WordPiece vocabulary size"),
            ("max-source-length", cli.positive_int, "source tokens kept"),
            ("max-target-length", cli.positive_int, "target tokens (start/end included)"),
            ("hidden-dim", cli.positive_int, "model width"),
            ("num-layers", cli.positive_int, "encoder and decoder blocks (Transformer)"),
            ("num-heads", cli.positive_int, "attention heads (Transformer)"),
            ("intermediate-dim", cli.positive_int, "feed-forward width (Transformer)"),
            ("learning-rate", cli.positive_float, "Adam learning rate"),
            ("patience", cli.non_negative_int, "epochs without a lower validation loss before stopping"),
            ("reduce-lr-patience", cli.non_negative_int,
             "epochs without a lower validation loss before the learning rate is divided by 5 "
             "(only when below --patience; 0: never)"),
        ):
            attribute = flag.replace("-", "_")
            parser.add_argument(
                f"--{flag}", type=kind, default=getattr(defaults, attribute),
                help=f"{help_text} (default: %(default)s)",
            )
        parser.add_argument("--dropout", type=float, default=defaults.dropout, help="(default: %(default)s)")
        parser.add_argument("--limit", type=cli.positive_int, help="train on the first N rows only")
        parser.add_argument("--eval-limit", type=cli.positive_int,
                            help="score at most N validation rows after training (default: all)")
        parser.add_argument("--no-export", dest="export", action="store_false", help="train and score only")
        cli.add_seed_argument(parser, defaults.seed)
        cli.add_export_argument(parser, os.path.join("saved_models", self.name))
        cli.add_run_dir_argument(parser, os.path.join("runs", self.name))
        self._add_decoding_options(parser)
        from tfllm.training.arguments import add_training_arguments

        add_training_arguments(parser)

    def main(self, argv=None):
        """Runs the command line; returns the exit code (2 for bad input)."""
        argv = list(sys.argv[1:] if argv is None else argv)
        return cli.run(self._dispatch, argv, prog=self.name)

    def _dispatch(self, argv):
        if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
            argv = ["demo", *argv]
        args = self.build_parser().parse_args(argv)
        if args.command in ("demo", "train"):
            return self.train_command(args, demo=args.command == "demo")
        if args.command == "evaluate":
            return self.evaluate_command(args)
        if args.command == "predict":
            return self.predict_command(args)
        if args.command == "export":
            return self.export_command(args)
        return self.extra_commands[args.command][2](self, args)

    # Data.

    def read_pairs(self, args):
        """`(sources, targets, description)` from --data or --dataset."""
        from tfllm import data

        if getattr(args, "data", None) and getattr(args, "dataset", None):
            raise cli.UsageError("give either --data or --dataset, not both")
        if getattr(args, "dataset", None):
            frame = data.load_dataset(args.dataset, args.split, data_dir=args.data_dir)
            return list(frame[self.source_column]), list(frame[self.target_column]), f"{args.dataset} {args.split}"
        if not getattr(args, "data", None):
            raise cli.UsageError("needs --data PATH or --dataset NAME")
        if self.read_file is not None and args.data.endswith(".txt"):
            frame = self.read_file(args.data)
            return list(frame[self.source_column]), list(frame[self.target_column]), args.data
        frame = data.load_table(
            args.data, args.text_column, label_column=None, target_column=args.target_column, encoding=args.encoding
        )
        return list(frame.text), list(frame.target), args.data

    # Commands.

    def _config(self, args):
        return TextToTextConfig(
            model=args.model, vocabulary_size=args.vocabulary_size,
            max_source_length=args.max_source_length, max_target_length=args.max_target_length,
            hidden_dim=args.hidden_dim, num_layers=args.num_layers, num_heads=args.num_heads,
            intermediate_dim=args.intermediate_dim, dropout=args.dropout, epochs=args.epochs,
            batch_size=args.batch_size, learning_rate=args.learning_rate, patience=args.patience,
            reduce_lr_patience=args.reduce_lr_patience, seed=args.seed, verbose=2 if not sys.stderr.isatty() else "auto",
        )

    def _training_data(self, args, demo):
        from tfllm import data

        if demo:
            frame = data.load_sample(self.sample)
            sources, targets = list(frame[self.source_column]), list(frame[self.target_column])
            source = f"built-in {self.sample} sample"
        elif getattr(args, "dataset", None):
            train = data.load_dataset(args.dataset, "train", data_dir=args.data_dir)
            val = data.load_dataset(args.dataset, "validation", data_dir=args.data_dir)
            return (
                _limit(list(train[self.source_column]), args.limit),
                _limit(list(train[self.target_column]), args.limit),
                list(val[self.source_column]), list(val[self.target_column]),
                f"{args.dataset} train / validation",
            )
        else:
            sources, targets, source = self.read_pairs(args)
        import pandas as pd

        frame = pd.DataFrame({"source": sources, "target": targets})
        frame = frame.iloc[: args.limit] if args.limit else frame
        val_fraction = getattr(args, "val_fraction", 0.2)
        train, val = data.train_val_split(frame, val_fraction, seed=args.seed, stratify_column=None)
        return list(train.source), list(train.target), list(val.source), list(val.target), source

    def train_command(self, args, demo):
        from tfllm.generation import text_to_text
        from tfllm.training import configure_from_args, is_chief

        config = self._config(args)
        strategy = configure_from_args(args)
        sources, targets, val_sources, val_targets, source = self._training_data(args, demo)
        _log(f"{source}: {len(sources)} train / {len(val_sources)} validation pairs")
        run_dir = cli.prepare_run_dir(args.run_dir)
        trained = text_to_text.train(
            config, sources, targets, val_sources, val_targets,
            run_dir=run_dir, strategy=strategy, log=_log,
        )
        model, tokenizer = trained.model, trained.tokenizer
        decoding = _decoding_kwargs(args, model)
        eval_sources = _limit(val_sources, args.eval_limit)
        eval_targets = _limit(val_targets, args.eval_limit)
        started = time.perf_counter()
        predictions = text_to_text.generate_texts(model, tokenizer, eval_sources, **decoding)
        generate_seconds = time.perf_counter() - started
        scores = self.metrics(
            eval_sources, eval_targets, predictions,
            lambda: text_to_text.model_perplexity(model, tokenizer, eval_sources, eval_targets),
        )
        export_path = None
        if args.export and is_chief(strategy):
            export_path = self._export(model, tokenizer, args.export_dir, decoding)
        losses = trained.history.get("val_loss") or [float("nan")]
        result = {
            "command": "demo" if demo else "train",
            "model": config.model,
            "data": source,
            "train_examples": len(sources),
            "val_examples": len(val_sources),
            "scored_examples": len(eval_sources),
            "epochs_run": len(trained.history.get("loss", [])),
            "best_val_loss": min(losses),
            **scores,
            "train_seconds": round(trained.train_seconds, 2),
            "generate_seconds": round(generate_seconds, 2),
            "decoding": decoding,
            "export_path": export_path,
            "run_dir": run_dir.path,
        }
        if demo:
            for text, output in zip(self.demo_texts, text_to_text.generate_texts(model, tokenizer, self.demo_texts, **decoding)):
                _log(f"  {_short(text)}\n    -> {output}")
            for text, reference, output in list(zip(eval_sources, eval_targets, predictions))[:3]:
                _log(f"  {_short(text)}\n    reference: {reference}\n    generated: {output}")
        _log(f"training curves: {run_dir.curves}")
        if export_path:
            _log(f"exported: {export_path}")
        cli.print_json(result)
        return 0

    def _export(self, model, tokenizer, export_dir, decoding):
        from tfllm.generation.export import export_text_generator

        return export_text_generator(
            model, tokenizer, export_dir, warmup_texts=self.demo_texts[:1], **decoding
        )

    def export_command(self, args):
        from tfllm.generation import text_to_text

        model, tokenizer, _ = text_to_text.load_run(args.run_dir)
        decoding = _decoding_kwargs(args, model)
        path = self._export(model, tokenizer, args.export_dir, decoding)
        cli.print_json({"command": "export", "run_dir": args.run_dir, "decoding": decoding, "export_path": path})
        return 0

    def load_export(self, model_dir):
        from tfllm.generation.export import LoadedTextGenerator

        return LoadedTextGenerator(model_dir)

    def evaluate_command(self, args):
        sources, targets, source = self.read_pairs(args)
        sources, targets = _limit(sources, args.limit), _limit(targets, args.limit)
        generator = self.load_export(args.model_dir)
        started = time.perf_counter()
        predictions = generator.generate(sources, args.batch_size)
        seconds = time.perf_counter() - started
        scores = self.metrics(
            sources, targets, predictions,
            lambda: generator.perplexity(sources, targets, args.batch_size),
        )
        cli.print_json({
            "command": "evaluate", "model_dir": generator.path, "data": source,
            "examples": len(sources), **scores, "seconds": round(seconds, 3),
            "examples_per_second": round(len(sources) / max(seconds, 1e-9), 2),
        })
        return 0

    def predict_command(self, args):
        texts = cli.predict_texts(args)
        generator = self.load_export(args.model_dir)
        for text, output in zip(texts, generator.generate(texts, args.batch_size)):
            cli.print_json({"text": text, "output_text": output})
        return 0


def _decoding_kwargs(args, model):
    if args.max_output_length and args.max_output_length >= model.decoder_sequence_length:
        raise cli.UsageError(
            f"--max-output-length must be below the model's target length "
            f"{model.decoder_sequence_length} (start token included); got {args.max_output_length}"
        )
    kwargs = {"strategy": args.decoding}
    if args.decoding == "beam":
        kwargs["num_beams"] = args.num_beams
    elif args.decoding == "top_k":
        kwargs["k"] = args.top_k
    elif args.decoding == "top_p":
        kwargs["p"] = args.top_p
    if args.decoding != "greedy" and args.temperature != 1.0:
        kwargs["temperature"] = args.temperature
    if args.decoding in ("top_k", "top_p", "random"):
        kwargs["seed"] = args.seed if hasattr(args, "seed") else 0
    if args.max_output_length:
        kwargs["max_length"] = args.max_output_length + 1
    return kwargs


def _limit(items, n):
    return list(items)[:n] if n else list(items)


def _short(text, width=100):
    text = " | ".join(str(text).split("\n"))
    return text if len(text) <= width else text[: width - 3] + "..."


def _log(message):
    print(message, file=sys.stderr, flush=True)

"""The command line of a text-to-text app (`tfllm.tasks.text_to_text`): summarization, dialogue."""

import argparse
import dataclasses
import time

from tfllm import cli
from tfllm.cli import arguments
from tfllm.cli.app import App, log, predict_texts

DECODING = ("greedy", "beam", "top_k", "top_p", "random")
# (flag, argparse type, help) of the `TextToTextConfig` fields `train` and `demo` take.
CONFIG_FLAGS = (
    ("epochs", arguments.positive_int, "most epochs; early stopping may end sooner"),
    ("batch-size", arguments.positive_int, "examples per replica and step"),
    ("vocabulary-size", arguments.positive_int, "WordPiece vocabulary size"),
    ("max-source-length", arguments.positive_int, "source tokens kept"),
    ("max-target-length", arguments.positive_int, "target tokens (start/end included)"),
    ("hidden-dim", arguments.positive_int, "model width"),
    ("num-layers", arguments.positive_int, "encoder and decoder blocks (Transformer)"),
    ("num-heads", arguments.positive_int, "attention heads (Transformer)"),
    ("intermediate-dim", arguments.positive_int, "feed-forward width (Transformer)"),
    ("learning-rate", arguments.positive_float, "Adam learning rate"),
    ("patience", arguments.non_negative_int, "epochs without a lower validation loss before stopping"),
    ("reduce-lr-patience", arguments.non_negative_int,
     "epochs without a lower validation loss before the learning rate is divided by 5 "
     "(only when below --patience; 0: never)"),
)


@dataclasses.dataclass
class TextToTextApp(App):
    """`App` over a `TextToTextTask`: (source, target) columns, generated text out."""

    def _add_data_source(self, parser):
        arguments.add_data_arguments(
            parser, text_column=self.task.source_column, label_column=None, target_column=self.task.target_column
        )
        parser.add_argument("--dataset", choices=(self.task.dataset,), help="the public data set ($TFLLM_DATA_DIR)")
        parser.add_argument("--split", default="validation", help="split of --dataset (default: %(default)s)")
        parser.add_argument("--data-dir", metavar="DIR", help="directory holding the --dataset folder (default: $TFLLM_DATA_DIR)")
        if self.task.context_turns is not None:
            add_context_turns_argument(parser, self.task.context_turns)
        if self.task.reversible:
            parser.add_argument("--reverse", action="store_true",
                                help="swap the two sides: translate the file's targets into its sources")

    def _add_decoding_options(self, parser):
        group = parser.add_argument_group("decoding (inside the export)")
        arguments.add_sampling_arguments(group, DECODING, self.task.decoding)
        group.add_argument("--no-repeat-ngram-size", type=arguments.non_negative_int,
                           default=self.task.no_repeat_ngram_size,
                           help="never repeat an n-gram of this size (0: off; default: %(default)s)")
        group.add_argument("--repetition-penalty", type=arguments.positive_float,
                           default=self.task.repetition_penalty,
                           help="divide (multiply if negative) the logits of tokens already generated "
                           "by this (1: off; default: %(default)s)")
        group.add_argument("--max-output-length", type=arguments.positive_int, help="most generated tokens (default: the model's)")

    def add_train_options(self, parser, demo):
        from tfllm.tasks.text_to_text import MODEL_KINDS

        defaults = self.task.demo_config if demo else self.task.config
        if not demo:
            self._add_data_source(parser)
            parser.add_argument("--val-fraction", type=arguments.fraction, default=0.1, help="validation share of --data rows (default: %(default)s)")
        parser.add_argument("--model", choices=MODEL_KINDS, default=defaults.model, help="(default: %(default)s)")
        for flag, kind, help_text in CONFIG_FLAGS:
            default = getattr(defaults, flag.replace("-", "_"))
            parser.add_argument(f"--{flag}", type=kind, default=default, help=f"{help_text} (default: %(default)s)")
        parser.add_argument("--dropout", type=float, default=defaults.dropout, help="(default: %(default)s)")
        parser.add_argument("--cased", action=argparse.BooleanOptionalAction, default=defaults.cased,
                            help="keep case in the vocabulary, so outputs are cased (default: %(default)s)")
        parser.add_argument("--limit", type=arguments.positive_int, help="train on the first N rows only")
        parser.add_argument("--eval-limit", type=arguments.positive_int,
                            help="score at most N validation rows after training (default: all)")
        parser.add_argument("--no-export", dest="export", action="store_false", help="train and score only")
        arguments.add_seed_argument(parser, defaults.seed)
        arguments.add_export_argument(parser, self.default_export_dir())
        arguments.add_run_dir_argument(parser, self.default_run_dir())
        self._add_decoding_options(parser)
        arguments.add_training_arguments(parser)

    def add_evaluate_options(self, parser):
        self._add_data_source(parser)
        parser.add_argument("--limit", type=arguments.positive_int, help="score only the first N rows")
        parser.add_argument("--batch-size", type=arguments.positive_int, default=64, help="texts per call (default: %(default)s)")

    def add_predict_options(self, parser):
        arguments.add_data_arguments(parser, text_column=self.task.source_column, label_column=None)
        parser.add_argument("--batch-size", type=arguments.positive_int, default=64, help="texts per call (default: %(default)s)")

    def add_export_options(self, parser):
        self._add_decoding_options(parser)

    def load_export(self, model_dir):
        return self.task.load_export(model_dir)

    def kind_commands(self):
        return {"attention": ("draw a trained run's cross-attention on one text as a PNG",
                              self._add_attention_arguments, attention_command)}

    def _add_attention_arguments(self, parser):
        parser.add_argument(
            "--model-dir", "--run-dir", dest="run_dir", default=self.default_run_dir(), metavar="DIR",
            help="the training run directory holding model.keras and vocabulary.txt (an export "
            "has no attention outputs; default: %(default)s)",
        )
        parser.add_argument("text", metavar="TEXT", help="the source text")
        parser.add_argument("--output", default="attention.png", metavar="PNG",
                            help="the picture to write (default: %(default)s)")
        parser.add_argument("--per-head", action="store_true",
                            help="one panel per layer and head instead of one per layer (heads averaged)")
        parser.add_argument("--max-output-length", type=arguments.positive_int,
                            help="most generated tokens (default: the model's)")

    # Commands.

    def _data_source(self, args):
        """`read_pairs`' arguments from --data / --dataset."""
        if getattr(args, "data", None) and getattr(args, "dataset", None):
            raise cli.UsageError("give either --data or --dataset, not both")
        if not getattr(args, "data", None) and not getattr(args, "dataset", None):
            raise cli.UsageError("needs --data PATH or --dataset NAME")
        return {
            "data": args.data, "dataset": args.dataset, "split": args.split, "data_dir": args.data_dir,
            "text_column": args.text_column, "target_column": args.target_column, "encoding": args.encoding,
            "context_turns": getattr(args, "context_turns", None), "reverse": getattr(args, "reverse", False),
        }

    def train_command(self, args, demo):
        from tfllm.tasks.text_generator import generate_texts
        from tfllm.tasks.text_to_text import TextToTextConfig
        from tfllm.training import configure_from_args

        config = TextToTextConfig(
            model=args.model, dropout=args.dropout, seed=args.seed, cased=args.cased,
            **{flag.replace("-", "_"): getattr(args, flag.replace("-", "_")) for flag, _, _ in CONFIG_FLAGS},
        )
        decoding = decoding_options(args, config.max_target_length)
        strategy = configure_from_args(args)
        source = {} if demo else self._data_source(args)
        data = self.task.training_data(
            demo=demo, limit=args.limit, val_fraction=getattr(args, "val_fraction", 0.1), seed=args.seed, **source
        )
        if getattr(args, "context_turns", None):
            log(f"context: the last {args.context_turns} turn(s)")
        result = self.task.train(
            config, data, decoding=decoding, run_dir=args.run_dir, strategy=strategy, eval_limit=args.eval_limit,
            export_dir=args.export_dir if args.export else None, log=log,
        )
        trained, examples = result.pop("trained"), result.pop("examples")
        if demo:
            result["command"] = "demo"
            texts = list(self.task.demo_texts)
            for text, output in zip(texts, generate_texts(trained.model, trained.tokenizer, texts, **decoding)):
                log(f"  {_short(text)}\n    -> {output}")
            for text, reference, output in examples:
                log(f"  {_short(text)}\n    reference: {reference}\n    generated: {output}")
        return self.report_training(result, trained.run_dir.curves)

    def export_command(self, args):
        from tfllm.tasks.text_to_text import load_run

        model, tokenizer, _ = load_run(args.run_dir)
        decoding = decoding_options(args, model.decoder_sequence_length)
        path = self.task.export(model, tokenizer, args.export_dir, decoding)
        cli.print_json({"command": "export", "run_dir": args.run_dir, "decoding": decoding, "export_path": path})
        return 0

    def evaluate_command(self, args):
        sources, targets, source = self.task.read_pairs(**self._data_source(args))
        sources, targets = _limit(sources, args.limit), _limit(targets, args.limit)
        generator = self.load_export(args.model_dir)
        started = time.perf_counter()
        predictions = generator.generate(sources, args.batch_size)
        seconds = time.perf_counter() - started
        scores = self.task.metrics(
            sources, targets, predictions, lambda: generator.perplexity(sources, targets, args.batch_size),
        )
        cli.print_json({
            "command": "evaluate", "model_dir": generator.path, "data": source,
            "examples": len(sources), **scores, "seconds": round(seconds, 3),
            "examples_per_second": round(len(sources) / max(seconds, 1e-9), 2),
        })
        return 0

    def predict_command(self, args):
        texts = predict_texts(args)
        generator = self.load_export(args.model_dir)
        for text, output in zip(texts, generator.generate(texts, args.batch_size)):
            cli.print_json({"text": text, "output_text": output})
        return 0


def attention_command(app, args):
    """Greedy-decodes TEXT with the run's model and writes its cross-attention to --output."""
    import os

    from tfllm.tasks.cross_attention import cross_attention, plot_cross_attention
    from tfllm.tasks.text_to_text import load_run

    if not args.text.strip():
        raise cli.UsageError("TEXT is empty")
    if not args.output.lower().endswith(".png"):
        raise cli.UsageError(f"--output must name a .png file; got {args.output!r}")
    run_dir = os.fspath(args.run_dir)
    versions = [name for name in (os.listdir(run_dir) if os.path.isdir(run_dir) else []) if name.isdigit()]
    if os.path.isfile(os.path.join(run_dir, "saved_model.pb")) or any(
        os.path.isfile(os.path.join(run_dir, name, "saved_model.pb")) for name in versions
    ):
        raise cli.UsageError(
            f"{run_dir} is an export, which has no attention outputs; pass the run directory "
            f"it was trained in (--model-dir {app.default_run_dir()})"
        )
    model, tokenizer, vocabulary = load_run(run_dir)
    if not hasattr(model, "cross_attention_scores"):
        raise cli.UsageError(f"{run_dir}: a {type(model).__name__} has no cross-attention to draw")
    if args.max_output_length and args.max_output_length >= model.decoder_sequence_length:
        raise cli.UsageError(
            f"--max-output-length must be below the model's target length {model.decoder_sequence_length}"
        )
    max_length = args.max_output_length + 1 if args.max_output_length else None
    attention = cross_attention(model, tokenizer, vocabulary, args.text, max_length=max_length)
    path = plot_cross_attention(attention, args.output, per_head=args.per_head)
    layers, heads, _, _ = attention.weights.shape
    cli.print_json({
        "command": "attention", "run_dir": run_dir, "text": attention.text,
        "output_text": attention.output_text, "source_tokens": attention.source_tokens,
        "output_tokens": attention.output_tokens, "layers": layers, "heads": heads, "png": path,
    })
    return 0


def add_context_turns_argument(parser, default):
    parser.add_argument(
        "--context-turns", "--turns", type=arguments.positive_int, default=default,
        help="previous utterances joined as context, as in training (default: %(default)s)",
    )


def decoding_options(args, target_length):
    """`generate` keyword arguments from the --decoding options, checked against the model's target length."""
    if args.max_output_length and args.max_output_length >= target_length:
        raise cli.UsageError(
            f"--max-output-length must be below the model's target length "
            f"{target_length} (start token included); got {args.max_output_length}"
        )
    kwargs = arguments.sampling_options(args)
    if args.no_repeat_ngram_size:
        kwargs["no_repeat_ngram_size"] = args.no_repeat_ngram_size
    if args.repetition_penalty != 1.0:
        kwargs["repetition_penalty"] = args.repetition_penalty
    if args.max_output_length:
        kwargs["max_length"] = args.max_output_length + 1
    return kwargs


def _limit(items, n):
    return list(items)[:n] if n else list(items)


def _short(text, width=100):
    text = " | ".join(str(text).split("\n"))
    return text if len(text) <= width else text[: width - 3] + "..."

"""The command line of a pre-training app (`tfllm.tasks.language_modeling`).

    demo       train a character-level causal model on the built-in sample, print generated text
    pretrain   masked or causal language modelling on a corpus; saves the backbone
    evaluate   perplexity of a causal backbone on a text file
    generate   continue prompts with a causal backbone
    export     a causal backbone as a text-in/text-out SavedModel
    predict    run such an export on prompts
"""

import dataclasses

from tfllm import cli
from tfllm.cli import arguments
from tfllm.cli.app import App, log, predict_texts

DECODING = ("greedy", "top_k", "top_p", "random")
# (flag, argparse type, help) of the `LanguageModelConfig` fields `pretrain` and `demo` take.
CONFIG_FLAGS = (
    ("epochs", arguments.positive_int, "most epochs; early stopping may end sooner"),
    ("steps-per-epoch", arguments.positive_int, "training steps per epoch (default: one pass over the corpus)"),
    ("batch-size", arguments.positive_int, "windows per replica and step"),
    ("sequence-length", arguments.positive_int, "tokens per window (the model's context)"),
    ("vocabulary-size", arguments.positive_int, "WordPiece vocabulary size"),
    ("hidden-dim", arguments.positive_int, "model width"),
    ("num-layers", arguments.positive_int, "Transformer blocks"),
    ("num-heads", arguments.positive_int, "attention heads"),
    ("intermediate-dim", arguments.positive_int, "feed-forward width"),
    ("learning-rate", arguments.positive_float, "Adam learning rate"),
    ("val-fraction", arguments.fraction, "share of the token stream (its end) that validates"),
    ("mask-rate", arguments.fraction, "share of tokens masked (mlm)"),
    ("patience", arguments.non_negative_int, "epochs without a lower validation loss before stopping"),
)


def _add_backbone_argument(parser, default):
    parser.add_argument("--backbone-dir", default=default, metavar="DIR",
                        help="a causal backbone saved by pretrain (its backbone_dir; default: %(default)s)")


def _add_decoding_options(parser):
    group = parser.add_argument_group("decoding")
    arguments.add_sampling_arguments(group, DECODING, "greedy")
    group.add_argument("--max-length", type=arguments.positive_int,
                       help="prompt plus generated tokens (default: the backbone's sequence length)")
    arguments.add_seed_argument(group)


def decoding_options(args):
    """`CausalGenerator` keyword arguments from the decoding options."""
    options = arguments.sampling_options(args)
    if args.max_length:
        if args.max_length < 2:
            raise cli.UsageError(f"--max-length must be at least 2; got {args.max_length}")
        options["max_length"] = args.max_length
    return options


def _task_call(function, *args, **kwargs):
    # The task raises ValueError for options the backbone cannot take (too long, not causal).
    try:
        return function(*args, **kwargs)
    except ValueError as error:
        if isinstance(error, cli._user_errors()):
            raise
        raise cli.UsageError(cli.one_line(error)) from None


@dataclasses.dataclass
class LanguageModelApp(App):
    """`App` over a `LanguageModelTask`: a corpus in, a backbone out; causal backbones generate and export."""

    def __post_init__(self):
        self.extra_commands = {
            "pretrain": ("pre-train a backbone on a corpus (masked or causal language modelling)",
                         lambda parser: self.add_train_options(parser, demo=False),
                         lambda app, args: app.train_command(args, demo=False)),
            "generate": ("continue prompts with a causal backbone", self.add_generate_options,
                         lambda app, args: app.generate_command(args)),
            **self.extra_commands,
        }

    def build_parser(self):
        parser = cli.ArgumentParser(prog=self.name, description=self.description)
        parser.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
        commands = parser.add_subparsers(dest="command", metavar="COMMAND")
        self.add_train_options(commands.add_parser("demo", help="train a small character model on the built-in "
                                                   "sample and print generated text (the default)"), demo=True)
        name, (help_text, add_arguments, _) = "pretrain", self.extra_commands["pretrain"]
        add_arguments(commands.add_parser(name, help=help_text))
        self.add_evaluate_options(commands.add_parser("evaluate", help="perplexity of a causal backbone on a text file"))
        name, (help_text, add_arguments, _) = "generate", self.extra_commands["generate"]
        add_arguments(commands.add_parser(name, help=help_text))
        export = commands.add_parser("export", help="export a causal backbone as a text-in/text-out SavedModel")
        self.add_export_options(export)
        predict = commands.add_parser("predict", help="run an exported model on prompts")
        arguments.add_model_dir_argument(predict)
        predict.add_argument("texts", nargs="*", metavar="TEXT", help="prompts")
        self.add_predict_options(predict)
        for name, (help_text, add_arguments, _) in self.extra_commands.items():
            if name not in ("pretrain", "generate"):
                add_arguments(commands.add_parser(name, help=help_text))
        return parser

    def default_backbone_dir(self):
        return f"{self.default_run_dir()}/backbone"

    def add_train_options(self, parser, demo):
        from tfllm.tasks.language_modeling import OBJECTIVES, TOKENIZERS

        defaults = self.task.demo_config if demo else self.task.config
        if not demo:
            parser.add_argument("--data", required=True, metavar="PATH",
                                help="a text file, a folder of text files, or a table (with --text-column)")
            parser.add_argument("--text-column", metavar="C", help="the text column of a table corpus")
            parser.add_argument("--encoding", default="utf-8", metavar="NAME", help="(default: %(default)s)")
        parser.add_argument("--objective", choices=OBJECTIVES, default=defaults.objective, help="(default: %(default)s)")
        parser.add_argument("--tokenizer", choices=TOKENIZERS, default=defaults.tokenizer, help="(default: %(default)s)")
        for flag, kind, help_text in CONFIG_FLAGS:
            default = getattr(defaults, flag.replace("-", "_"))
            parser.add_argument(f"--{flag}", type=kind, default=default, help=f"{help_text} (default: %(default)s)")
        parser.add_argument("--dropout", type=float, default=defaults.dropout, help="(default: %(default)s)")
        arguments.add_seed_argument(parser, defaults.seed)
        arguments.add_run_dir_argument(parser, self.default_run_dir())
        arguments.add_training_arguments(parser)

    def add_evaluate_options(self, parser):
        _add_backbone_argument(parser, self.default_backbone_dir())
        parser.add_argument("--data", required=True, metavar="PATH", help="a text file, folder or table (--text-column)")
        parser.add_argument("--text-column", metavar="C", help="the text column of a table")
        parser.add_argument("--encoding", default="utf-8", metavar="NAME", help="(default: %(default)s)")
        parser.add_argument("--batch-size", type=arguments.positive_int, default=32, help="windows per call (default: %(default)s)")

    def add_generate_options(self, parser):
        _add_backbone_argument(parser, self.default_backbone_dir())
        parser.add_argument("prompts", nargs="+", metavar="PROMPT", help="texts to continue")
        _add_decoding_options(parser)

    def add_export_options(self, parser):
        _add_backbone_argument(parser, self.default_backbone_dir())
        arguments.add_export_argument(parser, self.default_export_dir())
        _add_decoding_options(parser)

    def add_predict_options(self, parser):
        arguments.add_data_arguments(parser, text_column="text", label_column=None)
        parser.add_argument("--batch-size", type=arguments.positive_int, default=64, help="prompts per call (default: %(default)s)")

    # Commands.

    def train_command(self, args, demo):
        from tfllm.tasks.language_modeling import LanguageModelConfig
        from tfllm.training import configure_from_args

        fields = {flag.replace("-", "_") for flag, _, _ in CONFIG_FLAGS}
        config = LanguageModelConfig(
            objective=args.objective, tokenizer=args.tokenizer, dropout=args.dropout, seed=args.seed,
            **{field: getattr(args, field) for field in fields},
        )
        documents, description = self.task.documents(
            demo=demo, data=getattr(args, "data", None), text_column=getattr(args, "text_column", None),
            encoding=getattr(args, "encoding", "utf-8"),
        )
        strategy = configure_from_args(args)
        result = self.task.pretrain(config, documents, description, run_dir=args.run_dir, strategy=strategy, log=log)
        model, tokenizer = result.pop("trained")
        result["command"] = "demo" if demo else "pretrain"
        if demo:
            from tfllm.tasks.causal_generator import CausalGenerator

            generator = CausalGenerator(model, tokenizer, max_length=config.sequence_length, strategy="top_k", k=5,
                                        seed=args.seed)
            for prompt, text in zip(self.task.demo_prompts, generator(self.task.demo_prompts)):
                log(f"--- {prompt!r} ->\n{prompt}{text}")
        log(f"training curves: {args.run_dir}/curves.png, TensorBoard logs: {args.run_dir}/logs")
        cli.print_json(result)
        return 0

    def evaluate_command(self, args):
        documents, description = self.task.documents(data=args.data, text_column=args.text_column,
                                                     encoding=args.encoding)
        scores = _task_call(self.task.evaluate, args.backbone_dir, documents, batch_size=args.batch_size)
        cli.print_json({"command": "evaluate", "backbone_dir": args.backbone_dir, "data": description, **scores})
        return 0

    def generate_command(self, args):
        for index, prompt in enumerate(args.prompts, start=1):
            if "\x00" in prompt:
                raise cli.UsageError(f"prompt {index} holds a NUL character")
        generator = _task_call(self.task.generator, args.backbone_dir, decoding_options(args))
        for prompt, text in zip(args.prompts, generator(args.prompts)):
            cli.print_json({"prompt": prompt, "output_text": text})
        return 0

    def export_command(self, args):
        decoding = decoding_options(args)
        path = _task_call(self.task.export, args.backbone_dir, args.export_dir, decoding)
        cli.print_json({"command": "export", "backbone_dir": args.backbone_dir, "decoding": decoding,
                        "export_path": path})
        return 0

    def predict_command(self, args):
        from tfllm.tasks.text_generator import LoadedTextGenerator

        texts = predict_texts(args)
        generator = LoadedTextGenerator(args.model_dir)
        for text, output in zip(texts, generator.generate(texts, args.batch_size)):
            cli.print_json({"text": text, "output_text": output})
        return 0

"""The command line every app is built from: one parser, five subcommands, one error policy.

An app is a declaration (`apps/sentiment.py`): a task from `tfllm.tasks` and
an `App` subclass for its kind (`ClassificationApp`, `TextToTextApp`). `App`
gives it

    demo       train on the built-in sample, evaluate, export, predict (default)
    train      train on a table (--data) or a public data set (--dataset), export
    evaluate   score an export on a table
    predict    run an export on texts (arguments or --data)
    export     export a trained run again as a new version

plus any `extra_commands` (dialogue adds `chat`). Bad input ends with one line
on stderr and exit code 2, other errors with one line and exit code 1
(`--debug` shows their traceback); results are one JSON line on stdout.
"""

import dataclasses
import sys

from tfllm import cli
from tfllm.cli import arguments


@dataclasses.dataclass
class App:
    """The command line of one app over its task (subclasses add the task's options).

    Attributes:
        task: the app's task (`tfllm.tasks`); `task.name` names the program,
            its export base path `saved_models/<name>` and run directory
            `runs/<name>`.
        description: one paragraph for `--help`.
        extra_commands: `{name: (help, add_arguments(parser), run(app, args))}`.
    """

    task: object
    description: str
    extra_commands: dict = dataclasses.field(default_factory=dict)

    @property
    def name(self):
        return self.task.name

    # The parts a kind of app fills in.

    def add_train_options(self, parser, demo):
        raise NotImplementedError

    def add_evaluate_options(self, parser):
        raise NotImplementedError

    def add_predict_options(self, parser):
        raise NotImplementedError

    def add_export_options(self, parser):
        """Options of `export` beyond --run-dir and --export-dir (none by default)."""

    def kind_commands(self):
        """Subcommands every app of this kind has, as `extra_commands` (none by default)."""
        return {}

    def all_extra_commands(self):
        return {**self.kind_commands(), **self.extra_commands}

    def config_from_args(self, args, demo):
        """The task's config the parsed `train` / `demo` options describe (for the default `train_command`)."""
        raise NotImplementedError

    def show_demo(self, export, result):
        """Shows what the demo's in-memory export makes of the task's demo texts (on stderr)."""

    def train_command(self, args, demo):
        """Trains (`train_task`), shows the demo, reports; kinds may replace it."""
        import os

        result, export = self.train_task(args, demo)
        if demo:
            self.show_demo(export, result)
        return self.report_training(result, os.path.join(result["run_dir"], "curves.png"))

    def evaluate_command(self, args):
        raise NotImplementedError

    def predict_command(self, args):
        """One JSON line per text of `predict_texts(args)`: `task.predict`'s records; kinds may replace it."""
        for record in self.task.predict(args.model_dir, predict_texts(args), args.batch_size):
            cli.print_json(record)
        return 0

    def export_command(self, args):
        """`task.export_run` of `--run-dir` into `--export-dir`; kinds may replace it."""
        path = self.task.export_run(args.run_dir, args.export_dir)
        cli.print_json({"command": "export", "run_dir": args.run_dir, "export_path": path})
        return 0

    # Shared.

    def build_parser(self):
        parser = cli.ArgumentParser(prog=self.name, description=self.description)
        parser.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
        commands = parser.add_subparsers(dest="command", metavar="COMMAND")
        self.add_train_options(
            commands.add_parser("demo", help="train on the built-in sample, export, predict (the default)"), demo=True
        )
        self.add_train_options(
            commands.add_parser("train", help="train on a table or a public data set and export"), demo=False
        )
        evaluate = commands.add_parser("evaluate", help="score an exported model on a table")
        arguments.add_model_dir_argument(evaluate)
        self.add_evaluate_options(evaluate)
        predict = commands.add_parser("predict", help="run an exported model on texts")
        arguments.add_model_dir_argument(predict)
        predict.add_argument("texts", nargs="*", metavar="TEXT", help="input texts")
        self.add_predict_options(predict)
        export = commands.add_parser("export", help="export a trained run again as a new version")
        arguments.add_run_dir_argument(export, self.default_run_dir())
        arguments.add_export_argument(export, self.default_export_dir())
        self.add_export_options(export)
        for name, (help_text, add_arguments, _) in self.all_extra_commands().items():
            add_arguments(commands.add_parser(name, help=help_text))
        return parser

    def train_task(self, args, demo):
        """Trains the task on the config `config_from_args` makes of `args`, under the strategy they
        choose; returns `(result record, the in-memory export)`, the command named in the record."""
        from tfllm.training import configure_from_args

        config = self.config_from_args(args, demo)
        result = self.task.train(config, configure_from_args(args), log=log)
        export = result.pop("export")
        if demo:
            result["command"] = "demo"
        return result, export

    @staticmethod
    def report_training(result, curves):
        """Where the curves and the export went (stderr), then the result as the JSON line."""
        log(f"training curves: {curves}")
        if result["export_path"]:
            log(f"exported: {result['export_path']}")
        cli.print_json(result)
        return 0

    def default_export_dir(self):
        return f"saved_models/{self.name}"

    def default_run_dir(self):
        return f"runs/{self.name}"

    def main(self, argv=None):
        """Runs the command line; returns the exit code (2 for bad input, 1 for an internal error)."""
        argv = list(sys.argv[1:] if argv is None else argv)
        debug = "--debug" in argv
        argv = [arg for arg in argv if arg != "--debug"]
        return cli.run(self._dispatch, argv, prog=self.name, debug=debug)

    def _dispatch(self, argv):
        # No command means the demo; its options may still be given
        # (`sentiment.py --model transformer`).
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
        return self.all_extra_commands()[args.command][2](self, args)


def predict_texts(args):
    """The texts a `predict` command was given: TEXT arguments or the text column of `--data`.

    Raises `UsageError` for both or neither, and for an empty TEXT argument.
    """
    from tfllm import data

    if args.texts and args.data:
        raise cli.UsageError("give texts or --data, not both")
    if args.data:
        return data.load_table(args.data, args.text_column, label_column=None, encoding=args.encoding).text.tolist()
    if not args.texts:
        raise cli.UsageError("predict needs TEXT arguments or --data PATH")
    for index, text in enumerate(args.texts, start=1):
        if not text.strip():
            raise cli.UsageError(f"text {index} is empty")
    return list(args.texts)


def log(message):
    """Progress lines go to stderr; stdout carries only the JSON results."""
    print(message, file=sys.stderr, flush=True)

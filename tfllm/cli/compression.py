"""`compress` and `distill`: the compression subcommands every classification app has (`tfllm.compression`)."""

from tfllm import cli
from tfllm.cli import arguments


def add_compress_arguments(parser, app):
    from tfllm.compression import METHODS

    parser.add_argument("--method", required=True, choices=METHODS, help="int8/int4 weight quantization, "
                        "magnitude pruning, or distillation into a smaller --model")
    parser.add_argument("--model-dir", required=True, metavar="DIR",
                        help="the run directory of a trained model (train's --run-dir); for distill also an export")
    _add_common(parser, app, data_required=False)
    parser.add_argument("--sparsity", type=float, default=0.8, help="pruning target in (0, 1) (default: %(default)s)")
    parser.add_argument("--epochs", type=arguments.positive_int, default=2,
                        help="fine-tuning epochs while pruning, training epochs of a student (default: %(default)s)")
    parser.add_argument("--model", default="fasttext", metavar="KIND", help="the student of distill (default: %(default)s)")


def add_distill_arguments(parser, app):
    parser.add_argument("--teacher", required=True, metavar="DIR", help="a run directory or a classifier export")
    _add_common(parser, app, data_required=True)
    parser.add_argument("--model", default="fasttext", metavar="KIND", help="the student's kind (default: %(default)s)")
    parser.add_argument("--epochs", type=arguments.positive_int, default=5, help="student epochs (default: %(default)s)")
    parser.add_argument("--temperature", type=arguments.positive_float, default=2.0,
                        help="softens the teacher's probabilities (default: %(default)s)")
    parser.add_argument("--alpha", type=float, default=0.5,
                        help="weight of the teacher's soft targets against the labels (default: %(default)s)")


def _add_common(parser, app, data_required):
    arguments.add_data_arguments(parser, required=data_required)
    arguments.add_export_argument(parser, app.default_export_dir())
    arguments.add_seed_argument(parser)


def compress(app, args):
    from tfllm.compression import compress_run, distill_run

    options = dict(text_column=args.text_column, label_column=args.label_column, seed=args.seed,
                   warmup_texts=list(app.task.demo_texts[:2]) or None, epochs=args.epochs, log=app_log)
    if args.method == "distill":
        if not args.data:
            raise cli.UsageError("--method distill needs --data PATH (the student's training table)")
        record = distill_run(args.model_dir, args.data, args.model, args.export_dir, **options)
    else:
        if not 0.0 < args.sparsity < 1.0:
            raise cli.UsageError(f"--sparsity must be strictly between 0 and 1, got {args.sparsity}")
        record = compress_run(args.model_dir, args.method, args.export_dir, data=args.data,
                              sparsity=args.sparsity, **options)
    cli.print_json({"command": "compress", **record})
    return 0


def distill(app, args):
    from tfllm.compression import distill_run

    if not 0.0 <= args.alpha <= 1.0:
        raise cli.UsageError(f"--alpha must be between 0 and 1, got {args.alpha}")
    record = distill_run(
        args.teacher, args.data, args.model, args.export_dir, temperature=args.temperature, alpha=args.alpha,
        epochs=args.epochs, text_column=args.text_column, label_column=args.label_column, seed=args.seed,
        warmup_texts=list(app.task.demo_texts[:2]) or None, log=app_log,
    )
    cli.print_json({"command": "distill", **record})
    return 0


def app_log(message):
    from tfllm.cli.app import log

    log(message)


def commands(app):
    """`{name: (help, add_arguments(parser), run(app, args))}` of both subcommands, for `app`."""
    return {
        "compress": ("compress a trained model (int8, int4, pruning, distillation) into a new export version",
                     lambda parser: add_compress_arguments(parser, app), compress),
        "distill": ("train a smaller student on a teacher's probabilities and export it",
                    lambda parser: add_distill_arguments(parser, app), distill),
    }

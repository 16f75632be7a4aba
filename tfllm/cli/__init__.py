"""Command-line plumbing every app shares: errors as one line, results as one JSON line.

- `ArgumentParser`: argparse whose errors raise `UsageError` instead of
  printing usage and exiting, so `run` reports them like any other bad input.
- `run(command, args, prog=, debug=)`: calls `command(args)` and turns bad
  input (`UsageError`, `tfllm.data.DataError`,
  `tfllm.serving.export.ExportError`, missing or unreadable files) into ONE
  line on stderr, `prog: error: ...`, and exit code 2; any other error is one
  `prog: internal error: ...` line and exit code 1 (its traceback with `debug`).
- `print_json(record)`: the final result as one JSON line on stdout.
- `tfllm.cli.arguments`: argument types and the options every app spells the
  same way; `tfllm.cli.app.App`: the subcommands an app is built from.

Relative paths given on the command line are relative to the current
directory, like any Unix tool; the defaults (`saved_models/<app>`,
`runs/<app>`) are relative to it too, which is the repository root under
`make run`.
"""

import argparse
import json
import logging
import math
import os
import sys


class UsageError(Exception):
    """Bad command-line input; `run` prints it as one line and exits with 2."""


class ArgumentParser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` that raises `UsageError` instead of exiting.

    Subparsers created through `add_subparsers` inherit this class. `--help`
    still prints help and exits 0.
    """

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


USAGE_EXIT_CODE = 2


def _user_errors():
    """Exception types that mean bad input rather than a bug."""
    from tfllm.data.errors import DataError
    from tfllm.models.checkpoints import BackboneError
    from tfllm.serving.export import ExportError

    return (UsageError, DataError, ExportError, BackboneError,
            FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


def one_line(error):
    """The message of an exception on one line (newlines escaped, never empty)."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.filename}: {error.strerror}"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.replace("\r", " ").split("\n")).strip()


def _show_tfllm_logs():
    """Shows tfllm's INFO messages (strategy chosen, truncation, fallbacks) on stderr."""
    logger = logging.getLogger("tfllm")
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


INTERNAL_EXIT_CODE = 1


def run(command, args=None, *, prog=None, debug=False):
    """Runs `command(args)` and returns a process exit code.

    Bad input (see the module docstring) prints `prog: error: <message>` on
    stderr and returns 2; any other exception prints one line naming its
    type and returns 1, or keeps its traceback when `debug` is true;
    `SystemExit` (from `--help`) returns its code; Ctrl-C returns 130.
    `command` returns None (success) or an int code.

    Example:
        >>> def main(argv=None):
        ...     return run(lambda argv: _main(build_parser().parse_args(argv)), argv, prog="sentiment")
    """
    prog = prog or os.path.basename(sys.argv[0]) or "tfllm"
    _show_tfllm_logs()
    try:
        code = command(args)
    except SystemExit as exit_:
        code = exit_.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(f"{prog}: error: {code}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except _user_errors() as error:
        print(f"{prog}: error: {one_line(error)}", file=sys.stderr)
        return USAGE_EXIT_CODE
    except Exception as error:  # noqa: BLE001 - the one place every other error ends
        if debug:
            raise
        print(
            f"{prog}: internal error: {type(error).__name__}: {one_line(error)} (run with --debug for the traceback)",
            file=sys.stderr,
        )
        return INTERNAL_EXIT_CODE
    return 0 if code is None else int(code)


# ---------------------------------------------------------------------------
# Output.


def _plain(value):
    """Makes NumPy scalars/arrays and non-finite floats JSON-ready."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _plain(value.tolist())
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def to_json(record):
    """`record` as one line of JSON (NumPy values converted, NaN -> null)."""
    return json.dumps(_plain(record), ensure_ascii=False, allow_nan=False)


def print_json(record, file=None):
    """Prints `record` as one JSON line on stdout (flushed), the app's final output."""
    file = file or sys.stdout
    print(to_json(record), file=file, flush=True)

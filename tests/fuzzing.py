"""Shared pieces of the property-based fuzz tests: settings, the reader-outcome check, almost-valid inputs."""

import importlib
import os
import sys

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tfllm.data import DataError

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")


def fuzz_settings(examples):
    return settings(
        derandomize=True,
        max_examples=examples,
        deadline=None,
        database=None,
        # Each example overwrites the same file in tmp_path on purpose.
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def outcome(call, root):
    """The reader's result, or None after checking its DataError is one line naming a file under `root`."""
    try:
        return call()
    except DataError as error:
        message = str(error)
        assert "\n" not in message and message.startswith(str(root)), message
        assert len(message) < 1000, message[:300]
        return None


def texts(pieces):
    """Strings made of `pieces` (a format's syntax) and short random texts, so files look almost valid."""
    return st.lists(st.one_of(st.sampled_from(pieces), st.text(max_size=6)), max_size=25).map("".join)


def encoded(text):
    """File bytes: `text` in UTF-8 or UTF-16, or random bytes."""
    return st.one_of(
        text.map(lambda value: value.encode("utf-8")),
        text.map(lambda value: value.encode("utf-16")),
        st.binary(max_size=200),
    )


# Fragments of the syntax of the table and corpus formats.
PIECES = [
    "__eou__", " __eou__ ", "\t", "\n", "\r\n", '"', ",", "\x00", "\ufeff", "\u2028", "\x85",
    "caf\xe9", "sentence", "label", "dialogue", "summary", "id", "text", "0", "1", " ", "<br />",
]
TEXTISH = texts(PIECES)
ENCODED = encoded(TEXTISH)


def load_bench_module(name):
    """Imports `bench/<name>.py` the way bench/fuzz.py does: with bench/ on sys.path."""
    if BENCH not in sys.path:
        sys.path.insert(0, BENCH)
    return importlib.import_module(name)

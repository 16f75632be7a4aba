"""Fixtures of the compression tests; helpers live in `tiny_runs.py` beside this file."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tiny_runs import make_frame  # noqa: E402


@pytest.fixture
def table(tmp_path):
    """A CSV of the tiny two-class reviews."""
    path = tmp_path / "reviews.csv"
    make_frame().to_csv(path, index=False)
    return str(path)

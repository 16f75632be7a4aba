"""Checks the built-in sample data sets as plain files, independently of tfllm's loaders."""

import csv
import pathlib
import re

import pandas as pd
import pytest

SAMPLES = pathlib.Path(__file__).resolve().parents[2] / "tfllm" / "data" / "samples"

# name -> (columns, minimum rows)
SPECS = {
    "sentiment.csv": (["text", "label"], 480),
    "dialogue.csv": (["context", "response"], 240),
    "summarization.csv": (["dialogue", "summary"], 120),
    "translation.csv": (["source", "target"], 150),
}
SPEAKER_LINE = re.compile(r"^[A-Z][A-Za-z .']{0,30}: \S")


def _read(name):
    return pd.read_csv(SAMPLES / name, encoding="utf-8", keep_default_na=False, dtype=str)


@pytest.fixture(scope="module")
def tables():
    return {name: _read(name) for name in SPECS}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_file_is_small_utf8_and_parses_with_the_csv_module(name):
    path = SAMPLES / name
    assert path.stat().st_size < 1_000_000
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf"), "no byte-order mark"
    text = raw.decode("utf-8")  # raises on invalid UTF-8
    rows = list(csv.reader(text.splitlines(keepends=True)))
    width = len(SPECS[name][0])
    bad = [i for i, row in enumerate(rows, start=1) if len(row) != width]
    assert not bad, f"{name}: lines with the wrong number of fields: {bad[:5]}"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_columns_counts_and_no_missing_or_duplicates(tables, name):
    columns, minimum = SPECS[name]
    df = tables[name]
    assert list(df.columns) == columns
    assert len(df) >= minimum
    for column in columns:
        stripped = df[column].str.strip()
        empty = df.index[stripped == ""].tolist()
        assert not empty, f"{name}: empty {column!r} in data rows {[i + 1 for i in empty]}"
        assert (stripped == df[column]).all(), f"{name}: {column!r} has surrounding whitespace"
    assert not df.duplicated().any(), f"{name}: duplicate rows"
    # Reading with the default NA handling must not turn any field into NaN either.
    assert not pd.read_csv(SAMPLES / name).isna().any().any()


def test_sentiment_labels_are_balanced(tables):
    df = tables["sentiment.csv"]
    counts = df["label"].value_counts()
    assert set(counts.index) == {"positive", "negative", "neutral"}
    assert counts["positive"] >= 200 and counts["negative"] >= 200
    assert abs(counts["positive"] - counts["negative"]) <= 0.1 * max(counts["positive"], counts["negative"])
    assert counts["neutral"] >= 80


def test_sentiment_texts_are_distinct_and_varied(tables):
    df = tables["sentiment.csv"]
    texts = df["text"].str.lower()
    assert not texts.duplicated().any(), "the same text appears under two labels or twice"
    words = df["text"].str.split().str.len()
    assert words.min() >= 4
    assert words.max() >= 40, "some long reviews"
    assert words.median() <= 20, "mostly short reviews"
    # Rows are shuffled, not grouped by label.
    assert df["label"].iloc[:50].nunique() == 3


def test_dialogue_pairs(tables):
    df = tables["dialogue.csv"]
    response_words = df["response"].str.split().str.len()
    assert response_words.between(3, 25).all()
    assert (df["context"] != df["response"]).all()
    two_turn = df["context"].str.contains(" __eou__ ", regex=False)
    assert 0 < two_turn.sum() < len(df) // 4
    assert not df["response"].str.contains("__eou__", regex=False).any()


def test_summarization_dialogues_are_chats_with_named_speakers(tables):
    df = tables["summarization.csv"]
    for row, (dialogue, summary) in enumerate(zip(df["dialogue"], df["summary"]), start=1):
        lines = dialogue.split("\n")
        assert 3 <= len(lines) <= 12, f"row {row}: {len(lines)} lines"
        bad = [line for line in lines if not SPEAKER_LINE.match(line)]
        assert not bad, f"row {row}: lines without a speaker: {bad}"
        speakers = {line.split(":", 1)[0] for line in lines}
        assert 2 <= len(speakers) <= 4, f"row {row}: speakers {sorted(speakers)}"
        assert "\n" not in summary and summary.endswith((".", "!")), f"row {row}: summary {summary!r}"
        # The summary names at least one of the people in the chat, as SAMSum summaries do.
        named = {s.split()[-1].lower() for s in speakers}
        assert any(name in summary.lower() for name in named), f"row {row}: summary names nobody"
    assert (df["summary"].str.len() < df["dialogue"].str.len()).mean() > 0.9


def test_readme_documents_every_file():
    readme = (SAMPLES / "README.md").read_text(encoding="utf-8")
    for name in SPECS:
        assert name in readme
    assert "Apache-2.0" in readme

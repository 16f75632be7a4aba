"""Property-based fuzzing of load_table: a well-formed frame or a one-line DataError, nothing else.

Inputs are tables with awkward texts, headers and options, serialized in
every format and then damaged (BOMs, NUL bytes, cuts, wrong encodings,
broken compression), plus plain random bytes. Seeds are fixed
(`derandomize=True`), so a failure reproduces on every run.
"""

import bz2
import csv
import gzip
import io
import json
import lzma

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tfllm.data import DataError, load_table

from fuzzing import fuzz_settings


# Texts that have broken parsers: separators, quotes, line breaks of every
# kind, NUL, BOMs, things pandas would read as numbers, bools or missing.
AWKWARD = [
    '"', '""', ",", "\t", "\n", "\r", "\r\n", "\x00", "\ufeff", "\u2028", "\x85", "\x0c",
    "NA", "null", "NaN", "007", "1e5", "false", " ", "", "caf\xe9", "\U0001f600", "x" * 5000,
]
TEXT = st.one_of(st.text(max_size=12), st.sampled_from(AWKWARD))
LABEL = st.one_of(st.integers(-3, 3), st.sampled_from(["pos", "neg", " pos ", "", "1.0", "inf"]))
HEADER = st.lists(st.sampled_from(["text", "label", "summary", "other", ""]), max_size=4)
OPTIONS = st.sampled_from(
    [
        {},
        {"label_column": None},
        {"target_column": "summary"},
        {"drop_empty": True, "target_column": "summary"},
        {"encoding": "cp1252"},
        {"encoding": "utf-16"},
    ]
)
FORMATS = ["csv", "tsv", "json", "jsonl", "parquet", "csv.gz", "json.bz2", "tsv.xz"]
COMPRESS = {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}


def check_outcome(call, path, options):
    """Runs `call`: a DataError must be one line naming `path`; a frame must be well formed."""
    try:
        frame = call()
    except DataError as error:
        message = str(error)
        assert "\n" not in message and "\r" not in message, message
        assert message.startswith(str(path)), message
        assert len(message) < 1000, message[:300]
        return None
    columns = ["text"]
    if options.get("label_column", "label") is not None:
        columns.append("label")
    if options.get("target_column"):
        columns.append("target")
    assert frame.columns.tolist() == columns
    assert len(frame) > 0
    assert not frame.isna().any().any()
    for column in {"text", "target"} & set(columns):
        assert all(isinstance(value, str) and value.strip() for value in frame[column])
    if "label" in frame and frame.label.dtype != np.int64:
        assert all(isinstance(value, str) and value == value.strip() and value for value in frame.label)
    return frame


def serialize(fmt, header, rows, quoting=csv.QUOTE_MINIMAL):
    """`rows` (lists of values under `header`) as the bytes of a `fmt` file."""
    base, _, compression = fmt.partition(".")
    if base in ("csv", "tsv"):
        out = io.StringIO()
        if base == "tsv":
            # TSV is read without quoting, so it is written without any.
            out.write("".join("\t".join(map(str, line)) + "\n" for line in [header, *rows]))
        else:
            csv.writer(out, quoting=quoting).writerows([header, *rows])
        data = out.getvalue().encode("utf-8")
    elif base == "parquet":
        columns = {name: [row[i] if i < len(row) else None for row in rows] for i, name in enumerate(header)}
        arrays = [pa.array([None if v is None else str(v) for v in values]) for values in columns.values()]
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_arrays(arrays, names=list(columns)), buffer)
        data = buffer.getvalue()
    else:
        records = [dict(zip(header, row)) for row in rows]
        if base == "json":
            data = json.dumps(records, ensure_ascii=False).encode()
        else:
            data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
    return COMPRESS[compression](data) if compression else data


@st.composite
def damaged(draw, data):
    """`data` with a few byte-level injuries drawn."""
    data = bytearray(data)
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "delete", "cut", "flip"]))
        if kind == "insert":
            data[at:at] = draw(st.sampled_from([b"\xef\xbb\xbf", b"\x00", b"\xe9", b"\xff\xfe", b'"', b"\n"]))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif kind == "cut":
            del data[at:]
        elif data:
            data[min(at, len(data) - 1)] = draw(st.integers(0, 255))
    return bytes(data)


@st.composite
def table_files(draw):
    fmt = draw(st.sampled_from(FORMATS))
    header = draw(HEADER)
    width = st.integers(max(0, len(header) - 1), len(header) + 1)  # ragged rows
    rows = draw(
        st.lists(st.builds(lambda n, v: v[:n], width, st.lists(st.one_of(TEXT, LABEL), min_size=5, max_size=5)), max_size=5)
    )
    if fmt.startswith(("json", "parquet")):
        rows = [row + [""] * (len(header) - len(row)) for row in rows]
    data = serialize(fmt, header, rows, draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_NONNUMERIC])))
    return fmt, draw(damaged(data))


@fuzz_settings(400)
@given(case=table_files(), options=OPTIONS)
def test_damaged_tables_give_frames_or_data_errors(tmp_path, case, options):
    fmt, data = case
    path = tmp_path / f"input.{fmt}"
    path.write_bytes(data)
    check_outcome(lambda: load_table(path, **options), path, options)


@pytest.mark.parametrize("fmt", FORMATS)
@fuzz_settings(40)
@given(data=st.binary(max_size=300), options=OPTIONS)
def test_random_bytes_give_frames_or_data_errors(tmp_path, fmt, data, options):
    path = tmp_path / f"input.{fmt}"
    path.write_bytes(data)
    check_outcome(lambda: load_table(path, **options), path, options)


@st.composite
def clean_tables(draw, fmt):
    # Any non-blank text a writer can represent; TSV has no quoting, so no
    # tabs or line breaks in it.
    banned = "\t\n\r" if fmt.startswith("tsv") else ""
    text = st.one_of(st.text(max_size=12), st.sampled_from(AWKWARD)).filter(
        lambda value: value.strip() and not any(c in value for c in banned)
    )
    return draw(st.lists(st.tuples(text, st.integers(-3, 3)), min_size=1, max_size=6))


@pytest.mark.parametrize("fmt", FORMATS)
@fuzz_settings(40)
@given(data=st.data())
def test_written_tables_read_back_exactly(tmp_path, fmt, data):
    rows = data.draw(clean_tables(fmt))
    path = tmp_path / f"input.{fmt}"
    path.write_bytes(serialize(fmt, ["text", "label"], [list(row) for row in rows]))
    frame = load_table(path)
    assert frame.text.tolist() == [text for text, _ in rows]
    if fmt.startswith("parquet"):  # written as strings above
        assert frame.label.tolist() == [str(label) for _, label in rows]
    else:
        assert frame.label.tolist() == [label for _, label in rows]

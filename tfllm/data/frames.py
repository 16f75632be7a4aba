"""Parsing CSV, TSV, JSON, JSONL and Parquet files into DataFrames with row-precise errors."""

import csv
import os
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tfllm.data.errors import DataError
from tfllm.data.formats import (
    READ_ERRORS,
    check_file,
    decode_error,
    infer_format,
    parse_json,
    python_encoding,
    read_bytes,
    read_error,
    read_text,
)


def _read_delimited(path, fmt, encoding, text_columns):
    kwargs = dict(
        sep="\t" if fmt == "tsv" else ",",
        # Only truly empty fields are missing: "NA", "None" or "null" are text.
        keep_default_na=False,
        na_values=[""],
        # Text stays as written: inferred numbers would turn "007" into "7.0".
        dtype={column: str for column in text_columns},
        encoding=python_encoding(encoding),
    )
    if fmt == "tsv":
        # TSV has no quoting (GLUE, Anki, IANA): a stray quote must not swallow
        # the following lines into one field.
        kwargs["quoting"] = csv.QUOTE_NONE
    try:
        frame = pd.read_csv(path, **kwargs)
        _note_repeated_columns(path, frame, kwargs)
        return frame
    except UnicodeError as error:
        # Also pandas' own "UTF-16 stream does not start with BOM".
        raise _delimited_decode_error(path, error, encoding, kwargs) from None
    except pd.errors.EmptyDataError:
        raise DataError("file is empty", path=path) from None
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r}", path=path) from None
    except READ_ERRORS as error:
        raise read_error(path, error) from None
    except pd.errors.ParserError as error:
        message = str(error).strip().splitlines()[-1]
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
        if match:
            expected, line, saw = match.groups()
            sep = "tab" if fmt == "tsv" else "comma"
            raise DataError(
                f"line {line}: expected {expected} fields, found {saw} "
                f"(quote fields that contain a {sep})",
                path=path,
            ) from None
        raise DataError(f"malformed {fmt.upper()}: {message}", path=path) from None


def _note_repeated_columns(path, frame, kwargs):
    # pandas renames a repeated "text" header to "text.1", so which column a
    # caller gets would be a silent guess; select_columns refuses instead.
    names = set(map(str, frame.columns))
    mangled = [c for c in names if re.fullmatch(r"(.+)\.\d+", c) and c.rsplit(".", 1)[0] in names]
    if not mangled:
        return
    options = {**kwargs, "header": None, "nrows": 1, "dtype": str}
    header = [str(name) for name in pd.read_csv(path, **options).iloc[0]]
    counts = {name: header.count(name) for name in set(header)}
    frame.attrs["repeated_columns"] = {name: n for name, n in counts.items() if n > 1}


def _delimited_decode_error(path, error, encoding, kwargs):
    """The DataError for an undecodable CSV/TSV, naming the row of the first bad byte."""
    raw = read_bytes(path)
    try:
        raw.decode(python_encoding(encoding))
    except UnicodeDecodeError as exact:
        # pandas' error positions are relative to its read buffer; this one is not.
        line = raw[: exact.start].count(b"\n") + 1
        error = exact
    else:
        return DataError(f"cannot read as {encoding} ({error}); pass the file's encoding", path=path)
    try:
        replaced = pd.read_csv(path, encoding_errors="replace", **kwargs)
    except ValueError:  # the text is malformed as well: the line is all we know
        return decode_error(path, error, encoding, raw=raw, line=line)
    row = _first_row_containing(replaced, "\ufffd")
    if row is None:
        return decode_error(path, error, encoding, raw=raw, line=line)
    return decode_error(path, error, encoding, row=row, raw=raw)


def _first_row_containing(frame, needle):
    for column in frame.columns:
        values = frame[column]
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            hits = np.flatnonzero(values.astype(str).str.contains(needle, regex=False))
            if len(hits):
                return int(hits[0]) + 1
    return None


def _records_frame(path, records):
    if not records:
        raise DataError("no rows", path=path)
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise DataError(
                f"expected a JSON object per row, found {type(record).__name__}",
                path=path,
                row=index + 1,
            )
    return pd.DataFrame.from_records(records)


def _read_json(path, encoding):
    text = read_text(path, encoding)
    if not text.strip():
        raise DataError("file is empty", path=path)
    data = parse_json(text, path)
    if isinstance(data, dict):
        # {"column": [values...]} (pandas' default orient) or {"data": [records]}.
        lists = [value for value in data.values() if isinstance(value, list)]
        if len(data) == 1 and lists and all(isinstance(r, dict) for r in lists[0]):
            return _records_frame(path, lists[0])
        if lists and len(lists) == len(data):
            lengths = {len(value) for value in lists}
            if len(lengths) != 1:
                raise DataError("JSON columns have different lengths", path=path)
            if lengths == {0}:
                raise DataError("no rows", path=path)
            return pd.DataFrame(data)
        raise DataError(
            "expected a JSON list of row objects or an object of column lists",
            path=path,
        )
    if isinstance(data, list):
        return _records_frame(path, data)
    raise DataError(
        f"expected a JSON list of row objects, found {type(data).__name__}", path=path
    )


def _read_jsonl(path, encoding):
    text = read_text(path, encoding)
    records = []
    # Only "\n" ends a record: str.splitlines() also splits at U+2028 and
    # U+0085, which JSON strings may hold unescaped.
    for line_number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        record = parse_json(line, path, where=f"line {line_number}")
        if not isinstance(record, dict):
            raise DataError(
                f"line {line_number}: expected a JSON object, found "
                f"{type(record).__name__}",
                path=path,
            )
        records.append(record)
    if not records and not text.strip():
        raise DataError("file is empty", path=path)
    return _records_frame(path, records)


def _first_line(error, limit=200):
    lines = str(error).strip().splitlines()
    return lines[0][:limit] if lines else type(error).__name__


def _check_parquet_values(path, table, names):
    # pyarrow checks UTF-8 only on full validation, and pandas' Arrow-backed
    # strings defer decoding, so a corrupt string would fail far from here.
    for name, column in zip(names, table.columns):
        offset = 0
        for chunk in column.chunks:
            try:
                chunk.validate(full=True)
            except pa.ArrowInvalid as error:
                match = re.search(r"string index (\d+)", str(error))
                row = offset + int(match.group(1)) + 1 if match else None
                problem = "not valid UTF-8" if "UTF8" in str(error) else _first_line(error)
                raise DataError(f"column {name!r}: {problem}", path=path, row=row) from None
            offset += len(chunk)


def _read_parquet(path):
    try:
        table = pq.read_table(path)
        # Names are decoded on access: a damaged schema fails here, not later.
        names = table.column_names
    except Exception as error:  # pyarrow raises several unrelated types.
        raise DataError(
            f"not a readable Parquet file ({_first_line(error)})", path=path
        ) from None
    _check_parquet_values(path, table, names)
    try:
        return table.to_pandas()
    except Exception as error:  # as above: Arrow, type and value errors alike.
        raise DataError(
            f"Parquet columns cannot be converted ({_first_line(error)})", path=path
        ) from None


def read_frame(path, format=None, encoding="utf-8", text_columns=()):
    """Reads a whole table into a DataFrame, raising `DataError` on bad input.

    The lower-level half of `load_table`: no column selection or checks.
    `text_columns` of CSV/TSV files are read as written, not as numbers.
    """
    path = os.fspath(path)
    check_file(path)
    fmt = infer_format(path, format)
    if fmt in ("csv", "tsv"):
        frame = _read_delimited(path, fmt, encoding, text_columns)
    elif fmt == "json":
        frame = _read_json(path, encoding)
    elif fmt == "jsonl":
        frame = _read_jsonl(path, encoding)
    else:
        frame = _read_parquet(path)
    if len(frame) == 0:
        raise DataError("no rows (only a header)" if len(frame.columns) else "no rows", path=path)
    return frame

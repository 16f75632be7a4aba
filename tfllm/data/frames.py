"""Parsing CSV, TSV, JSON, JSONL and Parquet files into DataFrames with row-precise errors."""

import csv
import gzip
import json
import lzma
import os
import re

import numpy as np
import pandas as pd

from tfllm.data.errors import DataError
from tfllm.data.formats import (
    check_file,
    decode_error,
    infer_format,
    python_encoding,
    read_text,
)


def _read_delimited(path, fmt, encoding, header=True, names=None):
    kwargs = dict(
        sep="\t" if fmt == "tsv" else ",",
        # Only truly empty fields are missing: "NA", "None" or "null" are text.
        keep_default_na=False,
        na_values=[""],
        header=0 if header else None,
        names=names,
        encoding=python_encoding(encoding),
    )
    if fmt == "tsv":
        # TSV has no quoting (GLUE, Anki, IANA): a stray quote must not swallow
        # the following lines into one field.
        kwargs["quoting"] = csv.QUOTE_NONE
    try:
        return pd.read_csv(path, **kwargs)
    except UnicodeDecodeError as error:
        replaced = pd.read_csv(path, encoding_errors="replace", **kwargs)
        row = _first_row_containing(replaced, "\ufffd")
        raise decode_error(path, error, encoding, row=row) from None
    except pd.errors.EmptyDataError:
        raise DataError("file is empty", path=path) from None
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r}", path=path) from None
    except (EOFError, lzma.LZMAError, gzip.BadGzipFile) as error:
        raise DataError(f"cannot decompress ({error})", path=path) from None
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
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(
            f"line {error.lineno}: not valid JSON ({error.msg})", path=path
        ) from None
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
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(
                f"line {line_number}: not valid JSON ({error.msg})", path=path
            ) from None
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


def _read_parquet(path):
    try:
        return pd.read_parquet(path)
    except Exception as error:  # pyarrow raises several unrelated types.
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise DataError(f"not a readable Parquet file ({message})", path=path) from None


def read_frame(path, format=None, encoding="utf-8"):
    """Reads a whole table into a DataFrame, raising `DataError` on bad input.

    The lower-level half of `load_table`: no column selection or checks.
    """
    path = os.fspath(path)
    check_file(path)
    fmt = infer_format(path, format)
    if fmt in ("csv", "tsv"):
        frame = _read_delimited(path, fmt, encoding)
    elif fmt == "json":
        frame = _read_json(path, encoding)
    elif fmt == "jsonl":
        frame = _read_jsonl(path, encoding)
    else:
        frame = _read_parquet(path)
    if len(frame) == 0:
        raise DataError("no rows (only a header)" if len(frame.columns) else "no rows", path=path)
    return frame

"""Reading text tables (CSV, TSV, JSON, JSONL, Parquet) with row-precise errors."""

import bz2
import csv
import gzip
import json
import lzma
import logging
import os
import re

import numpy as np
import pandas as pd

from tfllm.data.errors import DataError

logger = logging.getLogger("tfllm.data")

FORMATS = ("csv", "tsv", "json", "jsonl", "parquet")
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
# Compressed text files are read transparently.
_DECOMPRESSORS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_COMPRESSION_SUFFIXES = tuple(_DECOMPRESSORS)


def infer_format(path, format=None):
    """Returns the table format of `path`: one of `FORMATS`.

    `format` overrides the file extension. Compressed text files
    (`train.csv.gz`) take the format of the inner extension.
    """
    if format is not None:
        name = str(format).lower().lstrip(".")
        if name not in FORMATS:
            raise DataError(
                f"unknown format {format!r}; expected one of {', '.join(FORMATS)}",
                path=path,
            )
        return name
    stem = str(path).lower()
    for suffix in _COMPRESSION_SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    extension = os.path.splitext(stem)[1]
    if extension not in _EXTENSIONS:
        raise DataError(
            f"unknown format {extension or '(no extension)'!r}; expected one of "
            f"{', '.join(sorted(_EXTENSIONS))} or pass format= "
            f"({', '.join(FORMATS)})",
            path=path,
        )
    return _EXTENSIONS[extension]


def _python_encoding(encoding):
    # utf-8-sig accepts files with and without the byte order mark Excel writes.
    return "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding


def _encoding_hint(raw):
    try:
        raw.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def _read_bytes(path):
    opener = _DECOMPRESSORS.get(os.path.splitext(path.lower())[1], open)
    try:
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, lzma.LZMAError) as error:
        raise DataError(f"cannot decompress ({error})", path=path) from None


def _decode_error(path, error, encoding, row=None, raw=None, line=None):
    if raw is None:
        raw = _read_bytes(path)
    bad = error.object[error.start : error.start + 1]
    byte = f" (byte 0x{bad.hex()})" if bad else ""
    hint = _encoding_hint(raw)
    where = f"line {line}: " if line is not None else ""
    return DataError(
        f"{where}not valid {encoding}{byte}; pass the file's encoding, e.g. "
        f"encoding={hint!r} (CLI: --encoding {hint})",
        path=path,
        row=row,
    )


def _check_file(path):
    if not os.path.exists(path):
        raise DataError("no such file", path=path)
    if os.path.isdir(path):
        raise DataError("is a directory, expected a file", path=path)
    if os.path.getsize(path) == 0:
        raise DataError("file is empty", path=path)


def _read_delimited(path, fmt, encoding, header=True, names=None):
    kwargs = dict(
        sep="\t" if fmt == "tsv" else ",",
        # Only truly empty fields are missing: "NA", "None" or "null" are text.
        keep_default_na=False,
        na_values=[""],
        header=0 if header else None,
        names=names,
        encoding=_python_encoding(encoding),
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
        raise _decode_error(path, error, encoding, row=row) from None
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


def _read_text(path, encoding):
    raw = _read_bytes(path)
    try:
        return raw.decode(_python_encoding(encoding))
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise _decode_error(path, error, encoding, raw=raw, line=line) from None
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r}", path=path) from None


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
    text = _read_text(path, encoding)
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
    text = _read_text(path, encoding)
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
    _check_file(path)
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


def _missing_mask(values):
    missing = values.isna().to_numpy()
    is_text = values.dtype == object or pd.api.types.is_string_dtype(values)
    if is_text:
        blank = values.astype(str).str.strip().eq("").to_numpy()
        missing = missing | blank
    return missing


def _column(frame, name, path, role):
    if name not in frame.columns:
        existing = ", ".join(repr(str(c)) for c in frame.columns)
        hint = " (pass label_column=None for unlabelled files)" if role == "label" else ""
        raise DataError(
            f"no {role} column {name!r}; columns are: {existing}{hint}", path=path
        )
    return frame[name]


def _describe_missing(path, mask, problem, drop):
    bad = np.flatnonzero(mask)
    if not len(bad):
        return
    more = f" ({len(bad)} rows like this)" if len(bad) > 1 else ""
    if not drop:
        raise DataError(problem + more, path=path, row=int(bad[0]) + 1)


def _as_text(values):
    return values.map(lambda value: value if isinstance(value, str) else str(value)).astype(str)


def _clean_labels(labels):
    if pd.api.types.is_float_dtype(labels) and np.all(np.mod(labels.to_numpy(), 1) == 0):
        return labels.astype(np.int64)
    if pd.api.types.is_bool_dtype(labels):
        return labels.astype(np.int64)
    if pd.api.types.is_integer_dtype(labels):
        return labels.astype(np.int64)
    if isinstance(labels.dtype, pd.CategoricalDtype):
        labels = labels.astype(object)
    return labels.map(lambda value: str(value).strip()).astype(str)


def select_columns(
    frame,
    path,
    columns,
    *,
    label_column=None,
    drop_empty=False,
):
    """Checks and renames the columns of a frame read from `path`.

    Args:
        frame: the raw table.
        path: its file, for messages.
        columns: dict of {source column: output column} holding text.
        label_column: optional source column renamed to "label".
        drop_empty: drop rows with empty text or missing labels (logging how
            many) instead of raising.

    Returns:
        A DataFrame with the output columns (text columns as `str`), index reset.
    """
    selected = {}
    invalid = np.zeros(len(frame), dtype=bool)
    for source, target in columns.items():
        values = _column(frame, source, path, "text")
        mask = _missing_mask(values)
        _describe_missing(path, mask, f"empty text in column {source!r}", drop_empty)
        invalid |= mask
        selected[target] = values
    if label_column is not None:
        values = _column(frame, label_column, path, "label")
        mask = _missing_mask(values)
        _describe_missing(path, mask, f"missing label in column {label_column!r}", drop_empty)
        invalid |= mask
        selected["label"] = values
    out = pd.DataFrame(selected)
    if invalid.any():
        logger.warning(
            "%s: dropped %d of %d rows with empty text or a missing label",
            path,
            int(invalid.sum()),
            len(out),
        )
        out = out[~invalid]
        if len(out) == 0:
            raise DataError("no usable rows left after dropping empty ones", path=path)
    for target in columns.values():
        out[target] = _as_text(out[target])
    if "label" in out:
        out["label"] = _clean_labels(out["label"])
    return out.reset_index(drop=True)


def load_table(
    path,
    text_column="text",
    label_column="label",
    *,
    target_column=None,
    format=None,
    encoding="utf-8",
    drop_empty=False,
):
    """Loads a text table with checked columns for training or prediction.

    Args:
        path: a `.csv`, `.tsv`, `.json` (list of row objects), `.jsonl` or
            `.parquet` file; `.gz`/`.bz2`/`.xz` compressed text files work too. TSV files are read without quoting, as GLUE writes them.
        text_column: the column holding the input text.
        label_column: the column holding labels (ints or strings), or None for
            unlabelled files such as prediction inputs.
        target_column: an optional second text column (summaries, responses).
        format: one of "csv", "tsv", "json", "jsonl", "parquet"; overrides the
            extension.
        encoding: text encoding of CSV/TSV/JSON files.
        drop_empty: drop rows with empty text or a missing label, logging how
            many, instead of raising `DataError`.

    Returns:
        A DataFrame with columns "text" [, "label"] [, "target"], index reset.
        Texts are `str`; labels are int64 when every label is an integer,
        else stripped strings.

    Raises:
        DataError: naming the file, the 1-based row (header excluded) and the
            problem: missing file, unknown format, missing column, empty text,
            missing label, invalid encoding, empty file.

    Example:
        >>> frame = load_table("reviews.csv", text_column="review")
        >>> frame.columns.tolist()
        ['text', 'label']
    """
    frame = read_frame(path, format=format, encoding=encoding)
    columns = {text_column: "text"}
    if target_column is not None:
        columns[target_column] = "target"
    frame = select_columns(
        frame, os.fspath(path), columns, label_column=label_column, drop_empty=drop_empty
    )
    return frame[[c for c in ("text", "label", "target") if c in frame.columns]]


def train_val_split(frame, val_fraction=0.2, seed=0, stratify_column="label"):
    """Splits a frame into seeded train and validation parts.

    The split is stratified on `stratify_column` when the frame has it, so
    each class keeps its share in both parts (a class with a single example
    stays in train). Rows keep their original order within each part.

    Args:
        frame: a DataFrame, e.g. from `load_table`.
        val_fraction: share of rows (of each class) that go to validation,
            strictly between 0 and 1.
        seed: seed of the shuffle that picks validation rows.
        stratify_column: column to stratify on; None for a plain random split.

    Returns:
        `(train, val)` DataFrames with reset indices.

    Example:
        >>> train, val = train_val_split(load_sample("sentiment"), 0.2, seed=0)
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(
            f"`val_fraction` must be strictly between 0 and 1. Received: val_fraction={val_fraction}"
        )
    if len(frame) < 2:
        raise ValueError(f"Need at least 2 rows to split. Received: {len(frame)} rows")
    rng = np.random.default_rng(seed)
    if stratify_column is not None and stratify_column in frame.columns:
        groups = [
            np.flatnonzero((frame[stratify_column] == value).to_numpy())
            for value in pd.unique(frame[stratify_column])
        ]
    else:
        groups = [np.arange(len(frame))]
    val_rows = []
    for rows in groups:
        if len(rows) < 2:
            continue
        count = min(len(rows) - 1, max(1, int(round(len(rows) * val_fraction))))
        val_rows.append(rng.permutation(rows)[:count])
    is_val = np.zeros(len(frame), dtype=bool)
    if val_rows:
        is_val[np.concatenate(val_rows)] = True
    if not is_val.any():
        raise ValueError(
            "No class has 2 or more rows, so no validation rows can be drawn; "
            "pass stratify_column=None"
        )
    return (
        frame[~is_val].reset_index(drop=True),
        frame[is_val].reset_index(drop=True),
    )

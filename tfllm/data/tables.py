"""Checked text columns from tables (`load_table`), and seeded train/validation splits."""

import logging
import os

import numpy as np
import pandas as pd

from tfllm.data.errors import DataError, shorten
from tfllm.data.frames import read_frame

logger = logging.getLogger("tfllm.data")


def _missing_mask(values):
    missing = values.isna().to_numpy()
    is_text = values.dtype == object or pd.api.types.is_string_dtype(values)
    if is_text:
        blank = values.astype(str).str.strip().eq("").to_numpy()
        missing = missing | blank
    return missing


def _column_list(columns, limit=20):
    # A broken header can be one huge field or thousands of fields; the
    # message stays one readable line either way.
    names = [shorten(str(c)) for c in columns[:limit]]
    if len(columns) > limit:
        names.append(f"... ({len(columns) - limit} more)")
    return ", ".join(names)


def column_values(frame, name, path, role):
    """The column `name` of a frame read from `path`, or a DataError: missing, repeated, or bytes that are not UTF-8."""
    if name not in frame.columns:
        existing = _column_list(list(frame.columns))
        hint = " (pass label_column=None for unlabelled files)" if role == "label" else ""
        raise DataError(
            f"no {role} column {name!r}; columns are: {existing}{hint}", path=path
        )
    repeats = frame.attrs.get("repeated_columns", {}).get(name, 1)
    if repeats > 1 or isinstance(frame[name], pd.DataFrame):
        raise DataError(f"the header names column {name!r} more than once", path=path)
    return _decoded(frame[name], name, path)


def _decoded(values, name, path):
    # Parquet binary columns often hold UTF-8 text; str() would keep b'' quotes.
    if values.dtype != object:
        return values
    is_bytes = values.map(lambda value: isinstance(value, bytes)).to_numpy()
    if not is_bytes.any():
        return values
    decoded = values.copy()
    for row in np.flatnonzero(is_bytes):
        try:
            decoded.iat[row] = values.iat[row].decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(
                f"column {name!r}: not valid UTF-8", path=path, row=int(row) + 1
            ) from None
    return decoded


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
    if pd.api.types.is_float_dtype(labels):
        values = labels.to_numpy()
        # Only floats that int64 holds exactly: inf or 1e20 would wrap around.
        fits = np.isfinite(values).all() and (np.abs(values) < 2.0**63).all()
        if fits and (values == np.round(values)).all():
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
        values = column_values(frame, source, path, "text")
        mask = _missing_mask(values)
        _describe_missing(path, mask, f"empty text in column {source!r}", drop_empty)
        invalid |= mask
        selected[target] = values
    if label_column is not None:
        values = column_values(frame, label_column, path, "label")
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
    columns = {text_column: "text"}
    if target_column is not None:
        columns[target_column] = "target"
    frame = read_frame(path, format=format, encoding=encoding, text_columns=list(columns))
    frame = select_columns(
        frame, os.fspath(path), columns, label_column=label_column, drop_empty=drop_empty
    )
    return frame[[c for c in ("text", "label", "target") if c in frame.columns]]


def train_val_split(frame, val_fraction=0.2, seed=0, stratify_column="label", group_columns=None):
    """Splits a frame into seeded train and validation parts.

    The split is stratified on `stratify_column` when the frame has it, so
    each class keeps its share in both parts (a class with a single example
    stays in train). With `group_columns`, rows that share a value in any of
    those columns stay in one part (translation pairs: no sentence of either
    language is in both), and about `val_fraction` of the rows, in whole
    groups, go to validation. Rows keep their original order within each part.

    Args:
        frame: a DataFrame, e.g. from `load_table`.
        val_fraction: share of rows (of each class) that go to validation,
            strictly between 0 and 1.
        seed: seed of the shuffle that picks validation rows (or groups).
        stratify_column: column to stratify on; None for a plain random split.
        group_columns: columns whose equal values keep rows together
            (instead of stratifying), or None.

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
    if group_columns:
        is_val = _group_validation_rows(frame, group_columns, val_fraction, rng)
        return frame[~is_val].reset_index(drop=True), frame[is_val].reset_index(drop=True)
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


def _group_validation_rows(frame, columns, val_fraction, rng):
    """A validation mask of whole groups: rows linked by an equal value in any of `columns`."""
    parent = np.arange(len(frame))

    def root(row):
        while parent[row] != row:
            parent[row] = parent[parent[row]]
            row = parent[row]
        return row

    for column in columns:
        first_row = {}
        for row, value in enumerate(frame[column].tolist()):
            a, b = root(row), root(first_row.setdefault(value, row))
            parent[a] = b
    roots = np.array([root(row) for row in range(len(frame))])
    groups, sizes = np.unique(roots, return_counts=True)
    if len(groups) < 2:
        raise ValueError(f"All {len(frame)} rows share a value in {', '.join(columns)}: nothing to split")
    order = rng.permutation(len(groups))
    wanted = max(1, int(round(len(frame) * val_fraction)))
    # Whole groups in shuffled order until the share is reached; one group always stays in train.
    taken = np.cumsum(sizes[order]) <= wanted
    taken[0] = True
    taken[-1] = False
    return np.isin(roots, groups[order[taken]])

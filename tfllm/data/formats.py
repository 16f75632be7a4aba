"""Table formats and file bytes: detecting the format, decompressing, decoding text."""

import bz2
import gzip
import json
import lzma
import os
import zlib

from tfllm.data.errors import DataError

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


def python_encoding(encoding):
    # utf-8-sig accepts files with and without the byte order mark Excel writes.
    return "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding


def _encoding_hint(raw):
    try:
        raw.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


# What reading a damaged or unreadable file raises: gzip's header and CRC
# checks (OSError), zlib's inflate errors, bz2 (OSError), lzma, and cuts (EOFError).
READ_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError)


def read_error(path, error):
    """The DataError for one of `READ_ERRORS` raised while reading `path`."""
    compressed = str(path).lower().endswith(_COMPRESSION_SUFFIXES)
    if compressed and not isinstance(error, (FileNotFoundError, PermissionError)):
        return DataError(f"cannot decompress ({error})", path=path)
    return DataError(f"cannot read ({getattr(error, 'strerror', None) or error})", path=path)


def read_bytes(path):
    opener = _DECOMPRESSORS.get(os.path.splitext(path.lower())[1], open)
    try:
        with opener(path, "rb") as f:
            return f.read()
    except READ_ERRORS as error:
        raise read_error(path, error) from None


def decode_error(path, error, encoding, row=None, raw=None, line=None):
    if raw is None:
        raw = read_bytes(path)
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


def check_file(path):
    if not os.path.exists(path):
        raise DataError("no such file", path=path)
    if os.path.isdir(path):
        raise DataError("is a directory, expected a file", path=path)
    if os.path.getsize(path) == 0:
        raise DataError("file is empty", path=path)


def read_text(path, encoding):
    return decode_text(path, read_bytes(path), encoding)


def decode_text(path, raw, encoding):
    """The bytes `raw` read from `path` as text, or a one-line DataError naming the line of the first bad byte."""
    try:
        return raw.decode(python_encoding(encoding))
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise decode_error(path, error, encoding, raw=raw, line=line) from None
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r}", path=path) from None


def parse_json(text, path, *, where=None, row=None):
    """`json.loads(text)`, or a one-line DataError `path: [row R: ]where: problem`.

    `where` defaults to the line of a syntax error. Besides `JSONDecodeError`,
    json.loads raises RecursionError (one level of recursion per nesting
    level) and ValueError (an integer over Python's int_max_str_digits).
    """
    try:
        return json.loads(text)
    except RecursionError:
        problem = "JSON nested too deeply"
    except json.JSONDecodeError as error:
        problem = f"not valid JSON ({error.msg})"
        where = where or f"line {error.lineno}"
    except ValueError:
        problem = "not valid JSON (a number too long to read)"
    raise DataError(f"{where}: {problem}" if where else problem, path=path, row=row) from None

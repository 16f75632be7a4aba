"""Unlabelled text corpora for language-model pre-training: reading and packing into windows.

A corpus is a plain text file, a folder of them (read recursively, in sorted
order), or one column of a table (`load_table`'s formats). Each file, or each
table row, is one document. `pack_windows` concatenates tokenized documents
into one stream and cuts it into fixed-length windows, so no window is padded
except the last one.
"""

import importlib.resources
import os
import re

import numpy as np

from tfllm.data.errors import DataError
from tfllm.data.formats import decode_text, infer_format, read_bytes
from tfllm.data.tables import load_table

# Control characters that never occur in text; one of them in the first 8 Ki
# characters means binary. Checked after decoding, so UTF-16 text passes.
_BINARY = "[\x00-\x08\x0e-\x1a\x1c-\x1f]"
_BINARY_TEXT = re.compile(_BINARY)
_BINARY_BYTES = re.compile(_BINARY.encode())
_SNIFF = 8192
# Built-in plain-text samples: traditional English nursery rhymes and proverbs
# (public domain, 18th-19th century), typed out for tfllm.
TEXT_SAMPLES = ("rhymes",)


def _read_text_file(path, encoding):
    raw = read_bytes(path)
    try:
        text = decode_text(path, raw, encoding)
    except DataError:
        if _BINARY_BYTES.search(raw, 0, _SNIFF):
            raise DataError("not a text file (binary bytes)", path=path) from None
        raise
    if _BINARY_TEXT.search(text, 0, _SNIFF):
        raise DataError("not a text file (binary bytes)", path=path)
    return text


def _corpus_files(directory):
    files = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files.extend(os.path.join(root, name) for name in sorted(names) if not name.startswith("."))
    return files


def _is_table(path):
    try:
        infer_format(path)
    except DataError:
        return False
    return True


def read_corpus(path, text_column=None, *, encoding="utf-8"):
    """Reads the documents of a corpus.

    Args:
        path: a text file, a folder of text files (hidden files skipped), or
            a table (.csv, .tsv, .json, .jsonl, .parquet) with `text_column`.
        text_column: the table column holding the text; required for tables
            and only allowed for them.
        encoding: text encoding of the files.

    Returns:
        A list of documents (str), none of them blank.

    Raises:
        FileNotFoundError: `path` does not exist.
        DataError: the corpus is empty, a file is not text, or a table has
            no `text_column` (one line naming the path).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file or directory")
    if os.path.isdir(path):
        if text_column:
            raise DataError("--text-column is for a table, not a folder of text files", path=path)
        documents = [_read_text_file(file, encoding) for file in _corpus_files(path)]
    elif text_column or _is_table(path):
        if not text_column:
            raise DataError("a table corpus needs --text-column", path=path)
        frame = load_table(path, text_column, label_column=None, encoding=encoding)
        documents = [str(text) for text in frame.text]
    else:
        documents = [_read_text_file(path, encoding)]
    documents = [document for document in documents if document.strip()]
    if not documents:
        raise DataError("the corpus is empty (no text)", path=path)
    return documents


def load_text_sample(name="rhymes"):
    """The documents of a built-in text sample (one document: the whole file)."""
    if name not in TEXT_SAMPLES:
        raise DataError(f"unknown text sample {name!r}; expected one of {', '.join(TEXT_SAMPLES)}")
    resource = importlib.resources.files("tfllm.data").joinpath("samples", f"{name}.txt")
    with importlib.resources.as_file(resource) as path:
        return read_corpus(path)


def pack_windows(token_ids, window, *, separator_id=None, pad_id=0, overlap=0):
    """Concatenates tokenized documents and cuts the stream into fixed-length windows.

    Args:
        token_ids: a sequence of documents, each a sequence of int ids.
        window: tokens per window.
        separator_id: an id placed between documents (e.g. an end token), or
            None for none.
        pad_id: fills the last window.
        overlap: tokens each window shares with the next; 1 lets causal
            language modelling take windows of `window` tokens whose targets
            are the inputs shifted by one without losing a target.

    Returns:
        An int32 array (windows, window); only the last row may hold `pad_id`
        padding at its end.
    """
    if window <= overlap or window < 1:
        raise ValueError(f"window must be at least 1 and above overlap. Received: window={window}, overlap={overlap}")
    stream = join_documents(token_ids, separator_id)
    if stream.size == 0:
        return np.zeros([0, window], np.int32)
    stride = window - overlap
    count = max(1, -(-(stream.size - overlap) // stride))
    padded = np.full([(count - 1) * stride + window], pad_id, np.int32)
    padded[: stream.size] = stream
    starts = np.arange(count) * stride
    return padded[starts[:, None] + np.arange(window)[None, :]]


def join_documents(token_ids, separator_id=None):
    """Tokenized documents as one int32 stream, `separator_id` (if not None) between them."""
    pieces = []
    for index, ids in enumerate(token_ids):
        if index and separator_id is not None:
            pieces.append(np.array([separator_id], np.int32))
        pieces.append(np.asarray(ids, np.int32).reshape(-1))
    return np.concatenate(pieces) if pieces else np.zeros([0], np.int32)

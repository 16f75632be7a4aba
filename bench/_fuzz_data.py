"""Fuzz targets for the tfllm.data loaders, one per loader and format.

`TARGETS` maps a name to a callable taking fuzzer bytes. Each callable turns
the bytes into a file (either the bytes themselves, or a valid seed file
mutated as the bytes dictate: BOMs, NUL bytes, quotes, separators, huge
fields, duplicated headers, cuts), runs the loader on it, and raises
`AssertionError` unless the loader either returned a well-formed frame or
raised `DataError` with a one-line message naming the file. Any other
exception is reported as an `AssertionError` naming its type, so a driver
(`bench/fuzz.py`) counts it as a failure and the process only dies on real
crashes.
"""

import bz2
import functools
import gzip
import io
import lzma
import os
import sys
import tarfile
import tempfile
import zipfile

# Importable from a driver run as `python bench/fuzz.py`, like the other benchmarks.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from tfllm.data import (  # noqa: E402
    DataError,
    LabelVocabulary,
    load_table,
    read_dailydialog,
    read_imdb,
    read_samsum,
    read_sst2,
    read_translation_pairs,
)
from tfllm.data import datasets  # noqa: E402

_ROWS = [
    ("Great film, loved it", "positive", "liked"),
    ('Dull "and" long', "negative", "disliked"),
    ("It was fine\nreally", "neutral", "ok"),
]
_FRAME = pd.DataFrame(_ROWS, columns=["text", "label", "summary"])
_SEEDS = {
    "csv": _FRAME.to_csv(index=False).encode(),
    "tsv": "text\tlabel\tsummary\nGreat film\tpositive\tliked\nDull\t0\tmeh\n".encode(),
    "json": _FRAME.to_json(orient="records").encode(),
    "jsonl": _FRAME.to_json(orient="records", lines=True).encode(),
    "sst2": b"sentence\tlabel\nhide new secretions \t0\n\" a warm movie \t1\n",
    "imdb": b"id,rating,text,label\ntrain_pos_2,7,Good fun.<br />Yes,1\ntrain_neg_0,1,Awful.,0\n",
    "samsum_csv": (
        b'id,dialogue,summary\n1,"Amanda: cookies?\r\nJerry: Sure!",Amanda has cookies.\n'
        b'2,"Olivia: ""Liberals"" as always.",Olivia votes.\n'
    ),
    "samsum_json": (
        b'[{"id": "1", "summary": "A greets B.", "dialogue": "A: hi\\r\\nB: hello"},'
        b' {"id": "2", "summary": "None.", "dialogue": ""}]'
    ),
    "dailydialog": (
        b"Say , Jim , a beer ? __eou__ You know that is tempting . __eou__ Why ? __eou__\n"
        b"Can you do push-ups ? __eou__ Of course I can . __eou__\n"
    ),
    "pairs": b"Go.\tVe.\nGo.\tVete.\nI am hungry.\tTengo hambre.\tCC-BY 2.0\n",
    "labels": b"negative\nneutral\npositive\n",
    "review": b"Brilliant.<br /><br />Loved it.",
}
# Fragments that break parsers: BOMs, NUL, quotes, separators, JSON syntax,
# bytes that are not UTF-8, the DailyDialog turn marker.
_TOKENS = [
    b"\xef\xbb\xbf", b"\xff\xfe", b"\x00", b'"', b"'", b",", b"\t", b"\n", b"\r", b"\r\n",
    b"{", b"}", b"[", b"]", b":", b"null", b"NaN", b"1e999", b"-", b"\\", b'\\u0000',
    b"__eou__", b"\xe9", b"\xff", b"\x80", b"\xed\xa0\x80", b"\xf0\x9f\x98\x80",
    b"text", b"label", b"summary", b"dialogue", b"sentence", b"<br />", b" ",
    b"\xe2\x80\xa8", b"\xc2\x85", b"\x0c", b"\x1e", b"[" * 3000, b'{"a":' * 3000,
]
_HUGE = b"x" * (1 << 17)
_ENCODINGS = ["utf-8", "utf-16", "cp1252", "no-such-codec"]
_COMPRESS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}
_COMPRESSED = [("csv", ".gz"), ("json", ".gz"), ("csv", ".bz2"), ("jsonl", ".bz2"), ("tsv", ".xz")]


class _Choices:
    """Reads fuzzer bytes as a stream of small choices (0 once exhausted)."""

    def __init__(self, data):
        self.data = data
        self.position = 0

    def left(self):
        return len(self.data) - self.position

    def pick(self, count):
        if self.position >= len(self.data) or count <= 1:
            return 0
        self.position += 1
        return self.data[self.position - 1] % count

    def number(self, limit):
        high, low = self.pick(256), self.pick(256)
        return (high * 256 + low) % max(limit, 1)

    def chunk(self):
        size = min(self.pick(32), self.left())
        piece = self.data[self.position : self.position + size]
        self.position += size
        return piece


def _mutate(seed, choices):
    data = bytearray(seed)
    for _ in range(1 + choices.pick(8)):
        if not choices.left():
            break
        op = choices.pick(8)
        at = choices.number(len(data) + 1)
        if op <= 2:
            data[at:at] = _TOKENS[choices.pick(len(_TOKENS))]
        elif op == 3:
            data[at:at] = choices.chunk()
        elif op == 4:
            del data[at : at + 1 + choices.pick(16)]
        elif op == 5:
            line_end = data.find(b"\n")
            header = bytes(data[: line_end + 1]) if line_end >= 0 else bytes(data)
            data[at:at] = header
        elif op == 6:
            data = data[:at]
        else:
            data[at:at] = _HUGE if choices.pick(4) == 0 else b"y" * choices.pick(256)
    return bytes(data)


def _corrupt(content, choices):
    content = bytearray(content)
    for _ in range(1 + choices.pick(4)):
        if choices.pick(3) == 0:
            del content[choices.number(len(content)) :]
        elif content:
            content[choices.number(len(content))] = choices.pick(256)
    return bytes(content)


def _content(data, seed):
    """The file bytes: the fuzzer's own bytes (a quarter of inputs) or a mutated seed."""
    choices = _Choices(data)
    if choices.pick(4) == 0:
        return data[1:], choices
    return _mutate(seed, choices), choices


def _check_strings(frame, column, nonblank):
    values = frame[column]
    assert values.map(lambda v: isinstance(v, str)).all(), f"non-str value in {column!r}"
    if nonblank:
        assert values.str.strip().ne("").all(), f"blank text in {column!r}"


def _check_labels(frame):
    labels = frame["label"]
    if labels.dtype != np.int64:
        assert labels.map(lambda v: isinstance(v, str) and v.strip() == v and v).all(), (
            f"labels neither int64 nor stripped non-empty strings: {labels.dtype}"
        )


def _write(path, content):
    with open(path, "wb") as f:
        f.write(content)


def _run(call, root, check):
    """Runs a loader and checks its result or its DataError; other errors fail."""
    try:
        result = call()
    except DataError as error:
        message = str(error)
        assert "\n" not in message and "\r" not in message, f"multi-line message: {message!r}"
        assert message.startswith(root), f"message does not name the file: {message[:200]!r}"
        assert len(message) < 2000, f"message of {len(message)} characters"
        return
    except Exception as error:  # every other type is a loader bug
        raise AssertionError(f"{type(error).__name__}: {str(error)[:300]}") from error
    check(result)


def _file_target(suffix, seed, call, check, compress=None):
    def target(data):
        content, choices = _content(data, seed)
        if compress is not None and choices.pick(4) != 0:
            # Mostly a valid stream of bad content, some of it then corrupted.
            content = compress(content)
            if choices.pick(2):
                content = _corrupt(content, choices)
        with tempfile.TemporaryDirectory() as root:
            path = os.path.join(root, "input" + suffix)
            _write(path, content)
            _run(lambda: call(path, choices), root, check)

    return target


_OPTIONS = [
    {}, {"label_column": None}, {"target_column": "summary"},
    {"drop_empty": True, "target_column": "summary"}, {"encoding": "cp1252"}, {"encoding": "utf-16"},
]


def _load_table(path, choices):
    options = _OPTIONS[choices.pick(len(_OPTIONS))]
    frame = load_table(path, **options)
    frame.attrs["options"] = options
    return frame


def _columns_check(columns, texts=()):
    def check(frame):
        assert frame.columns.tolist() == list(columns), frame.columns.tolist()
        assert len(frame) > 0, "an empty frame instead of DataError"
        assert not frame.isna().any().any(), "NaN in the frame"
        for column in texts:
            _check_strings(frame, column, nonblank=True)

    return check


def _check_table(frame):
    options = frame.attrs.get("options", {})
    columns = ["text"]
    if options.get("label_column", "label") is not None:
        columns.append("label")
    if options.get("target_column"):
        columns.append("target")
    _columns_check(columns, [c for c in columns if c != "label"])(frame)
    if "label" in frame:
        _check_labels(frame)


@functools.lru_cache(maxsize=1)
def _parquet_seed():
    buffer = io.BytesIO()
    _FRAME.to_parquet(buffer)
    return buffer.getvalue()


def _arrow_column(choices, rows):
    picks = [choices.pick(4) for _ in range(rows)]
    words = [["good", "", "  ", None][p] for p in picks]
    builders = [
        lambda: pa.array(words, pa.string()),
        lambda: pa.array(words, pa.string()).dictionary_encode(),
        lambda: pa.array([None if p == 3 else p for p in picks], pa.int64()),
        lambda: pa.array([[p] * p for p in picks], pa.list_(pa.int64())),
        lambda: pa.array([{"a": p} for p in picks]),
        lambda: pa.array([b"\xff" * p for p in picks], pa.binary()),
        lambda: pa.array([float("nan") if p == 3 else p / 2 for p in picks], pa.float64()),
        lambda: pa.array([p % 2 == 0 for p in picks], pa.bool_()),
        lambda: pa.nulls(rows),
    ]
    return builders[choices.pick(len(builders))]()


def _generated_parquet(choices):
    # Valid files with odd column types, dictionary encoding and repeated names.
    rows = choices.pick(4)
    names = ["text", "label", "summary", "other"]
    count = 1 + choices.pick(4)
    columns = [_arrow_column(choices, rows) for _ in range(count)]
    table = pa.Table.from_arrays(columns, names=[names[choices.pick(4)] for _ in range(count)])
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _parquet_target(data):
    # Raw bytes, a valid file with bytes flipped, or a generated valid file.
    choices = _Choices(data)
    mode = choices.pick(4)
    if mode == 0:
        content = data[1:]
    elif mode == 1:
        content = _generated_parquet(choices)
    else:
        content = _corrupt(_parquet_seed(), choices)
    with tempfile.TemporaryDirectory() as root:
        path = os.path.join(root, "input.parquet")
        _write(path, content)
        _run(lambda: _load_table(path, choices), root, _check_table)


def _imdb_tree_target(data):
    # Reviews cut from the bytes, spread over pos/ and neg/ under valid names.
    content, choices = _content(data, _SEEDS["review"])
    with tempfile.TemporaryDirectory() as root:
        count = 1 + choices.pick(4)
        step = max(1, len(content) // count)
        for index in range(count):
            folder = os.path.join(root, "train", ("pos", "neg")[choices.pick(2)])
            os.makedirs(folder, exist_ok=True)
            name = os.path.join(folder, f"{index}_{1 + choices.pick(10)}.txt")
            if choices.pick(16) == 0:  # a directory where a review should be
                os.makedirs(name)
                continue
            _write(name, content[index * step : (index + 1) * step])
        _run(lambda: read_imdb(root), root, _columns_check(["text", "label"]))


def _archive_seed(kind):
    spa = _SEEDS["pairs"] * 20
    buffer = io.BytesIO()
    if kind == "zip":
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
            zipped.writestr("spa-eng/spa.txt", spa)
    else:
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            info = tarfile.TarInfo("spa-eng/spa.txt")
            info.size = len(spa)
            tar.addfile(info, io.BytesIO(spa))
    return buffer.getvalue()


def _archive_target(kind):
    seed = _archive_seed(kind)

    def target(data):
        # What load_dataset does after keras.utils.get_file has the archive.
        choices = _Choices(data)
        content = data[1:] if choices.pick(8) == 0 else _corrupt(seed, choices)
        with tempfile.TemporaryDirectory() as root:
            archive = os.path.join(root, f"spa-eng.{kind}")
            _write(archive, content)
            base = os.path.join(root, "datasets")

            def call():
                datasets._unpack(archive, os.path.join(base, "spa_eng"), "file://" + archive)
                reader = datasets._locate("spa_eng", base, "all")
                if reader is None:
                    raise DataError("no spa.txt in the archive", path=archive)
                return reader()

            _run(call, root, _columns_check(["source", "target"], ["source", "target"]))

    return target


def _label_check(vocabulary):
    assert isinstance(vocabulary, LabelVocabulary)
    assert all(isinstance(label, str) and label for label in vocabulary.labels)


def _targets():
    table = lambda path, choices: _load_table(path, choices)  # noqa: E731
    targets = {}
    for fmt in ("csv", "tsv", "json", "jsonl"):
        targets[f"table_{fmt}"] = _file_target(f".{fmt}", _SEEDS[fmt], table, _check_table)
    for fmt, suffix in _COMPRESSED:
        targets[f"table_{fmt}{suffix.replace('.', '_')}"] = _file_target(
            f".{fmt}{suffix}", _SEEDS[fmt], table, _check_table, compress=_COMPRESS[suffix]
        )
    targets["table_parquet"] = _parquet_target
    sst2 = lambda frame: _check_strings(frame, "text", nonblank=True)  # noqa: E731
    targets["sst2"] = _file_target(".tsv", _SEEDS["sst2"], lambda path, _: read_sst2(path), sst2)
    targets["imdb_csv"] = _file_target(
        ".csv", _SEEDS["imdb"], lambda path, _: read_imdb(path), _columns_check(["text", "label"])
    )
    targets["imdb_tree"] = _imdb_tree_target
    samsum = _columns_check(["dialogue", "summary"], ["dialogue", "summary"])
    for suffix in ("csv", "json"):
        targets[f"samsum_{suffix}"] = _file_target(
            f".{suffix}", _SEEDS[f"samsum_{suffix}"], lambda path, _: read_samsum(path), samsum
        )
    targets["dailydialog"] = _file_target(
        ".txt", _SEEDS["dailydialog"],
        lambda path, choices: read_dailydialog(path, context_turns=1 + choices.pick(3)),
        _columns_check(["context", "response", "dialogue_id"], ["context", "response"]),
    )
    targets["translation_pairs"] = _file_target(
        ".txt", _SEEDS["pairs"],
        lambda path, choices: read_translation_pairs(path, encoding=_ENCODINGS[choices.pick(4)]),
        _columns_check(["source", "target"], ["source", "target"]),
    )
    targets["label_vocabulary"] = _file_target(
        ".txt", _SEEDS["labels"], lambda path, _: LabelVocabulary.load(path), _label_check
    )
    targets["archive_zip"] = _archive_target("zip")
    targets["archive_tgz"] = _archive_target("tgz")
    return targets


TARGETS = _targets()

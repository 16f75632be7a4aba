"""load_table, LabelVocabulary and train_val_split on small files written here."""

import json
import pickle

import numpy as np
import pandas as pd
import pytest

from tfllm.data import DataError, LabelVocabulary, load_table, train_val_split


def write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


FRAME = pd.DataFrame(
    {
        "review": ["Great film, loved it", "Dull and long", "It was fine"],
        "sentiment": ["positive", "negative", "neutral"],
        "summary": ["liked", "disliked", "ok"],
    }
)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "jsonl", "parquet", "csv.gz", "jsonl.bz2"])
def test_reads_every_format_with_renamed_columns(tmp_path, fmt):
    path = tmp_path / f"table.{fmt}"
    if fmt in ("csv", "csv.gz"):
        FRAME.to_csv(path, index=False)
    elif fmt == "tsv":
        FRAME.to_csv(path, sep="\t", index=False)
    elif fmt == "json":
        FRAME.to_json(path, orient="records")
    elif fmt.startswith("jsonl"):
        FRAME.to_json(path, orient="records", lines=True)
    else:
        FRAME.to_parquet(path)
    frame = load_table(path, "review", "sentiment", target_column="summary")
    assert frame.columns.tolist() == ["text", "label", "target"]
    assert frame.text.tolist() == FRAME.review.tolist()
    assert frame.label.tolist() == FRAME.sentiment.tolist()
    assert frame.target.tolist() == FRAME.summary.tolist()


def test_format_argument_overrides_extension_and_json_columns_orient(tmp_path):
    path = write(tmp_path, "data.txt", json.dumps({"text": ["a", "b"], "label": [1, 0]}))
    frame = load_table(path, format="json")
    assert frame.text.tolist() == ["a", "b"] and frame.label.tolist() == [1, 0]


def test_int_labels_stay_ints_and_text_like_na_is_text(tmp_path):
    path = write(tmp_path, "t.csv", "text,label\nNA,1\nNone,0\n123,2\n")
    frame = load_table(path)
    assert frame.text.tolist() == ["NA", "None", "123"]
    assert frame.label.dtype == np.int64 and frame.label.tolist() == [1, 0, 2]


def test_unlabelled_file_and_utf8_bom(tmp_path):
    path = write(tmp_path, "p.csv", "\ufefftext\nhello\nworld\n")
    frame = load_table(path, label_column=None)
    assert frame.columns.tolist() == ["text"] and frame.text.tolist() == ["hello", "world"]


def test_tsv_is_read_without_quoting(tmp_path):
    path = write(tmp_path, "q.tsv", 'text\tlabel\n"quoted start\t1\nnext row\t0\n')
    frame = load_table(path)
    assert frame.text.tolist() == ['"quoted start', "next row"]


def test_other_encoding_reads_when_passed(tmp_path):
    path = write(tmp_path, "l.csv", "text,label\ncaf\xe9 au lait,1\n".encode("latin-1"))
    assert load_table(path, encoding="latin-1").text.tolist() == ["caf\xe9 au lait"]


def test_drop_empty_drops_and_logs(tmp_path, caplog):
    path = write(tmp_path, "d.csv", "text,label\ngood,1\n,0\nbad,\nfine,1\n")
    frame = load_table(path, drop_empty=True)
    assert frame.text.tolist() == ["good", "fine"] and frame.label.tolist() == [1, 1]
    assert "dropped 2 of 4 rows" in caplog.text


# (file name, content, load_table kwargs, fragments the message must contain)
BAD_INPUTS = [
    ("missing.csv", None, {}, ["missing.csv", "no such file"]),
    ("data.xlsx", "x", {}, ["data.xlsx", "unknown format '.xlsx'"]),
    ("data.csv", "x", {"format": "xml"}, ["data.csv", "unknown format 'xml'"]),
    ("empty.csv", "", {}, ["empty.csv", "file is empty"]),
    ("header.csv", "text,label\n", {}, ["header.csv", "no rows (only a header)"]),
    ("empty.jsonl", "\n\n", {}, ["empty.jsonl", "file is empty"]),
    ("empty.json", "[]", {}, ["empty.json", "no rows"]),
    (
        "cols.csv",
        "review,stars\nok,1\n",
        {},
        ["cols.csv", "no text column 'text'", "columns are: 'review', 'stars'"],
    ),
    (
        "nolabel.csv",
        "text,stars\nok,1\n",
        {},
        ["nolabel.csv", "no label column 'label'", "'text', 'stars'", "label_column=None"],
    ),
    (
        "notarget.csv",
        "text,label\nok,1\n",
        {"target_column": "summary"},
        ["notarget.csv", "no text column 'summary'"],
    ),
    ("blank.csv", "text,label\nok,1\n   ,0\nfine,1\n", {}, ["blank.csv", "row 2", "empty text"]),
    ("nan.csv", "text,label\nok,1\nfine,0\n,1\n,0\n", {}, ["nan.csv", "row 3", "empty text in column 'text'", "2 rows"]),
    ("label.csv", "text,label\nok,1\nfine,\n", {}, ["label.csv", "row 2", "missing label in column 'label'"]),
    ("nan.jsonl", '{"text": "a", "label": 1}\n{"text": null, "label": 0}\n', {}, ["nan.jsonl", "row 2", "empty text"]),
    ("bad.jsonl", '{"text": "a", "label": 1}\n{"text": \n', {}, ["bad.jsonl", "line 2", "not valid JSON"]),
    ("bad.json", '[{"text": "a",\n "label": 1},\n {oops}]', {}, ["bad.json", "line 3", "not valid JSON"]),
    ("scalar.json", "42", {}, ["scalar.json", "expected a JSON list of row objects"]),
    ("fields.csv", "text,label\nok,1\nfine,0,extra\n", {}, ["fields.csv", "line 3", "expected 2 fields, found 3"]),
    ("broken.parquet", "not parquet at all", {}, ["broken.parquet", "not a readable Parquet file"]),
    ("broken.csv.gz", "not gzip", {}, ["broken.csv.gz", "cannot decompress"]),
    ("codec.csv", "text,label\na,1\n", {"encoding": "klingon"}, ["codec.csv", "unknown encoding 'klingon'"]),
    (
        "latin.csv",
        "text,label\nfine,1\ncaf\xe9,0\n".encode("latin-1"),
        {},
        ["latin.csv", "row 2", "not valid utf-8", "byte 0xe9", "encoding='cp1252'", "--encoding cp1252"],
    ),
    (
        "latin.jsonl",
        '{"text": "ok", "label": 1}\n{"text": "caf\xe9", "label": 0}\n'.encode("latin-1"),
        {},
        ["latin.jsonl", "line 2", "not valid utf-8", "encoding="],
    ),
]


@pytest.mark.parametrize(
    "name,content,kwargs,fragments", BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS]
)
def test_bad_input_gives_one_line_message(tmp_path, name, content, kwargs, fragments):
    path = tmp_path / name if content is None else write(tmp_path, name, content)
    with pytest.raises(DataError) as info:
        load_table(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    for fragment in fragments:
        assert fragment in message, message
    assert isinstance(info.value, ValueError)


def test_directory_and_error_pickles(tmp_path):
    with pytest.raises(DataError, match="is a directory"):
        load_table(tmp_path)
    error = pickle.loads(pickle.dumps(DataError("bad", path="f.csv", row=3)))
    assert str(error) == "f.csv: row 3: bad" and error.row == 3


def test_label_vocabulary_sorts_encodes_and_decodes():
    vocab = LabelVocabulary.from_labels(["positive", "negative", "neutral", "positive"])
    assert vocab.labels == ["negative", "neutral", "positive"] and len(vocab) == 3
    assert vocab.encode(["neutral", "positive"]).tolist() == [1, 2]
    assert vocab.encode(["neutral"]).dtype == np.int64
    assert vocab.decode(np.array([2, 0])) == ["positive", "negative"]
    ints = LabelVocabulary.from_labels([10, 2, 1, 2])
    assert ints.labels == ["1", "2", "10"]
    assert ints.encode([10, "2", np.int64(1)]).tolist() == [2, 1, 0]
    with pytest.raises(ValueError, match="out of range"):
        vocab.decode([3])


def test_unseen_label_names_file_and_row():
    vocab = LabelVocabulary.from_labels(["negative", "positive"])
    with pytest.raises(DataError) as info:
        vocab.encode(["positive", "negative", "mixed"], source="val.csv")
    message = str(info.value)
    assert message.startswith("val.csv: row 3: label 'mixed' was not seen in training")
    assert "negative, positive" in message


def test_label_vocabulary_round_trip_and_load_errors(tmp_path):
    vocab = LabelVocabulary.from_labels(["négatif", "positif", "neutre"])
    path = tmp_path / "model" / "labels.txt"
    vocab.save(path)
    assert path.read_text(encoding="utf-8") == "neutre\nnégatif\npositif\n"
    assert LabelVocabulary.load(path) == vocab
    with pytest.raises(DataError, match="no such label file"):
        LabelVocabulary.load(tmp_path / "nope.txt")
    empty = write(tmp_path, "empty.txt", "")
    with pytest.raises(DataError, match="empty.txt: label file is empty"):
        LabelVocabulary.load(empty)
    gap = write(tmp_path, "gap.txt", "a\n\nb\n")
    with pytest.raises(DataError, match="gap.txt: row 2: empty label"):
        LabelVocabulary.load(gap)


def test_stratified_split_keeps_class_ratios_and_is_seeded():
    labels = ["a"] * 60 + ["b"] * 30 + ["c"] * 10
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(100)], "label": labels})
    train, val = train_val_split(frame, 0.2, seed=3)
    assert len(train) == 80 and len(val) == 20
    assert val.label.value_counts().to_dict() == {"a": 12, "b": 6, "c": 2}
    assert train.label.value_counts().to_dict() == {"a": 48, "b": 24, "c": 8}
    assert set(train.text).isdisjoint(val.text)
    assert set(train.text) | set(val.text) == set(frame.text)
    again, _ = train_val_split(frame, 0.2, seed=3)
    other, _ = train_val_split(frame, 0.2, seed=4)
    assert again.text.tolist() == train.text.tolist()
    assert other.text.tolist() != train.text.tolist()


def test_unstratified_split_and_argument_errors():
    frame = pd.DataFrame({"text": [str(i) for i in range(10)]})
    train, val = train_val_split(frame, 0.3, seed=0, stratify_column=None)
    assert len(train) == 7 and len(val) == 3
    train, val = train_val_split(frame, 0.3)  # no "label" column: plain split
    assert len(val) == 3
    with pytest.raises(ValueError, match="val_fraction=1.5"):
        train_val_split(frame, 1.5)
    singletons = pd.DataFrame({"text": ["a", "b"], "label": [0, 1]})
    with pytest.raises(ValueError, match="stratify_column=None"):
        train_val_split(singletons)


def test_grouped_split_keeps_rows_linked_by_either_column_together():
    # Chains: e0-s0, e0-s1, e1-s1 form one group of three rows; the rest are pairs or single rows.
    source = ["e0", "e0", "e1"] + [f"x{i // 2}" for i in range(40)] + [f"y{i}" for i in range(57)]
    target = ["s0", "s1", "s1"] + [f"u{i}" for i in range(40)] + [f"v{i}" for i in range(57)]
    frame = pd.DataFrame({"source": source, "target": target, "row": range(100)})
    for seed in range(5):
        train, val = train_val_split(frame, 0.2, seed=seed, group_columns=("source", "target"))
        assert set(train.source).isdisjoint(val.source) and set(train.target).isdisjoint(val.target)
        assert len(train) + len(val) == 100 and 17 <= len(val) <= 20
        assert {"e0", "e1"} <= set(train.source) or {"e0", "e1"} <= set(val.source)
        assert train.row.is_monotonic_increasing and val.row.is_monotonic_increasing
    first, _ = train_val_split(frame, 0.2, seed=1, group_columns=("source", "target"))
    again, _ = train_val_split(frame, 0.2, seed=1, group_columns=("source", "target"))
    other, _ = train_val_split(frame, 0.2, seed=2, group_columns=("source", "target"))
    assert first.row.tolist() == again.row.tolist() != other.row.tolist()
    linked = pd.DataFrame({"source": ["a", "a", "a"], "target": ["x", "y", "z"]})
    with pytest.raises(ValueError, match="nothing to split"):
        train_val_split(linked, 0.5, group_columns=("source", "target"))

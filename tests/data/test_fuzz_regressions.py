"""Inputs the loader fuzzers found, one test per bug: an exception other than DataError, a huge message, or text not read as written."""

import gzip
import io
import json
import warnings

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tfllm.data import (
    DataError,
    LabelVocabulary,
    load_table,
    read_dailydialog,
    read_imdb,
    read_sst2,
    read_translation_pairs,
)
from tfllm.data.conll import read_conll, read_entity_table
from tfllm.data.squad import read_squad


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    return path


def message_of(call):
    with pytest.raises(DataError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and len(message) < 400, message
    return message


@pytest.mark.parametrize(
    "name,content,where",
    [
        # Not UTF-8 and an unterminated quote: pandas' ParserError escaped.
        ("quote.csv", b'text,label\ncaf\xe9,1\n"open,0\n', "line 2"),
        # Not UTF-8 and a row with an extra field.
        ("fields.tsv", b"text\tlabel\ncaf\xe9\t1\nok\t0\textra\n", "line 2"),
    ],
    ids=["quote", "fields"],
)
def test_undecodable_and_malformed_delimited_file(tmp_path, name, content, where):
    path = write(tmp_path, name, content)
    message = message_of(lambda: load_table(path))
    assert message.startswith(f"{path}: {where}: not valid utf-8 (byte 0xe9)"), message


def test_undecodable_row_is_still_named_when_the_text_parses(tmp_path):
    path = write(tmp_path, "latin.csv", b"text,label\nfine,1\nok,0\ncaf\xe9,1\n")
    assert f"{path}: row 3: not valid utf-8" in message_of(lambda: load_table(path))


def test_utf16_without_byte_order_mark(tmp_path):
    # pandas raises UnicodeError (not UnicodeDecodeError) for this one.
    path = write(tmp_path, "u.csv", b"text,label\nab,1\n")
    message = message_of(lambda: load_table(path, encoding="utf-16"))
    assert message.startswith(f"{path}: cannot read as utf-16"), message


def test_parquet_string_that_is_not_utf8(tmp_path):
    buffer = io.BytesIO()
    pd.DataFrame({"text": ["fine", "Dull long"], "label": [1, 0]}).to_parquet(buffer)
    raw = bytearray(buffer.getvalue())
    raw[raw.find(b"Dull long") + 4] = 0xFF
    path = write(tmp_path, "bad.parquet", bytes(raw))
    # Arrow-backed strings decode lazily: this escaped as ArrowException from select_columns.
    message = message_of(lambda: load_table(path))
    assert message == f"{path}: row 2: column 'text': not valid UTF-8", message


@pytest.mark.parametrize(
    "header",
    [b"x" * 100_000 + b",label", b",".join(b"c%d" % i for i in range(5000))],
    ids=["huge-field", "many-fields"],
)
def test_broken_header_gives_a_short_column_list(tmp_path, header):
    path = write(tmp_path, "wide.csv", header + b"\n" + b"a," * 10 + b"b\n")
    message = message_of(lambda: load_table(path))
    assert "no text column 'text'; columns are: " in message


def test_label_file_that_is_not_utf8(tmp_path):
    path = write(tmp_path, "labels.txt", b"negative\ncaf\xe9\n")
    assert message_of(lambda: LabelVocabulary.load(path)) == f"{path}: row 2: not valid UTF-8"


def test_label_file_with_a_repeated_label(tmp_path):
    labels = b"".join(b"label%d\n" % i for i in range(5000)) + b"label7\n"
    path = write(tmp_path, "labels.txt", labels)
    message = message_of(lambda: LabelVocabulary.load(path))
    assert message == f"{path}: row 5001: label 'label7' repeats row 8"


def test_label_file_with_byte_order_mark(tmp_path):
    path = write(tmp_path, "labels.txt", b"\xef\xbb\xbfnegative\r\npositive\r\n")
    assert LabelVocabulary.load(path).labels == ["negative", "positive"]


@pytest.mark.parametrize(
    "name,content",
    [("deep.json", b"[" * 100_000), ("deep.jsonl", b'{"text": "a", "label": 1}\n' + b"[" * 100_000)],
    ids=["json", "jsonl"],
)
def test_deeply_nested_json(tmp_path, name, content):
    # json.loads raised RecursionError.
    path = write(tmp_path, name, content)
    assert "JSON nested too deeply" in message_of(lambda: load_table(path))


def corrupt_deflate(data):
    raw = bytearray(gzip.compress(data))
    raw[12:16] = b"\xff\xff\xff\xff"  # inside the deflate stream, after the 10-byte header
    return bytes(raw)


@pytest.mark.parametrize(
    "name,content",
    [
        ("bad.csv.gz", corrupt_deflate(b"text,label\n" + b"good,1\n" * 50)),
        ("bad.jsonl.gz", corrupt_deflate(b'{"text": "a", "label": 1}\n' * 50)),
        # bz2's "Invalid data stream" is an OSError, which the CSV path let through.
        ("bad.csv.bz2", b"text,label\nnot bz2,1\n"),
    ],
    ids=["csv.gz", "jsonl.gz", "csv.bz2"],
)
def test_damaged_compressed_file(tmp_path, name, content):
    # zlib.error escaped from both the pandas and the JSON path.
    path = write(tmp_path, name, content)
    assert f"{path}: cannot decompress" in message_of(lambda: load_table(path))


def binary_parquet(tmp_path, texts):
    path = tmp_path / "binary.parquet"
    pq.write_table(pa.table({"text": pa.array(texts, pa.binary()), "label": [1] * len(texts)}), path)
    return path


def test_parquet_binary_text_column_is_decoded(tmp_path):
    # str(b"good") gave the text "b'good'".
    frame = load_table(binary_parquet(tmp_path, [b"good", "caf\xe9".encode()]))
    assert frame.text.tolist() == ["good", "caf\xe9"]


def test_parquet_binary_text_column_that_is_not_utf8(tmp_path):
    # pandas' astype(str) decoded the bytes and raised UnicodeDecodeError.
    path = binary_parquet(tmp_path, [b"good", b"\xff"])
    assert message_of(lambda: load_table(path)) == f"{path}: row 2: column 'text': not valid UTF-8"


@pytest.mark.parametrize("header", ["text,label,text", "text,label,label"])
def test_repeated_header_column_is_refused(tmp_path, header):
    # pandas renamed the second one to "text.1", and one of the two was picked silently.
    path = write(tmp_path, "repeat.csv", f"{header}\na,1,b\n".encode())
    name = header.rsplit(",", 1)[1]
    message = message_of(lambda: load_table(path))
    assert message == f"{path}: the header names column {name!r} more than once"


def test_repeated_unused_column_and_dotted_names_still_load(tmp_path):
    path = write(tmp_path, "ok.csv", b"text,label,x,x,text.1\na,1,2,3,b\n")
    assert load_table(path).to_dict("list") == {"text": ["a"], "label": [1]}


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
@pytest.mark.parametrize("rows", [["007", "12"], ["1e5", "2.50"], ["false", "true"]])
def test_numeric_looking_text_is_kept_as_written(tmp_path, fmt, rows):
    # Inferred as numbers and bools, "007" became "7", "1e5" "100000.0", "false" "False".
    sep = "\t" if fmt == "tsv" else ","
    content = f"text{sep}label\n" + "".join(f"{text}{sep}{i}\n" for i, text in enumerate(rows))
    frame = load_table(write(tmp_path, f"n.{fmt}", content.encode()))
    assert frame.text.tolist() == rows and frame.label.tolist() == [0, 1]


def test_readers_keep_numeric_looking_text(tmp_path):
    path = write(tmp_path, "train.tsv", b"sentence\tlabel\n10 \t1\n3.0\t0\n")
    assert read_sst2(path).text.tolist() == ["10", "3.0"]


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
def test_jsonl_text_holding_unicode_line_separators(tmp_path, separator):
    # str.splitlines() cut these valid records in two: "not valid JSON".
    record = json.dumps({"text": f"a{separator}b", "label": 1}, ensure_ascii=False)
    path = write(tmp_path, "u.jsonl", (record + "\n").encode())
    assert load_table(path).text.tolist() == [f"a{separator}b"]


def test_float_labels_beyond_int64_stay_text(tmp_path):
    # 1e20 was cast to int64 and wrapped around to -9223372036854775808.
    path = write(tmp_path, "big.json", b'[{"text": "a", "label": 1e20}, {"text": "b", "label": 1}]')
    assert load_table(path).label.tolist() == ["1e+20", "1.0"]


def test_infinite_float_label_gives_no_numpy_warning(tmp_path):
    path = write(tmp_path, "inf.json", b'[{"text": "a", "label": Infinity}, {"text": "b", "label": 1}]')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_table(path).label.tolist() == ["inf", "1.0"]


def test_imdb_review_that_cannot_be_read(tmp_path):
    # IsADirectoryError escaped from the review loop.
    (tmp_path / "train" / "pos" / "1_2.txt").mkdir(parents=True)
    (tmp_path / "train" / "neg").mkdir()
    message = message_of(lambda: read_imdb(tmp_path))
    assert message.startswith(f"{tmp_path / 'train' / 'pos' / '1_2.txt'}: cannot read"), message


def test_translation_pairs_unknown_encoding(tmp_path):
    # LookupError escaped.
    path = write(tmp_path, "spa.txt", b"Go.\tVe.\n")
    assert message_of(lambda: read_translation_pairs(path, encoding="klingon")) == (
        f"{path}: unknown encoding 'klingon'"
    )


def test_translation_pairs_in_utf16(tmp_path):
    # Lines were cut at b"\n" before decoding, which splits UTF-16 characters.
    path = write(tmp_path, "spa.txt", "Go.\tVe.\nI am hungry.\tTengo hambre.\n".encode("utf-16"))
    frame = read_translation_pairs(path, encoding="utf-16")
    assert frame.target.tolist() == ["Ve.", "Tengo hambre."]


def test_parquet_column_name_that_is_not_utf8(tmp_path):
    # UnicodeDecodeError escaped from reading the column names.
    buffer = io.BytesIO()
    pq.write_table(pa.table({"text": ["a"], "zzzq": [1]}), buffer)
    path = write(tmp_path, "names.parquet", buffer.getvalue().replace(b"zzzq", b"zz\xffq"))
    assert "not a readable Parquet file" in message_of(lambda: load_table(path))


def test_byte_order_mark_stays_out_of_dailydialog_and_imdb_texts(tmp_path):
    # The mark became the first character of the first context or review.
    path = write(tmp_path, "dialogues_train.txt", b"\xef\xbb\xbfHi . __eou__ Hello . __eou__\n")
    assert read_dailydialog(path).context.tolist() == ["Hi ."]
    (tmp_path / "pos").mkdir()
    (tmp_path / "neg").mkdir()
    write(tmp_path / "pos", "0_9.txt", b"\xef\xbb\xbfGreat.")
    assert read_imdb(tmp_path).text.tolist() == ["Great."]


LONG_NUMBER = b"1" * 5000  # over Python's int_max_str_digits (4300)
ENTITIES = "row 1: column 'entities': "


def squad_file(answer_start=0, title="T", text="a"):
    answers = [{"text": text, "answer_start": answer_start}]
    qas = [{"id": "q", "question": "Which?", "answers": answers}]
    return json.dumps({"data": [{"title": title, "paragraphs": [{"context": "abc", "qas": qas}]}]}).encode()


@pytest.mark.parametrize(
    "name,content,read,where",
    [
        ("long.json", b'[{"text": "a", "label": ' + LONG_NUMBER + b"}]", load_table, ""),
        ("long.jsonl", b'{"text": "a", "label": 1}\n{"label": ' + LONG_NUMBER + b"}\n", load_table, "line 2: "),
        ("long_squad.json", LONG_NUMBER, read_squad, ""),
        ("long.csv", b'text,entities\nabc,"[[' + LONG_NUMBER + b', 1, ""A""]]"\n', read_entity_table, ENTITIES),
        ("deep_squad.json", b"[" * 100_000, read_squad, ""),
        ("deep.csv", b"text,entities\nabc," + b"[" * 100_000 + b"\n", read_entity_table, ENTITIES),
    ],
    ids=["table-json", "table-jsonl", "squad-long", "entities-long", "squad-deep", "entities-deep"],
)
def test_json_too_long_or_too_deep_to_parse(tmp_path, name, content, read, where):
    # json.loads raised ValueError (digits) or RecursionError (nesting).
    path = write(tmp_path, name, content)
    message = message_of(lambda: read(path))
    assert message.startswith(f"{path}: {where}") and ("too long" in message or "too deeply" in message), message


def test_negative_answer_start_is_refused(tmp_path):
    # context[-3:-2] read "a" from the end, so a negative offset passed the check.
    path = write(tmp_path, "squad.json", squad_file(answer_start=-3))
    assert "answer_start must be an integer from 0, got -3" in message_of(lambda: read_squad(path))


@pytest.mark.parametrize(
    "name,content,read",
    [
        ("huge.conll", b"word X" + b"x" * 100_000 + b"\n", read_conll),
        ("huge_title.json", squad_file(answer_start=1, title="t" * 100_000), read_squad),
        ("huge_answer.json", squad_file(answer_start=1, text="b" * 100_000), read_squad),
        ("huge.jsonl", b'{"text": "abc", "entities": [[0, 1, "' + b"x " * 50_000 + b'"]]}\n', read_entity_table),
    ],
    ids=["conll-tag", "squad-title", "squad-answer", "entity-type"],
)
def test_huge_values_are_cut_in_messages(tmp_path, name, content, read):
    # The whole value was quoted: messages of 100 000 characters.
    path = write(tmp_path, name, content)
    message_of(lambda: read(path))


def test_entity_table_with_a_repeated_entities_column(tmp_path):
    # pandas renamed the second one and the first was read silently.
    path = write(tmp_path, "spans.csv", b'text,entities,entities\nabc,[],"[[0, 1, ""A""]]"\n')
    assert "names column 'entities' more than once" in message_of(lambda: read_entity_table(path))

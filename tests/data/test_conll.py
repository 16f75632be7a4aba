"""CoNLL files and entity tables: IOB1 -> IOB2, one-line errors naming the line or row and field."""

import json

import pytest

from tfllm.data.conll import TaggedSentences, load_conll_sample, read_conll, read_entity_table, to_iob2
from tfllm.data.errors import DataError

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
"""


def write(tmp_path, text, name="data.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_reads_sentences_skipping_docstart(tmp_path):
    sentences = read_conll(write(tmp_path, CONLL))
    assert sentences.words == [["EU", "rejects", "German", "call", "."], ["Peter", "Blackburn"]]
    assert sentences.tags == [["B-ORG", "O", "B-MISC", "O", "O"], ["B-PER", "I-PER"]]
    assert sentences.scheme == "IOB2"
    assert sentences.texts() == ["EU rejects German call .", "Peter Blackburn"]


def test_iob1_is_detected_and_converted():
    assert to_iob2(["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG"]) == [
        "B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG"]


def test_iob1_file(tmp_path):
    text = "U.N. NNP I-NP I-ORG\nofficial NN I-NP O\nEkeus NNP I-NP I-PER\nheads VBZ I-VP O\n"
    sentences = read_conll(write(tmp_path, text))
    assert sentences.scheme == "IOB1"
    assert sentences.tags == [["B-ORG", "O", "B-PER", "O"]]


@pytest.mark.parametrize("text, needle", [
    ("EU NNP B-NP B-ORG\nrejects VBZ O\n", "line 2: expected 4 columns like line 1, found 3"),
    ("EU NNP B-NP B-ORG\nrejects VBZ B-VP X-ORG\n", "line 2: tag 'X-ORG' is not IOB"),
    ("EU NNP B-NP E-ORG\n", "line 1: tag 'E-ORG' is not IOB"),
    ("EU\n", "line 1: expected a word and a tag, found 1 column"),
    ("-DOCSTART- O\n\n", "no tagged sentences"),
])
def test_malformed_lines_name_the_line(tmp_path, text, needle):
    path = write(tmp_path, text)
    with pytest.raises(DataError) as error:
        read_conll(path)
    assert str(error.value).startswith(path) and needle in str(error.value)
    assert "\n" not in str(error.value)


def test_entity_table_reads_json_spans(tmp_path):
    rows = [
        {"text": "Anna Berg lives in Oslo.", "entities": [[0, 9, "PER"], {"start": 19, "end": 23, "type": "LOC"}]},
        {"text": "Nothing here.", "entities": []},
    ]
    path = tmp_path / "spans.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    texts, spans = read_entity_table(str(path))
    assert texts == [rows[0]["text"], rows[1]["text"]]
    assert spans == [[(0, 9, "PER"), (19, 23, "LOC")], []]


@pytest.mark.parametrize("cell, needle", [
    ('"[[0, 40, ""PER""]]"', "row 1: column 'entities': entity 1 [0, 40) is outside the text"),
    ('"[[0, 4, ""PER""], [2, 6, ""LOC""]]"', "entity 2 [2, 6) overlaps the one before"),
    ('"[[0, 4]]"', "entity 1: expected [start, end, type]"),
    ('"[[0, ""4"", ""PER""]]"', "start and end must be integers"),
    ("not json", "row 1: column 'entities': not valid JSON"),
])
def test_entity_table_errors_name_row_and_column(tmp_path, cell, needle):
    path = write(tmp_path, f"text,entities\nAnna Berg,{cell}\n", "spans.csv")
    with pytest.raises(DataError) as error:
        read_entity_table(path)
    assert needle in str(error.value), str(error.value)


def test_entity_table_missing_column(tmp_path):
    path = write(tmp_path, "text,spans\nAnna,[]\n", "spans.csv")
    with pytest.raises(DataError, match="no entities column 'entities'; columns are: 'text', 'spans'"):
        read_entity_table(path)


def test_builtin_sample_is_iob2_with_four_types():
    sample = load_conll_sample("ner")
    assert isinstance(sample, TaggedSentences) and len(sample) >= 100 and sample.scheme == "IOB2"
    types = {tag[2:] for tags in sample.tags for tag in tags if tag != "O"}
    assert types == {"PER", "ORG", "LOC", "MISC"}

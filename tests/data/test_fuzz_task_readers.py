"""Property-based fuzzing of the task readers: CoNLL files, entity tables, SQuAD files and text corpora.

On almost-valid bytes each reader returns well-formed output or raises a
one-line DataError naming the file; valid generated data reads back as
written. A smoke run of bench/_fuzz_task_data.py closes the file.
"""

import functools
import gzip
import json
import operator
import os
import random
import tempfile

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tfllm.data.conll import parse_entities, read_conll, read_entity_table, to_iob2
from tfllm.data.corpora import read_corpus
from tfllm.data.squad import parse_squad, read_squad

from fuzzing import ENCODED, PIECES, encoded, fuzz_settings, load_bench_module, outcome, texts

fz = load_bench_module("_fuzz_task_data")

TYPES = ["PER", "LOC", "ORG", "MISC"]
CONLL = encoded(texts([
    "-DOCSTART- -X- O\n", "\n", "\n\n", " ", "\t", "\r\n", "\x85", "\u2028", "\ufeff", "EU", "NNP", "B-NP",
    " O\n", " B-PER\n", " I-PER\n", " I-LOC\n", " B-\n", " E-ORG\n", "word POS O\n", "x B-MISC\n",
]))
ENTITY_CELLS = [
    "[]", "[[0, 1, \"PER\"]]", "[[0, 3, \"LOC\"], [4, 5, \"ORG\"]]", "[{\"start\": 0, \"end\": 2, \"label\": \"X\"}]",
    "[[1, 0, \"PER\"]]", "[[0, 99, \"PER\"]]", "[[0, 2, \"A\"], [1, 3, \"B\"]]", "[[0, 1]]", "[[0, 1, \" \"]]",
    "[[true, 1, \"A\"]]", "[[0.5, 1, \"A\"]]", "{\"a\": 1}", "[null]", "not json", "[" * 40, "",
]
TABLE_PIECES = ["text", "entities", ",", "\n", '"', '""', "\t", "{", "}", ":", "[", "]", "Anna Berg", "x"]


@fuzz_settings(150)
@given(data=CONLL)
def test_conll_files_give_aligned_iob2_sentences_or_data_errors(tmp_path, data):
    path = tmp_path / "train.conll"
    path.write_bytes(data)
    sentences = outcome(lambda: read_conll(path), tmp_path)
    if sentences is not None:
        fz.check_sentences(sentences)


# No spaces (they separate columns) and no byte order mark (dropped at the start of a file).
WORD = st.text(min_size=1, max_size=8).filter(
    lambda w: w != "-DOCSTART-" and not any(c.isspace() or c == "\ufeff" for c in w)
)
# A sentence as chunks: (None, n) is n words outside entities, (type, n) one entity of n words.
CHUNKS = st.lists(st.tuples(st.one_of(st.none(), st.sampled_from(TYPES)), st.integers(1, 3)), min_size=1, max_size=4)


def iob2_tags(chunks):
    tags = []
    for kind, size in chunks:
        tags += ["O"] * size if kind is None else [f"B-{kind}"] + [f"I-{kind}"] * (size - 1)
    return tags


def as_iob1(tags):
    # IOB1 writes B- only where an entity touches one of the same type.
    return [
        f"I-{tag[2:]}" if tag.startswith("B-") and (index == 0 or tags[index - 1][2:] != tag[2:]) else tag
        for index, tag in enumerate(tags)
    ]


@fuzz_settings(100)
@given(sentences=st.lists(CHUNKS, min_size=1, max_size=4), words=st.lists(WORD, min_size=12, max_size=12),
       iob1=st.booleans())
def test_conll_files_read_back_in_iob2(tmp_path, sentences, words, iob1):
    tags = [iob2_tags(chunks) for chunks in sentences]
    written = [as_iob1(t) if iob1 else t for t in tags]
    rows = [[words[i % len(words)] for i in range(len(t))] for t in tags]
    path = tmp_path / "train.conll"
    blocks = ["".join(f"{w} NN {tag}\n" for w, tag in zip(r, t)) for r, t in zip(rows, written)]
    path.write_text("-DOCSTART- -X- O\n\n" + "\n".join(blocks), encoding="utf-8")
    read = read_conll(path)
    assert (read.words, read.tags) == (rows, tags)
    assert read.scheme == ("IOB1" if written != tags else "IOB2")
    assert [to_iob2(t) for t in written] == tags


TABLE_TEXT = texts(TABLE_PIECES + ENTITY_CELLS + PIECES)


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "json"])
@fuzz_settings(60)
@given(data=encoded(TABLE_TEXT))
def test_entity_tables_give_checked_spans_or_data_errors(tmp_path, suffix, data):
    path = tmp_path / f"spans.{suffix}"
    path.write_bytes(data)
    result = outcome(lambda: read_entity_table(path), tmp_path)
    if result is not None:
        fz.check_entities(result)


@fuzz_settings(150)
@given(cell=st.one_of(st.sampled_from(ENTITY_CELLS), texts(ENTITY_CELLS + ["[", "]", ",", "0", "5", '"A"', "{}"])),
       text=st.text(max_size=8))
def test_entity_cells_give_spans_inside_the_text_or_data_errors(tmp_path, cell, text):
    path = str(tmp_path / "spans.csv")
    spans = outcome(lambda: parse_entities(cell, text, path=path, row=1, column="entities"), tmp_path)
    if spans is not None:
        fz.check_cell(spans, text)


@st.composite
def entity_rows(draw):
    text = draw(st.text(min_size=1, max_size=16).filter(str.strip))
    cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=6)))
    pairs = [(a, b) for a, b in zip(cuts[::2], cuts[1::2])]
    return text, [(a, b, draw(st.sampled_from(TYPES))) for a, b in pairs]


@pytest.mark.parametrize("objects", [False, True], ids=["lists", "objects"])
@fuzz_settings(60)
@given(rows=st.lists(entity_rows(), min_size=1, max_size=4))
def test_entity_tables_read_back(tmp_path, objects, rows):
    def cell(spans):
        return [{"start": a, "end": b, "type": t} if objects else [a, b, t] for a, b, t in spans]

    path = tmp_path / "spans.jsonl"
    path.write_text("".join(json.dumps({"text": t, "entities": cell(s)}) + "\n" for t, s in rows), encoding="utf-8")
    assert read_entity_table(path) == ([t for t, _ in rows], [s for _, s in rows])


@st.composite
def squad_questions(draw):
    """(title, context, question, answer, answer_start) of one valid question."""
    title = draw(st.text(max_size=5))
    context = draw(st.text(min_size=1, max_size=20).filter(str.strip))
    start = draw(st.integers(0, len(context) - 1))
    answer = context[start:draw(st.integers(start + 1, len(context)))]
    assume(answer.strip())
    return title, context, draw(st.text(min_size=1, max_size=8).filter(str.strip)), answer, start


def squad_document(rows):
    data = [{"title": title, "paragraphs": [{"context": context, "qas": [
        {"id": f"q{i}", "question": question, "answers": [{"text": answer, "answer_start": start}]}]}]}
        for i, (title, context, question, answer, start) in enumerate(rows)]
    return {"version": "1.1", "data": data}


JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-3, 40), st.floats(allow_nan=True), st.text(max_size=6))
JSON_VALUE = st.recursive(JSON_LEAF, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)), max_leaves=6)


def json_paths(value, at=()):
    yield at
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield from json_paths(child, at + (key,))


@st.composite
def damaged_squad_documents(draw):
    """Valid documents with an answer_start counted from the end, and values replaced by any JSON or left out."""
    rows = draw(st.lists(squad_questions(), min_size=1, max_size=3))
    document = squad_document(rows)
    if draw(st.booleans()):
        # context[start - len(context):] is the answer too, so only the offset is wrong.
        row = draw(st.integers(0, len(rows) - 1))
        document["data"][row]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] -= len(rows[row][1])
    for _ in range(draw(st.integers(0, 2))):
        *parents, key = draw(st.sampled_from(list(json_paths(document))[1:]))
        parent = functools.reduce(operator.getitem, parents, document)
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[key]
        else:
            parent[key] = draw(JSON_VALUE)
    return document


@fuzz_settings(150)
@given(document=damaged_squad_documents(), require_answers=st.booleans(), cut=st.integers(0, 400))
def test_squad_documents_give_checked_questions_or_data_errors(tmp_path, document, require_answers, cut):
    path = tmp_path / "squad.json"
    questions = outcome(lambda: parse_squad(document, str(path), require_answers=require_answers), tmp_path)
    if questions is not None:
        fz.check_questions(questions, require_answers)
    # The same document as a file, cut short half the time.
    raw = json.dumps(document).encode()
    path.write_bytes(raw[:cut] if cut < len(raw) and cut % 2 else raw)
    questions = outcome(lambda: read_squad(path, require_answers=require_answers), tmp_path)
    if questions is not None:
        fz.check_questions(questions, require_answers)


@fuzz_settings(60)
@given(data=encoded(texts(['{"data": [', '{"paragraphs": [', '"context": "ab"', '"qas": [', '"id": 1', ",",
                           '"question": "q"', '"answers": [{"text": "a", "answer_start": 0}]', "]", "}", ":"])))
def test_squad_bytes_give_checked_questions_or_data_errors(tmp_path, data):
    path = tmp_path / "squad.json"
    path.write_bytes(data)
    questions = outcome(lambda: read_squad(path), tmp_path)
    if questions is not None:
        fz.check_questions(questions, require_answers=True)


@fuzz_settings(60)
@given(rows=st.lists(squad_questions(), min_size=1, max_size=4))
def test_squad_files_read_back(tmp_path, rows):
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(squad_document(rows)), encoding="utf-8")
    questions = read_squad(path)
    assert [(q.id, q.title, q.context, q.question, q.answers) for q in questions] == [
        (f"q{i}", t, c, q, ((a, s),)) for i, (t, c, q, a, s) in enumerate(rows)]


@pytest.mark.parametrize("name", ["corpus.txt", "corpus.txt.gz", "corpus.csv", "corpus.jsonl"])
@fuzz_settings(60)
@given(data=ENCODED)
def test_corpus_files_give_documents_or_data_errors(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    column = "text" if name.endswith(("csv", "jsonl")) else None
    documents = outcome(lambda: read_corpus(path, column), tmp_path)
    if documents is not None:
        fz.check_documents(documents, len(data) if column else 1)


FILE_NAME = st.sampled_from(["a.txt", "b.md", ".hidden", "sub/c.txt", "sub/.d.txt", "z.txt.gz", "e.csv"])


@fuzz_settings(60)
@given(files=st.dictionaries(FILE_NAME, ENCODED, min_size=1, max_size=4))
def test_corpus_folders_give_documents_or_data_errors(tmp_path, files):
    with tempfile.TemporaryDirectory(dir=tmp_path) as root:
        for name, data in files.items():
            os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
            with open(os.path.join(root, name), "wb") as f:
                f.write(data)
        documents = outcome(lambda: read_corpus(root), root)
    if documents is not None:
        fz.check_documents(documents, sum(not n.split("/")[-1].startswith(".") for n in files))


# Text without the control characters that mark a binary file, nor a leading byte order mark.
DOCUMENT = st.text(st.characters(blacklist_categories=("Cs", "Cc"), whitelist_characters="\t\n\r\x0b\x0c"), max_size=30)
DOCUMENT = DOCUMENT.filter(lambda d: not d.startswith("\ufeff"))


@fuzz_settings(60)
@given(documents=st.lists(DOCUMENT, min_size=1, max_size=5), table=st.booleans())
def test_corpora_read_back(tmp_path, documents, table):
    with tempfile.TemporaryDirectory(dir=tmp_path) as root:
        path = os.path.join(root, "corpus.jsonl") if table else root
        if table:
            with open(path, "w", encoding="utf-8") as f:
                f.writelines(json.dumps({"id": i, "body": d}) + "\n" for i, d in enumerate(documents))
        for index, document in enumerate([] if table else documents):
            with open(os.path.join(root, f"{index:03d}.txt"), "wb") as f:
                f.write(document.encode("utf-8"))
        read = outcome(lambda: read_corpus(path, "body" if table else None), tmp_path)
    # Files that are blank are skipped; a table's blank row is an error.
    expected = [d for d in documents if d.strip()]
    assert read == (None if not expected or (table and len(expected) < len(documents)) else expected)


def test_bench_task_data_targets_run_on_seeded_inputs():
    # Keeps bench/_fuzz_task_data.py working: every target, 30 seeded inputs each.
    targets = fz.TARGETS
    assert len(targets) >= 6
    for name, target in targets.items():
        rng = random.Random(name)
        for _ in range(30):
            target(rng.randbytes(rng.randrange(0, 200)))

"""Fuzz targets for the task readers: CoNLL files, entity tables, SQuAD files and text corpora.

`TARGETS` follows bench/_fuzz_data.py: each callable turns fuzzer bytes into
a file (the bytes themselves or a mutated valid seed), runs the reader and
raises `AssertionError` unless it returned well-formed output or a one-line
`DataError` naming the file. The `check_*` functions state what well-formed
means for each reader; tests/data/test_fuzz_task_readers.py uses them too.
"""

import gzip
import os
import re
import tempfile

import _fuzz_data as fuzz_data

from tfllm.data.conll import TaggedSentences, read_conll, read_entity_table, to_iob2
from tfllm.data.corpora import read_corpus
from tfllm.data.squad import SquadQuestion, read_squad

_SEEDS = {
    "conll": (
        b"-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\n"
        b"call NN I-NP O\n\nPeter NNP B-NP I-PER\nBlackburn NNP I-NP I-PER\n"
    ),
    "entities_csv": (
        b'text,entities\nAnna Berg lives in Oslo.,"[[0, 9, ""PER""], [19, 23, ""LOC""]]"\nNothing here.,[]\n'
    ),
    "entities_jsonl": (
        b'{"text": "Anna Berg lives in Oslo.", "entities": [[0, 9, "PER"], {"start": 19, "end": 23, "type": "LOC"}]}\n'
        b'{"text": "Nothing here.", "entities": []}\n'
    ),
    "squad": (
        b'{"version": "1.1", "data": [{"title": "Lighthouse", "paragraphs": [{"context": "The lighthouse is red.",'
        b' "qas": [{"id": "q1", "question": "What colour is it?", "answers": [{"text": "red", "answer_start": 18}]},'
        b' {"id": "q2", "question": "What is red?", "answers": [{"text": "The lighthouse", "answer_start": 0}]}]}]}]}'
    ),
    "corpus": b"Jack and Jill went up the hill\nTo fetch a pail of water.\n\nA stitch in time saves nine.\n",
    "corpus_csv": b'id,body\n1,Jack and Jill\n2,"To fetch a pail\nof water."\n',
}
_TAG = re.compile(r"O|[BI]-\S+")
_FOLDER_NAMES = ["{}.txt", "{}.md", ".{}", "sub/{}.txt", "sub/.{}", "{}.txt.gz", "{}.csv"]


def check_sentences(sentences):
    """Sentences, tags as long as their words, words without spaces, valid IOB2."""
    assert isinstance(sentences, TaggedSentences) and len(sentences) > 0, "no sentences instead of DataError"
    assert len(sentences.tags) == len(sentences.words) and sentences.scheme in ("IOB1", "IOB2"), sentences.scheme
    for words, tags in zip(sentences.words, sentences.tags):
        assert words and len(words) == len(tags), f"{len(words)} words, {len(tags)} tags"
        assert all(isinstance(w, str) and w and not any(c.isspace() for c in w) for w in words), words[:5]
        assert all(_TAG.fullmatch(tag) for tag in tags) and to_iob2(tags) == tags, f"not IOB2: {tags[:10]}"


def check_cell(spans, text):
    """Sorted, non-overlapping `(start, end, type)` spans inside `text`, types single words."""
    previous_end = 0
    for start, end, kind in spans:
        assert type(start) is int and type(end) is int, f"offsets {start!r}, {end!r}"
        assert previous_end <= start < end <= len(text), f"span [{start}, {end}) in a text of {len(text)}"
        assert isinstance(kind, str) and kind and not any(c.isspace() for c in kind), f"type {kind!r}"
        previous_end = end


def check_entities(result):
    texts, spans = result
    assert len(texts) == len(spans) > 0, f"{len(texts)} texts, {len(spans)} span lists"
    for text, cell in zip(texts, spans):
        assert isinstance(text, str) and text.strip(), f"text {text!r}"
        check_cell(cell, text)


def check_questions(questions, require_answers=True):
    """Questions with unique ids, non-blank question and context, answers that index the context."""
    assert questions and len({q.id for q in questions}) == len(questions), "no questions or repeated ids"
    for q in questions:
        assert isinstance(q, SquadQuestion) and isinstance(q.id, str) and isinstance(q.title, str), q
        assert isinstance(q.question, str) and q.question.strip() and q.context.strip(), q.id
        assert q.answers or not require_answers, f"question {q.id} without answers"
        for text, start in q.answers:
            assert text.strip() and type(start) is int and start >= 0, f"answer {text!r} at {start!r}"
            assert q.context[start:start + len(text)] == text, f"answer {text!r} is not at {start}"


def check_documents(documents, at_most=None):
    """A list of non-blank strings, at most `at_most` of them."""
    assert isinstance(documents, list) and documents, "no documents instead of DataError"
    assert at_most is None or len(documents) <= at_most, f"{len(documents)} documents from {at_most} inputs"
    assert all(isinstance(d, str) and d.strip() for d in documents), "a blank or non-str document"


def _squad(path, choices):
    require_answers = choices.pick(2) == 0
    questions = read_squad(path, require_answers=require_answers)
    return questions, require_answers


def _folder_target(data):
    # Documents cut from the bytes, in files of a folder: hidden, nested, compressed, tables.
    content, choices = fuzz_data._content(data, _SEEDS["corpus"])
    with tempfile.TemporaryDirectory() as root:
        count = 1 + choices.pick(4)
        step = max(1, len(content) // count)
        for index in range(count):
            name = os.path.join(root, _FOLDER_NAMES[choices.pick(len(_FOLDER_NAMES))].format(index))
            os.makedirs(os.path.dirname(name), exist_ok=True)
            piece = content[index * step : (index + 1) * step]
            fuzz_data._write(name, gzip.compress(piece) if name.endswith(".gz") else piece)
        fuzz_data._run(lambda: read_corpus(root), root, lambda documents: check_documents(documents, count))


def _targets():
    target = fuzz_data._file_target
    return {
        "conll": target(".txt", _SEEDS["conll"], lambda path, _: read_conll(path), check_sentences),
        "conll_gz": target(
            ".conll.gz", _SEEDS["conll"], lambda path, _: read_conll(path), check_sentences,
            compress=gzip.compress,
        ),
        "entity_table_csv": target(
            ".csv", _SEEDS["entities_csv"], lambda path, _: read_entity_table(path), check_entities
        ),
        "entity_table_jsonl": target(
            ".jsonl", _SEEDS["entities_jsonl"], lambda path, _: read_entity_table(path), check_entities
        ),
        "squad": target(".json", _SEEDS["squad"], _squad, lambda result: check_questions(*result)),
        "corpus_text": target(
            ".txt", _SEEDS["corpus"], lambda path, _: read_corpus(path), lambda d: check_documents(d, 1)
        ),
        "corpus_table": target(
            ".csv", _SEEDS["corpus_csv"], lambda path, _: read_corpus(path, "body"), check_documents
        ),
        "corpus_folder": _folder_target,
    }


TARGETS = _targets()

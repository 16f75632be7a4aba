"""Reading SQuAD v1.1 files: the built-in sample, and one-line errors for bad files."""

import json

import pytest

from tfllm.data.errors import DataError
from tfllm.data.squad import load_squad_sample, read_squad, split_by_title


def squad(context="The lighthouse is red.", question="What colour is the lighthouse?", answers=None, title="T"):
    answers = [{"text": "red", "answer_start": 18}] if answers is None else answers
    return {"version": "1.1", "data": [{"title": title, "paragraphs": [
        {"context": context, "qas": [{"id": "q1", "question": question, "answers": answers}]}]}]}


def write(tmp_path, document):
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return str(path)


def test_the_sample_is_in_the_official_layout_with_matching_offsets():
    questions = load_squad_sample()
    assert len(questions) >= 40 and len({q.title for q in questions}) >= 5
    for q in questions:
        for text, start in q.answers:
            assert q.context[start:start + len(text)] == text
    train, validation = split_by_title(questions, 0.2)
    assert {q.title for q in train}.isdisjoint({q.title for q in validation})
    assert len(train) + len(validation) == len(questions)


def test_reads_questions_with_their_answers(tmp_path):
    [question] = read_squad(write(tmp_path, squad()))
    assert (question.id, question.title, question.answers) == ("q1", "T", (("red", 18),))


@pytest.mark.parametrize("document, message", [
    (squad(answers=[{"text": "red", "answer_start": 17}]),
     "article 0 (T): question q1: answers[0].answer_start 17 does not match its text 'red'"),
    (squad(question="  "), "article 0 (T): question q1: question is empty"),
    (squad(context=""), "article 0 (T): paragraph 0: context is empty"),
    (squad(answers=[]), "article 0 (T): question q1: answers is empty"),
    (squad(answers=[{"text": "red"}]), "question q1: answers[0] needs 'text' and 'answer_start'"),
    ({"version": "1.1"}, "not a SQuAD file"),
    ("{not json", "line 1: not valid JSON"),
])
def test_bad_files_raise_one_line_naming_file_question_and_field(tmp_path, document, message):
    path = write(tmp_path, document)
    with pytest.raises(DataError) as error:
        read_squad(path)
    text = str(error.value)
    assert text.startswith(path) and message in text and "\n" not in text


def test_questions_without_answers_are_read_for_prediction(tmp_path):
    [question] = read_squad(write(tmp_path, squad(answers=[])), require_answers=False)
    assert question.answers == ()

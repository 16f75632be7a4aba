"""SQuAD v1.1 files (the official JSON layout) as a flat list of questions.

    {"version": "1.1", "data": [{"title": ..., "paragraphs": [
        {"context": ..., "qas": [{"id": ..., "question": ...,
                                  "answers": [{"text": ..., "answer_start": 177}, ...]}]}]}]}

`read_squad(path)` checks every field it uses and raises one `DataError`
naming the file, the article (its index and title), the question id and the
field: an empty question or context, an answer whose `answer_start` does not
point at its `text` in the context, a missing key. The built-in sample
(`load_squad_sample`) is a few paragraphs written for tfllm in that layout.
"""

import dataclasses
import importlib.resources
import os

from tfllm.data.errors import DataError, cut, shorten
from tfllm.data.formats import check_file, parse_json, read_text

SAMPLE = "squad_sample.json"


@dataclasses.dataclass(frozen=True)
class SquadQuestion:
    """One question on one paragraph.

    Attributes:
        id: the question's id (unique in the file).
        title: the article's title.
        question, context: the question and its paragraph.
        answers: `(text, answer_start)` pairs, `answer_start` a character offset
            into `context`; several per question in the official dev set.
    """

    id: str
    title: str
    question: str
    context: str
    answers: tuple = ()

    @property
    def answer_texts(self):
        return [text for text, _ in self.answers]


def _where(article, title, qid=None):
    place = f"article {article}" + (f" ({cut(title)})" if title else "")
    return f"{place}: question {cut(qid)}" if qid is not None else place


def _string(value, path, where, field, allow_empty=False):
    if not isinstance(value, str):
        raise DataError(f"{where}: {field} must be a string, got {type(value).__name__}", path=path)
    if not allow_empty and not value.strip():
        raise DataError(f"{where}: {field} is empty", path=path)
    return value


def _list(value, path, where, field):
    if not isinstance(value, list):
        raise DataError(f"{where}: {field} must be a list, got {type(value).__name__}", path=path)
    return value


def _answers(raw, context, path, where):
    answers = []
    for index, answer in enumerate(_list(raw, path, where, "answers")):
        field = f"answers[{index}]"
        if not isinstance(answer, dict) or "text" not in answer or "answer_start" not in answer:
            raise DataError(f"{where}: {field} needs 'text' and 'answer_start'", path=path)
        text = _string(answer["text"], path, where, f"{field}.text")
        start = answer["answer_start"]
        # A negative start would slice from the end of the context.
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise DataError(
                f"{where}: {field}.answer_start must be an integer from 0, got {shorten(start)}", path=path
            )
        if context[start:start + len(text)] != text:
            found = context[start:start + len(text)]
            raise DataError(
                f"{where}: {field}.answer_start {start} does not match its text {shorten(text)} "
                f"(the context there reads {shorten(found)})", path=path,
            )
        answers.append((text, start))
    return tuple(answers)


def parse_squad(document, path, *, require_answers=True):
    """The questions of a parsed SQuAD document (see `read_squad`)."""
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise DataError("not a SQuAD file: expected an object with a 'data' list of articles", path=path)
    questions, seen = [], set()
    for article_index, article in enumerate(document["data"]):
        title = article.get("title", "") if isinstance(article, dict) else ""
        title = title if isinstance(title, str) else ""
        where = _where(article_index, title)
        if not isinstance(article, dict) or "paragraphs" not in article:
            raise DataError(f"{where}: needs a 'paragraphs' list", path=path)
        for paragraph_index, paragraph in enumerate(_list(article["paragraphs"], path, where, "paragraphs")):
            place = f"{where}: paragraph {paragraph_index}"
            if not isinstance(paragraph, dict) or "context" not in paragraph or "qas" not in paragraph:
                raise DataError(f"{place}: needs 'context' and 'qas'", path=path)
            context = _string(paragraph["context"], path, place, "context")
            for qa in _list(paragraph["qas"], path, place, "qas"):
                if not isinstance(qa, dict) or "id" not in qa or "question" not in qa:
                    raise DataError(f"{place}: every entry of 'qas' needs 'id' and 'question'", path=path)
                qid = str(qa["id"])
                at = _where(article_index, title, qid)
                if qid in seen:
                    raise DataError(f"{at}: id is a duplicate", path=path)
                seen.add(qid)
                question = _string(qa["question"], path, at, "question")
                answers = _answers(qa.get("answers", []), context, path, at)
                if require_answers and not answers:
                    raise DataError(f"{at}: answers is empty", path=path)
                questions.append(SquadQuestion(qid, title, question, context, answers))
    if not questions:
        raise DataError("the file holds no questions", path=path)
    return questions


def read_squad(path, *, require_answers=True, encoding="utf-8"):
    """Reads a SQuAD v1.1 JSON file into a list of `SquadQuestion`s, in file order.

    Args:
        path: the file.
        require_answers: whether every question must have an answer (training
            and evaluation); `predict` reads questions without.
        encoding: the file's text encoding.

    Raises:
        DataError: one line naming the file, article, question id and field.
    """
    path = os.fspath(path)
    check_file(path)
    document = parse_json(read_text(path, encoding), path)
    return parse_squad(document, path, require_answers=require_answers)


def load_squad_sample():
    """The built-in sample (`samples/squad_sample.json`, written for tfllm) as `SquadQuestion`s."""
    resource = importlib.resources.files("tfllm.data").joinpath("samples", SAMPLE)
    with importlib.resources.as_file(resource) as path:
        return read_squad(path)


def split_by_title(questions, val_fraction, seed=0):
    """`(train, validation)` questions, whole articles on each side (no paragraph in both).

    At least one article validates and one trains when there are two or more.
    """
    import numpy as np

    titles = list(dict.fromkeys(q.title for q in questions))
    if len(titles) < 2:
        raise DataError(f"need at least 2 articles to hold some out for validation, found {len(titles)}")
    order = np.random.default_rng(seed).permutation(len(titles))
    held = {titles[i] for i in order[: min(len(titles) - 1, max(1, round(len(titles) * val_fraction)))]}
    return [q for q in questions if q.title not in held], [q for q in questions if q.title in held]

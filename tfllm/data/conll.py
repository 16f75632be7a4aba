"""Tagged sentences for named-entity recognition: CoNLL files and tables of texts with entity spans.

`read_conll(path)` reads the CoNLL-2003 layout: one word per line with its
columns (`word POS chunk NER`; any number of columns from 2, the same on
every line, the tag last), a blank line between sentences, `-DOCSTART-`
lines skipped. Tags must be `O`, `B-TYPE` or `I-TYPE`; IOB1 files (where
`B-` only separates two touching entities of one type) are detected and
converted to IOB2 (every entity starts with `B-`).

`read_entity_table(path)` reads a table with a text column and an entity
column holding, per row, a JSON list of `[start, end, type]` character spans
(or objects with `start`, `end` and `type` or `label`).

Both raise `DataError` naming the file, line or row and field.
"""

import dataclasses
import os
import re

from tfllm.data.errors import DataError, shorten
from tfllm.data.formats import check_file, parse_json, read_text

_TAG = re.compile(r"O|[BI]-\S+")
TABLE_SUFFIXES = (".csv", ".tsv", ".tab", ".json", ".jsonl", ".ndjson", ".parquet", ".pq")


@dataclasses.dataclass
class TaggedSentences:
    """Sentences as lists of words and their IOB2 tags.

    Attributes:
        words: one list of words per sentence.
        tags: one list of IOB2 tags per sentence, as long as its words.
        scheme: "IOB1" or "IOB2", as the source was written.
        source: where the sentences came from, for messages.
    """

    words: list
    tags: list
    scheme: str = "IOB2"
    source: str = None

    def __len__(self):
        return len(self.words)

    def subset(self, rows):
        rows = list(rows)
        return TaggedSentences([self.words[i] for i in rows], [self.tags[i] for i in rows], self.scheme, self.source)

    def texts(self):
        """Each sentence's words joined by single spaces."""
        return [" ".join(words) for words in self.words]


def is_table(path):
    """Whether `path` names a table (`.csv`, `.jsonl`, ...) rather than a CoNLL file."""
    name = os.fspath(path).lower()
    for suffix in (".gz", ".bz2", ".xz"):
        name = name.removesuffix(suffix)
    return name.endswith(TABLE_SUFFIXES)


def to_iob2(tags):
    """IOB1 (or IOB2) tags of one sentence as IOB2: an `I-X` that starts an entity becomes `B-X`."""
    out = []
    for index, tag in enumerate(tags):
        if tag.startswith("I-"):
            previous = out[index - 1] if index else "O"
            if previous == "O" or previous[2:] != tag[2:]:
                tag = "B-" + tag[2:]
        out.append(tag)
    return out


def read_conll(path, encoding="utf-8"):
    """Reads a CoNLL file into `TaggedSentences` (IOB2 tags, whatever the file used).

    Raises:
        DataError: `path: line N: problem` for a line whose column count
            differs from the first line's, or whose tag is not IOB; or a file
            with no sentence.
    """
    path = os.fspath(path)
    check_file(path)
    text = read_text(path, encoding)
    sentences, tags, words, sentence_tags = [], [], [], []
    columns = None
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            if words:
                sentences.append(words)
                tags.append(sentence_tags)
            words, sentence_tags = [], []
            continue
        if columns is None:
            if len(fields) < 2:
                raise DataError(f"line {number}: expected a word and a tag, found 1 column", path=path)
            columns = len(fields)
        elif len(fields) != columns:
            raise DataError(f"line {number}: expected {columns} columns like line 1, found {len(fields)}", path=path)
        if not _TAG.fullmatch(fields[-1]):
            raise DataError(f"line {number}: tag {shorten(fields[-1])} is not IOB (O, B-TYPE or I-TYPE)", path=path)
        words.append(fields[0])
        sentence_tags.append(fields[-1])
    if words:
        sentences.append(words)
        tags.append(sentence_tags)
    if not sentences:
        raise DataError("no tagged sentences", path=path)
    converted = [to_iob2(sentence) for sentence in tags]
    scheme = "IOB2" if converted == tags else "IOB1"
    return TaggedSentences(sentences, converted, scheme, path)


def _span(value, path, row, column, index):
    where = f"column {column!r}: entity {index}"
    if isinstance(value, dict):
        kind = value.get("type", value.get("label"))
        value = [value.get("start"), value.get("end"), kind]
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise DataError(f"{where}: expected [start, end, type] or an object with start, end, type", path=path, row=row)
    start, end, kind = value
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
        raise DataError(
            f"{where}: start and end must be integers, got {shorten(start)} and {shorten(end)}", path=path, row=row
        )
    if not isinstance(kind, str) or not re.fullmatch(r"[^\s]+", kind):
        raise DataError(f"{where}: type must be a word, got {shorten(kind)}", path=path, row=row)
    return start, end, kind


def parse_entities(value, text, *, path, row, column):
    """The `[(start, end, type), ...]` spans one table cell holds, checked against its text."""
    if isinstance(value, str):
        value = parse_json(value, path, where=f"column {column!r}", row=row) if value.strip() else []
    if hasattr(value, "tolist"):
        value = value.tolist()
    if value is None or (isinstance(value, float) and value != value):
        value = []  # An empty cell: no entities.
    if not isinstance(value, list):
        raise DataError(f"column {column!r}: expected a list of entities, got {type(value).__name__}", path=path, row=row)
    spans = sorted(_span(item, path, row, column, index) for index, item in enumerate(value, start=1))
    previous_end = 0
    for index, (start, end, _) in enumerate(spans, start=1):
        if not 0 <= start < end <= len(text):
            raise DataError(
                f"column {column!r}: entity {index} [{start}, {end}) is outside the text (0-{len(text)})",
                path=path, row=row,
            )
        if start < previous_end:
            raise DataError(f"column {column!r}: entity {index} [{start}, {end}) overlaps the one before", path=path, row=row)
        previous_end = end
    return spans


def read_entity_table(path, text_column="text", entities_column="entities", encoding="utf-8"):
    """Reads a table of texts and entity spans: `(texts, [[(start, end, type), ...] per text])`.

    Raises:
        DataError: a missing column, an empty text, or a cell that is not a
            list of spans inside its text (naming the row and column).
    """
    from tfllm.data.frames import read_frame
    from tfllm.data.tables import column_values, select_columns

    path = os.fspath(path)
    frame = read_frame(path, encoding=encoding, text_columns=[text_column, entities_column])
    entities = column_values(frame, entities_column, path, "entities")
    texts = select_columns(frame, path, {text_column: "text"}).text.tolist()
    spans = [
        parse_entities(value, text, path=path, row=row, column=entities_column)
        for row, (value, text) in enumerate(zip(entities.tolist(), texts), start=1)
    ]
    return texts, spans


def load_conll_sample(name="ner"):
    """A built-in CoNLL sample shipped with tfllm (`tfllm/data/samples/<name>.conll`), as `TaggedSentences`."""
    import importlib.resources

    resource = importlib.resources.files("tfllm.data").joinpath("samples", f"{name}.conll")
    if not resource.is_file():
        raise DataError(f"unknown CoNLL sample {name!r}")
    with importlib.resources.as_file(resource) as path:
        return read_conll(path)

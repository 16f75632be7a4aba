"""Readers for the public data sets users meet, in their distributed formats.

Each returns a DataFrame with the columns the apps use:
"text"/"label" (SST-2, IMDB), "dialogue"/"summary" (SAMSum),
"context"/"response" (DailyDialog), "source"/"target" (translation pairs).
"""

import glob
import os
import re

import pandas as pd

from tfllm.data.errors import DataError
from tfllm.data.formats import check_file, read_text
from tfllm.data.frames import read_frame
from tfllm.data.tables import select_columns

_IMDB_FILE = re.compile(r"^(\d+)_(\d+)\.txt$")
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


def read_sst2(path):
    """Reads a GLUE SST-2 TSV file (`sentence<TAB>label`, header, no quoting).

    The unlabelled GLUE test file (`index<TAB>sentence`) gives a "text"
    column only. The trailing space GLUE leaves after each sentence is removed.

    Returns:
        DataFrame with "text" and (when present) int "label" (1 = positive).
    """
    path = os.fspath(path)
    frame = read_frame(path, format="tsv", text_columns=["sentence"])
    label = "label" if "label" in frame.columns else None
    frame = select_columns(frame, path, {"sentence": "text"}, label_column=label)
    frame["text"] = frame["text"].str.strip()
    return frame


def _imdb_split_dir(path, split):
    if os.path.isdir(os.path.join(path, "pos")) or os.path.isdir(os.path.join(path, "neg")):
        return path
    for candidate in (os.path.join(path, split), os.path.join(path, "aclImdb", split)):
        if os.path.isdir(os.path.join(candidate, "pos")):
            return candidate
    raise DataError(
        f"not an aclImdb directory: expected pos/ and neg/ under it, or under {split}/",
        path=path,
    )


def _read_imdb_tree(path, split):
    directory = _imdb_split_dir(path, split)
    texts, labels = [], []
    for name, label in (("pos", 1), ("neg", 0)):
        folder = os.path.join(directory, name)
        if not os.path.isdir(folder):
            raise DataError(f"missing {name}/ directory", path=directory)
        entries = []
        for filename in os.listdir(folder):
            match = _IMDB_FILE.match(filename)
            if match:
                entries.append((int(match.group(1)), filename))
        for _, filename in sorted(entries):
            file = os.path.join(folder, filename)
            try:
                with open(file, "rb") as f:
                    raw = f.read()
            except OSError as error:  # e.g. a directory named like a review
                raise DataError(f"cannot read ({error.strerror})", path=file) from None
            try:
                # utf-8-sig: a byte order mark (Windows editors) is not text.
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise DataError("not valid UTF-8", path=file) from None
            if not text.strip():
                raise DataError("empty review", path=file)
            texts.append(text)
            labels.append(label)
    if not texts:
        raise DataError("no {id}_{rating}.txt review files under pos/ or neg/", path=directory)
    return pd.DataFrame({"text": texts, "label": labels})


def read_imdb(path, split="train", *, strip_html=True):
    """Reads the IMDB reviews (Maas et al. 2011).

    Args:
        path: the `aclImdb` directory (or its `train`/`test` directory, or
            any directory holding `pos/` and `neg/` with `{id}_{rating}.txt`
            files), or a CSV/Parquet file with "text" and "label" columns (such
            as the `id,rating,text,label` CSV form).
        split: which split directory to read under an `aclImdb` root.
        strip_html: replace the `<br />` tags reviews use as line breaks by
            spaces.

    Returns:
        DataFrame with "text" and int "label" (1 = positive, 0 = negative);
        from a directory, positive reviews first, each class in id order.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        frame = _read_imdb_tree(path, split)
    else:
        frame = select_columns(read_frame(path, text_columns=["text"]), path, {"text": "text"}, label_column="label")
    if strip_html:
        frame["text"] = frame["text"].str.replace(_BREAK, " ", regex=True)
    return frame


def read_samsum(path):
    """Reads SAMSum dialogue summarization data.

    Args:
        path: the Hugging Face/Kaggle CSV (`id,dialogue,summary`) or the
            original JSON (list of `{"id", "summary", "dialogue"}`); JSONL and
            Parquet work too.

    Returns:
        DataFrame with "dialogue" (turns separated by "\\n") and "summary".
        Rows with an empty dialogue or summary (the original train JSON has
        one) are dropped with a logged warning.
    """
    path = os.fspath(path)
    frame = read_frame(path, text_columns=["dialogue", "summary"])
    frame = select_columns(
        frame, path, {"dialogue": "dialogue", "summary": "summary"}, drop_empty=True
    )
    frame["dialogue"] = frame["dialogue"].str.replace("\r\n", "\n", regex=False)
    return frame


def _dailydialog_file(path, split):
    if os.path.isfile(path):
        return path
    if not os.path.isdir(path):
        raise DataError("no such file or directory", path=path)
    for pattern in (
        os.path.join(path, f"dialogues_{split}.txt"),
        os.path.join(path, split, f"dialogues_{split}.txt"),
        os.path.join(path, "ijcnlp_dailydialog", split, f"dialogues_{split}.txt"),
    ):
        if os.path.isfile(pattern):
            return pattern
    found = sorted(glob.glob(os.path.join(path, "dialogues_*.txt")))
    found = [f for f in found if not re.search(r"dialogues_(act|emotion|topic)", f)]
    if len(found) == 1:
        return found[0]
    raise DataError(
        f"no dialogues_{split}.txt here or under {split}/", path=path
    )


def read_dailydialog(path_or_dir, split="train", *, context_turns=1, turn_separator="\n", encoding="utf-8"):
    """Reads DailyDialog and turns each dialogue into context/response pairs.

    Every utterance after the first becomes a response; its context is the
    `context_turns` utterances before it (fewer at the start of a dialogue),
    joined by `turn_separator`. The default of one turn gives the classic
    single-turn pairs used by seq2seq baselines and matches the built-in
    dialogue sample; pass e.g. `context_turns=3` for multi-turn context.

    Args:
        path_or_dir: a `dialogues_{split}.txt` file (one dialogue per line,
            utterances terminated by `__eou__`), a split directory holding
            one, or the root holding `{split}/`.
        split: the split to look for inside a directory.
        context_turns: how many previous utterances form the context (>= 1).
        turn_separator: string joining context utterances.
        encoding: the file's text encoding.

    Returns:
        DataFrame with "context", "response" and "dialogue_id" (0-based line
        of the dialogue), in file order.
    """
    if context_turns < 1:
        raise ValueError(f"`context_turns` must be >= 1. Received: context_turns={context_turns}")
    path = _dailydialog_file(os.fspath(path_or_dir), split)
    if os.path.getsize(path) == 0:
        raise DataError("file is empty", path=path)
    contexts, responses, ids = [], [], []
    # Decoded whole, like the pair files: cutting UTF-16 bytes at b"\n" would split characters.
    for line_number, line in enumerate(read_text(path, encoding).split("\n"), start=1):
        if not line.strip():
            continue
        turns = [" ".join(turn.split()) for turn in line.split("__eou__")]
        turns = [turn for turn in turns if turn]
        if len(turns) < 2:
            raise DataError(
                "a dialogue needs at least 2 utterances separated by __eou__",
                path=path,
                row=line_number,
            )
        for index in range(1, len(turns)):
            start = max(0, index - context_turns)
            contexts.append(turn_separator.join(turns[start:index]))
            responses.append(turns[index])
            ids.append(line_number - 1)
    if not responses:
        raise DataError("no dialogues", path=path)
    return pd.DataFrame({"context": contexts, "response": responses, "dialogue_id": ids})


def read_translation_pairs(path, *, encoding="utf-8"):
    """Reads tab-separated sentence pairs (`source<TAB>target[<TAB>...]`, no header).

    This is the manythings.org / Tatoeba format of `spa-eng/spa.txt`; extra
    columns (newer files add an attribution) are ignored.

    Returns:
        DataFrame with "source" and "target".
    """
    path = os.fspath(path)
    check_file(path)
    # Decoded whole: cutting UTF-16 bytes at b"\n" first would split characters.
    text = read_text(path, encoding)
    sources, targets = [], []
    for line_number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r").lstrip("\ufeff")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise DataError(
                "expected source<TAB>target, found no tab", path=path, row=line_number
            )
        source, target = fields[0].strip(), fields[1].strip()
        if not source or not target:
            side = "source" if not source else "target"
            raise DataError(f"empty {side} text", path=path, row=line_number)
        sources.append(source)
        targets.append(target)
    if not sources:
        raise DataError("no sentence pairs", path=path)
    return pd.DataFrame({"source": sources, "target": targets})


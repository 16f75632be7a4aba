"""Property-based fuzzing of the corpus readers and label files, and a smoke run of bench/_fuzz_data.py."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tfllm.data import (
    LabelVocabulary,
    read_dailydialog,
    read_imdb,
    read_samsum,
    read_sst2,
    read_translation_pairs,
)

from fuzzing import ENCODED, fuzz_settings, load_bench_module, outcome


def assert_texts(frame, columns, texts, nonblank=True):
    assert frame.columns.tolist() == columns and len(frame) > 0
    assert not frame.isna().any().any()
    for column in texts:
        assert all(isinstance(v, str) and (v.strip() or not nonblank) for v in frame[column]), column


SAMSUM = (read_samsum, ["dialogue", "summary"], ["dialogue", "summary"], True)
# (reader, its columns, the text columns, whether texts are never blank)
READERS = {
    "sst2.tsv": (read_sst2, ["text"], ["text"], True),
    "imdb.csv": (read_imdb, ["text", "label"], ["text"], False),
    "samsum.csv": SAMSUM,
    "samsum.json": SAMSUM,
    "dialogues_train.txt": (read_dailydialog, ["context", "response", "dialogue_id"], ["context", "response"], True),
    "spa.txt": (read_translation_pairs, ["source", "target"], ["source", "target"], True),
}


@pytest.mark.parametrize("name", list(READERS))
@fuzz_settings(60)
@given(data=ENCODED)
def test_readers_give_frames_or_data_errors(tmp_path, name, data):
    reader, columns, texts, nonblank = READERS[name]
    path = tmp_path / name
    path.write_bytes(data)
    frame = outcome(lambda: reader(path), tmp_path)
    if frame is not None:
        if "label" in frame and name.startswith("sst2"):
            columns = ["text", "label"]
        assert_texts(frame, columns, texts, nonblank)


@fuzz_settings(60)
@given(reviews=st.lists(st.tuples(st.booleans(), ENCODED), min_size=0, max_size=4))
def test_imdb_tree_gives_frames_or_data_errors(tmp_path, reviews):
    root = tmp_path / "aclImdb" / "train"
    for folder in ("pos", "neg"):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for old in (root / folder).iterdir():
            old.unlink()
    for index, (positive, data) in enumerate(reviews):
        (root / ("pos" if positive else "neg") / f"{index}_7.txt").write_bytes(data)
    frame = outcome(lambda: read_imdb(tmp_path / "aclImdb"), tmp_path)
    if frame is not None:
        assert_texts(frame, ["text", "label"], ["text"], nonblank=False)
        assert len(frame) == len(reviews)


UTTERANCE = st.text(max_size=10).filter(lambda text: text.split() and "__eou__" not in text and "\n" not in text)


@fuzz_settings(60)
@given(dialogues=st.lists(st.lists(UTTERANCE, min_size=2, max_size=4), min_size=1, max_size=4))
def test_dailydialog_pairs_follow_the_utterances(tmp_path, dialogues):
    path = tmp_path / "dialogues_train.txt"
    path.write_text("".join(" __eou__ ".join(d) + " __eou__\n" for d in dialogues), encoding="utf-8")
    frame = read_dailydialog(path)
    turns = [[" ".join(u.split()) for u in dialogue] for dialogue in dialogues]
    assert frame.context.tolist() == [t for d in turns for t in d[:-1]]
    assert frame.response.tolist() == [t for d in turns for t in d[1:]]


SIDE = st.text(max_size=10).filter(lambda text: text.strip() and not set(text) & set("\t\n\r\ufeff"))


@fuzz_settings(60)
@given(pairs=st.lists(st.tuples(SIDE, SIDE), min_size=1, max_size=5))
def test_translation_pairs_read_back(tmp_path, pairs):
    path = tmp_path / "spa.txt"
    path.write_text("".join(f"{s}\t{t}\tCC-BY\n" for s, t in pairs), encoding="utf-8")
    frame = read_translation_pairs(path)
    assert list(zip(frame.source, frame.target)) == [(s.strip(), t.strip()) for s, t in pairs]


@fuzz_settings(100)
@given(data=ENCODED)
def test_label_files_give_vocabularies_or_data_errors(tmp_path, data):
    path = tmp_path / "labels.txt"
    path.write_bytes(data)
    vocabulary = outcome(lambda: LabelVocabulary.load(path), tmp_path)
    if vocabulary is not None:
        assert vocabulary.labels and all(isinstance(label, str) and label for label in vocabulary.labels)


@fuzz_settings(60)
@given(labels=st.sets(st.one_of(st.integers(-50, 50), st.text(min_size=1, max_size=8)), min_size=1, max_size=6))
def test_label_vocabulary_round_trips(tmp_path, labels):
    try:
        vocabulary = LabelVocabulary.from_labels(list(labels))
    except ValueError:  # labels that are empty or repeat once stripped
        return
    path = tmp_path / "labels.txt"
    vocabulary.save(path)
    assert LabelVocabulary.load(path) == vocabulary


def test_bench_fuzz_targets_run_on_seeded_inputs():
    # Keeps bench/_fuzz_data.py working: every target, 30 seeded inputs each.
    targets = load_bench_module("_fuzz_data").TARGETS
    assert len(targets) >= 10
    for name, target in targets.items():
        rng = random.Random(name)
        for _ in range(30):
            target(rng.randbytes(rng.randrange(0, 200)))

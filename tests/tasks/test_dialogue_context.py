"""Multi-turn dialogue context: re-paired DailyDialog turns, one separator token everywhere."""

import pytest
import tensorflow as tf

from tfllm.data import read_dailydialog
from tfllm.tasks.dialogue_context import TURN_SEPARATOR, context_pairs, join_turns
from tfllm.tasks.text_to_text import TextToTextTask

DIALOGUES = (
    "Hi , Anna ! __eou__ Hello ! How are you ? __eou__ Fine , thanks . __eou__ Good to hear . __eou__\n"
    "Is this seat taken ? __eou__ No , go ahead . __eou__\n"
)


@pytest.fixture
def dialogue_file(tmp_path):
    path = tmp_path / "dialogues_train.txt"
    path.write_text(DIALOGUES)
    return path


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_context_pairs_equal_reading_with_that_many_turns(dialogue_file, turns):
    single = read_dailydialog(dialogue_file)
    expected = read_dailydialog(dialogue_file, context_turns=turns, turn_separator=TURN_SEPARATOR)
    assert context_pairs(single, turns).to_dict("list") == expected.to_dict("list")


def test_three_turns_by_hand(dialogue_file):
    pairs = context_pairs(read_dailydialog(dialogue_file), 3)
    assert pairs.context[2] == "Hi , Anna ! [SEP] Hello ! How are you ? [SEP] Fine , thanks ."
    assert pairs.response[2] == "Good to hear ."
    assert pairs.context[3] == "Is this seat taken ?"  # A new dialogue starts afresh.
    assert join_turns(["a", "b", "c"], 2) == "b [SEP] c"
    with pytest.raises(ValueError, match="context_turns=0"):
        join_turns(["a"], 0)


def test_task_reads_files_with_its_context_turns(dialogue_file):
    task = TextToTextTask(
        name="dialogue", source_column="context", target_column="response", dataset="dailydialog",
        sample="dialogue", config=None, demo_config=None, demo_texts=(), metrics=None,
        read_file=read_dailydialog, context_turns=2,
    )
    sources, targets, _ = task.read_pairs(data=str(dialogue_file))
    assert sources[1] == "Hi , Anna ! [SEP] Hello ! How are you ?" and targets[1] == "Fine , thanks ."
    sources, _, _ = task.read_pairs(data=str(dialogue_file), context_turns=1)
    assert sources[1] == "Hello ! How are you ?"


def test_the_separator_is_one_reserved_token():
    from tfllm.tasks.text_to_text import _tokenizer

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[START]", "[END]", "hi", "you", "!", "?"]
    ids = _tokenizer(vocabulary, cased=True)(tf.constant(["hi !" + TURN_SEPARATOR + "you ?"]))
    assert [list(row) for row in ids] == [[6, 8, 3, 7, 9]]

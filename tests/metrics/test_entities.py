"""Entity-level scores against hand-counted entities, and the majority-tag baseline."""

import pytest

from tfllm.metrics.entities import entity_report, majority_tags


def test_scores_count_whole_entities():
    truth = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "B-LOC"]]
    report = entity_report(truth, predicted)
    # 3 true entities; 4 predicted, 2 of them exact (PER, ORG): P 2/4, R 2/3.
    assert report["precision"] == 0.5 and report["recall"] == pytest.approx(0.6667)
    assert report["f1"] == pytest.approx(0.5714) and report["entities"] == 3 and report["predicted_entities"] == 4
    assert report["per_type"]["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert report["per_type"]["LOC"]["recall"] == 0.0


def test_a_wrong_boundary_is_a_miss():
    report = entity_report([["B-PER", "I-PER"]], [["B-PER", "O"]])
    assert report["f1"] == 0.0 and report["predicted_entities"] == 1


def test_lengths_must_agree():
    with pytest.raises(ValueError, match="sentence 0: 2 true tags but 1 predicted"):
        entity_report([["O", "O"]], [["O"]])


def test_majority_tags_per_word():
    train_words = [["Paris", "is", "big"], ["Paris", "Hilton"], ["Paris"]]
    train_tags = [["B-LOC", "O", "O"], ["B-PER", "I-PER"], ["B-LOC"]]
    assert majority_tags(train_words, train_tags, [["Paris", "Hilton", "sings"]]) == [["B-LOC", "I-PER", "O"]]

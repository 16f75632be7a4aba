import numpy as np
import pytest

from tfllm.metrics.classification import (
    accuracy,
    classification_report,
    confusion_matrix,
    precision_recall_f1,
)

# Three classes, hand-counted:
#   true 0: predicted 0, 0, 1        -> row [2, 1, 0]
#   true 1: predicted 1, 2           -> row [0, 1, 1]
#   true 2: predicted 2, 2, 0, 2     -> row [1, 0, 3]
Y_TRUE = [0, 0, 0, 1, 1, 2, 2, 2, 2]
Y_PRED = [0, 0, 1, 1, 2, 2, 2, 0, 2]


def test_confusion_matrix_rows_are_true_labels():
    assert confusion_matrix(Y_TRUE, Y_PRED).tolist() == [[2, 1, 0], [0, 1, 1], [1, 0, 3]]


def test_accuracy_hand_computed():
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(6 / 9)
    assert accuracy([], []) == 0.0


def test_precision_recall_f1_hand_computed():
    precision, recall, f1, support = precision_recall_f1(Y_TRUE, Y_PRED)
    # Precision = diagonal / column sums (3, 2, 4); recall = diagonal / row sums (3, 2, 4).
    np.testing.assert_allclose(precision, [2 / 3, 1 / 2, 3 / 4])
    np.testing.assert_allclose(recall, [2 / 3, 1 / 2, 3 / 4])
    np.testing.assert_allclose(f1, [2 / 3, 1 / 2, 3 / 4])
    assert support.tolist() == [3, 2, 4]


def test_asymmetric_binary_case():
    # tp=1, fp=1, fn=2 for class 1.
    precision, recall, f1, _ = precision_recall_f1([1, 1, 1, 0, 0], [1, 0, 0, 1, 0])
    assert precision[1] == pytest.approx(0.5)
    assert recall[1] == pytest.approx(1 / 3)
    assert f1[1] == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3))
    # Class 0: predicted 3 times (rows 2, 3, 5), right once; 2 true examples.
    assert precision[0] == pytest.approx(1 / 3) and recall[0] == pytest.approx(0.5)


def test_class_never_predicted_scores_zero_not_nan():
    precision, recall, f1, support = precision_recall_f1([0, 1, 2], [0, 0, 0], num_classes=4)
    assert precision.tolist() == [pytest.approx(1 / 3), 0.0, 0.0, 0.0]
    assert recall.tolist() == [1.0, 0.0, 0.0, 0.0]
    assert not np.isnan(f1).any()
    assert support.tolist() == [1, 1, 1, 0]


def test_report_macro_figures_and_labels():
    report = classification_report(Y_TRUE, Y_PRED, labels=["negative", "neutral", "positive"])
    assert report["examples"] == 9
    assert report["accuracy"] == pytest.approx(6 / 9)
    assert report["macro_precision"] == pytest.approx((2 / 3 + 1 / 2 + 3 / 4) / 3)
    assert report["macro_f1"] == pytest.approx((2 / 3 + 1 / 2 + 3 / 4) / 3)
    assert report["per_class"]["positive"] == {
        "precision": pytest.approx(0.75),
        "recall": pytest.approx(0.75),
        "f1": pytest.approx(0.75),
        "support": 4,
    }
    assert report["labels"] == ["negative", "neutral", "positive"]
    assert report["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [1, 0, 3]]


def test_report_matches_scikit_learn_when_available():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    report = classification_report(y_true, y_pred)
    assert report["macro_f1"] == pytest.approx(metrics.f1_score(y_true, y_pred, average="macro"))
    assert report["macro_precision"] == pytest.approx(
        metrics.precision_score(y_true, y_pred, average="macro")
    )
    assert report["confusion_matrix"] == metrics.confusion_matrix(y_true, y_pred).tolist()


@pytest.mark.parametrize(
    "y_true, y_pred, message",
    [
        ([0, 1], [0], "same length"),
        ([[0, 1]], [[0, 1]], "1-D"),
        ([0.5, 1], [0, 1], "integer class ids"),
        ([-1, 1], [0, 1], "non-negative"),
    ],
)
def test_bad_inputs_raise(y_true, y_pred, message):
    with pytest.raises(ValueError, match=message):
        confusion_matrix(y_true, y_pred)


def test_ids_beyond_num_classes_raise():
    with pytest.raises(ValueError, match="num_classes"):
        confusion_matrix([0, 3], [0, 1], num_classes=2)

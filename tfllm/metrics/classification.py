"""Classification metrics: accuracy, per-class and macro precision/recall/F1, confusion matrix.

Plain NumPy over integer class ids, so they run anywhere (after `model.predict`,
on a served model's answers) and match scikit-learn's definitions: a class
with no predicted (or no true) examples gets precision (or recall) 0, and
macro figures are unweighted means over all classes, including classes absent
from this data.
"""

import numpy as np


def _as_ids(values, name):
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"`{name}` must be a 1-D sequence of class ids. Received shape: {values.shape}")
    if values.size and values.dtype.kind not in "iu":
        if values.dtype.kind == "f" and np.all(np.mod(values, 1) == 0):
            values = values.astype(np.int64)
        else:
            raise ValueError(f"`{name}` must hold integer class ids. Received dtype: {values.dtype}")
    values = values.astype(np.int64)
    if values.size and values.min() < 0:
        raise ValueError(f"`{name}` must hold non-negative class ids. Received: {int(values.min())}")
    return values


def _check_pair(y_true, y_pred, num_classes):
    y_true = _as_ids(y_true, "y_true")
    y_pred = _as_ids(y_pred, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"`y_true` and `y_pred` must have the same length. Received: {len(y_true)} and {len(y_pred)}"
        )
    if num_classes is None:
        num_classes = int(max(y_true.max(initial=-1), y_pred.max(initial=-1))) + 1
    elif max(y_true.max(initial=-1), y_pred.max(initial=-1)) >= num_classes:
        raise ValueError(f"Class ids must be below num_classes. Received: num_classes={num_classes}")
    return y_true, y_pred, num_classes


def confusion_matrix(y_true, y_pred, num_classes=None):
    """Counts examples by (true class, predicted class).

    Args:
        y_true: true class ids, shape `(n,)`.
        y_pred: predicted class ids, shape `(n,)`.
        num_classes: number of classes (default: the largest id seen + 1).

    Returns:
        int64 array `(num_classes, num_classes)`; row = true class, column =
        predicted class.

    Example:
        >>> confusion_matrix([0, 1, 1], [0, 0, 1]).tolist()
        [[1, 0], [1, 1]]
    """
    y_true, y_pred, num_classes = _check_pair(y_true, y_pred, num_classes)
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def accuracy(y_true, y_pred):
    """Share of examples whose predicted class is the true class (0.0 when empty)."""
    y_true, y_pred, _ = _check_pair(y_true, y_pred, None)
    return float(np.mean(y_true == y_pred)) if y_true.size else 0.0


def _safe_divide(numerator, denominator):
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def precision_recall_f1(y_true, y_pred, num_classes=None):
    """Per-class precision, recall, F1 and support.

    Returns:
        Four float64/int64 arrays of shape `(num_classes,)`: precision, recall,
        f1, support (true examples per class).
    """
    matrix = confusion_matrix(y_true, y_pred, num_classes)
    true_positives = np.diag(matrix)
    predicted = matrix.sum(axis=0)
    support = matrix.sum(axis=1)
    precision = _safe_divide(true_positives, predicted)
    recall = _safe_divide(true_positives, support)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    return precision, recall, f1, support


def classification_report(y_true, y_pred, labels=None, num_classes=None):
    """All figures of a classifier evaluation as a JSON-ready dict.

    Args:
        y_true: true class ids.
        y_pred: predicted class ids.
        labels: class names in id order (default: "0", "1", ...); their
            number sets `num_classes`.
        num_classes: number of classes when `labels` is not given.

    Returns:
        `{"examples", "accuracy", "macro_precision", "macro_recall",
        "macro_f1", "per_class": {label: {"precision", "recall", "f1",
        "support"}}, "labels": [...], "confusion_matrix": [[...]]}` with plain
        Python numbers (rows of the matrix are true labels).

    Example:
        >>> report = classification_report([0, 1, 1], [0, 0, 1], labels=["neg", "pos"])
        >>> report["accuracy"], report["per_class"]["pos"]["recall"]
        (0.6666666666666666, 0.5)
    """
    if labels is not None:
        labels = [str(label) for label in labels]
        num_classes = len(labels)
    matrix = confusion_matrix(y_true, y_pred, num_classes)
    num_classes = matrix.shape[0]
    if labels is None:
        labels = [str(index) for index in range(num_classes)]
    precision, recall, f1, support = precision_recall_f1(y_true, y_pred, num_classes)
    total = int(matrix.sum())
    return {
        "examples": total,
        "accuracy": float(np.trace(matrix) / total) if total else 0.0,
        "macro_precision": float(precision.mean()) if num_classes else 0.0,
        "macro_recall": float(recall.mean()) if num_classes else 0.0,
        "macro_f1": float(f1.mean()) if num_classes else 0.0,
        "per_class": {
            label: {
                "precision": float(precision[index]),
                "recall": float(recall[index]),
                "f1": float(f1[index]),
                "support": int(support[index]),
            }
            for index, label in enumerate(labels)
        },
        "labels": labels,
        "confusion_matrix": matrix.tolist(),
    }

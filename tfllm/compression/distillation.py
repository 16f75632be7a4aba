"""Knowledge distillation: a student trained on a teacher's softened probabilities and the labels.

Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural
Network". tfllm classifiers output probabilities, not logits; softening
`p` at temperature T is `softmax(log(p) / T)`, which equals softening the
logits (log-softmax differs from the logits by a per-row constant).

The teacher runs once over the training texts (`teacher_probabilities`), and
its probabilities travel with the labels as one float target row
`[label_id, p_1, ..., p_k]` (`distillation_targets`), so the student trains
with plain `model.compile(loss=DistillationLoss(...))` / `model.fit()` under
any strategy.
"""

import keras
import numpy as np
from keras import ops

_EPSILON = 1e-7


def soften(probabilities, temperature):
    """`softmax(log(p) / T)` along the last axis: probabilities at temperature T."""
    logits = ops.log(ops.clip(probabilities, _EPSILON, 1.0)) / temperature
    return ops.softmax(logits, axis=-1)


def distillation_loss(labels, student_probabilities, teacher_probabilities, temperature=2.0, alpha=0.5):
    """Per-example `alpha * T**2 * KL(teacher_T || student_T) + (1 - alpha) * CE(labels, student)`.

    The `T**2` factor keeps the soft term's gradients on the scale of the
    hard term's as T changes (Hinton et al., section 2).

    Args:
        labels: int class ids `(batch,)`.
        student_probabilities: `(batch, classes)`.
        teacher_probabilities: `(batch, classes)`.
        temperature: softening temperature T > 0.
        alpha: weight of the soft (teacher) term, in [0, 1].

    Returns:
        float32 losses `(batch,)`.
    """
    student = ops.cast(student_probabilities, "float32")
    teacher = ops.cast(teacher_probabilities, "float32")
    soft_teacher = soften(teacher, temperature)
    soft_student = soften(student, temperature)
    kl = ops.sum(
        soft_teacher * (ops.log(ops.clip(soft_teacher, _EPSILON, 1.0)) - ops.log(ops.clip(soft_student, _EPSILON, 1.0))),
        axis=-1,
    )
    hard = keras.losses.sparse_categorical_crossentropy(ops.cast(labels, "int32"), student)
    return alpha * temperature**2 * kl + (1.0 - alpha) * hard


def check_distillation_args(temperature, alpha):
    if not float(temperature) > 0:
        raise ValueError(f"`temperature` must be positive. Received: temperature={temperature!r}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"`alpha` must be in [0, 1]. Received: alpha={alpha!r}")


@keras.saving.register_keras_serializable(package="tfllm")
class DistillationLoss(keras.losses.Loss):
    """`distillation_loss` as a Keras loss over targets `[label_id, teacher p_1..p_k]`.

    Args:
        temperature: softening temperature T > 0.
        alpha: weight of the soft (teacher) term, in [0, 1].
        **kwargs: `keras.losses.Loss` arguments (`name`, `reduction`).

    Example:
        >>> student.compile("adam", loss=DistillationLoss(temperature=2.0, alpha=0.7))
        >>> student.fit(ids, distillation_targets(label_ids, teacher_probs))
    """

    def __init__(self, temperature=2.0, alpha=0.5, name="distillation_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        check_distillation_args(temperature, alpha)
        self.temperature = float(temperature)
        self.alpha = float(alpha)

    def call(self, y_true, y_pred):
        return distillation_loss(y_true[:, 0], y_pred, y_true[:, 1:], self.temperature, self.alpha)

    def get_config(self):
        config = super().get_config()
        config.update({"temperature": self.temperature, "alpha": self.alpha})
        return config


@keras.saving.register_keras_serializable(package="tfllm")
class DistilledAccuracy(keras.metrics.Metric):
    """Accuracy of the predictions against the label column of distillation targets."""

    def __init__(self, name="accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.correct = self.add_weight(name="correct", initializer="zeros")
        self.count = self.add_weight(name="count", initializer="zeros")

    def update_state(self, y_true, y_pred, sample_weight=None):
        hits = ops.cast(ops.equal(ops.argmax(y_pred, axis=-1), ops.cast(y_true[:, 0], "int32")), "float32")
        self.correct.assign_add(ops.sum(hits))
        self.count.assign_add(ops.cast(ops.shape(hits)[0], "float32"))

    def result(self):
        return self.correct / ops.maximum(self.count, 1.0)


def distillation_targets(labels, teacher_probabilities):
    """float32 rows `[label_id, teacher p_1, ..., p_k]`, the targets `DistillationLoss` reads."""
    labels = np.asarray(labels, dtype=np.float32).reshape(-1, 1)
    teacher_probabilities = np.asarray(teacher_probabilities, dtype=np.float32)
    if teacher_probabilities.ndim != 2 or len(teacher_probabilities) != len(labels):
        raise ValueError(
            f"need one teacher probability row per label; got {teacher_probabilities.shape} for {len(labels)} labels"
        )
    return np.concatenate([labels, teacher_probabilities], axis=1)


def teacher_probabilities(teacher, texts, batch_size=256):
    """The teacher's probabilities `(n, classes)` on raw texts.

    Args:
        teacher: a `ClassifierExport` or a loaded `serving_default` signature
            (`load_classifier_export(...)[0]`).
        texts: a list of strings.
        batch_size: texts per call.
    """
    from tfllm.tasks.classifier_export import predict_outputs

    return predict_outputs(teacher, list(texts), batch_size)[0]

"""Distillation: the loss by hand, a student that learns from a teacher, bad teachers."""

import keras
import numpy as np
import pytest
from tiny_runs import make_run

from tfllm.compression import DistillationLoss, distill_run, distillation_loss, distillation_targets


def _softened(p, temperature):
    z = np.log(p) / temperature
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_distillation_loss_by_hand():
    student = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], "float32")
    teacher = np.array([[0.9, 0.05, 0.05], [0.2, 0.2, 0.6]], "float32")
    labels = np.array([0, 1])
    temperature, alpha = 2.0, 0.3
    soft_t, soft_s = _softened(teacher, temperature), _softened(student, temperature)
    kl = np.sum(soft_t * (np.log(soft_t) - np.log(soft_s)), axis=-1)
    ce = -np.log(student[np.arange(2), labels])
    expected = alpha * temperature**2 * kl + (1 - alpha) * ce
    actual = keras.ops.convert_to_numpy(distillation_loss(labels, student, teacher, temperature, alpha))
    np.testing.assert_allclose(actual, expected, rtol=1e-5)
    # alpha=0 is plain cross-entropy; a student equal to its teacher has no soft loss.
    hard_only = distillation_loss(labels, student, teacher, 2.0, 0.0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(hard_only), ce, rtol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(distillation_loss(labels, teacher, teacher, 3.0, 1.0)), 0, atol=1e-6)
    loss = DistillationLoss(temperature, alpha)
    assert float(loss(distillation_targets(labels, teacher), student)) == pytest.approx(expected.mean(), rel=1e-5)
    assert DistillationLoss.from_config(loss.get_config()).temperature == temperature


@pytest.mark.parametrize("kwargs", [{"temperature": 0}, {"alpha": 1.5}])
def test_bad_distillation_settings(kwargs):
    with pytest.raises(ValueError, match="must be"):
        DistillationLoss(**kwargs)


@pytest.mark.slow
def test_student_learns_from_a_teacher_run_and_reports(tmp_path, table):
    teacher = make_run(tmp_path / "teacher", "fasttext", train=True, epochs=6)
    result = distill_run(
        teacher, table, "fasttext", str(tmp_path / "student"), epochs=8, runs=3, learning_rate=0.05,
        model_options={"num_buckets": 64, "embedding_dim": 8, "feature_dropout": 0.0, "dropout": 0.0},
        log=lambda line: None,
    )
    assert result["export_path"].endswith("/1") and result["student"] == "fasttext"
    assert result["base_accuracy"] >= 0.9
    assert result["accuracy"] >= 0.8
    for key in ("size_ratio", "latency_ratio", "gzip_ratio"):
        assert result[key] > 0


def test_a_teacher_whose_labels_differ_from_the_data_is_one_line_error(tmp_path):
    from tfllm.data import DataError
    from tiny_runs import make_frame

    teacher = make_run(tmp_path / "teacher", "fasttext")
    frame = make_frame(20)
    frame.loc[3, "label"] = "meh"
    frame.to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(DataError, match="'meh' was not seen in training") as error:
        distill_run(teacher, str(tmp_path / "other.csv"), "fasttext", str(tmp_path / "student"))
    assert "\n" not in str(error.value)
    with pytest.raises(DataError, match="neither a classification run nor a classifier export"):
        distill_run(tmp_path, str(tmp_path / "other.csv"), "fasttext")


@pytest.mark.slow
def test_a_teacher_export_is_loaded_once_for_its_predictions_and_its_report(tmp_path, table, monkeypatch):
    from tfllm.compression.runs import export_classifier, load_run
    from tfllm.tasks import classifier_export

    export, labels, metadata = load_run(make_run(tmp_path / "teacher", "fasttext"))
    teacher = export_classifier(export.model, export.tokenizer, labels.labels, metadata, str(tmp_path / "teacher_export"))
    loaded = []
    load = classifier_export.load_classifier_export
    monkeypatch.setattr(classifier_export, "load_classifier_export", lambda path: loaded.append(path) or load(path))
    result = distill_run(teacher, table, "fasttext", str(tmp_path / "student"), epochs=1, runs=1,
                         model_options={"num_buckets": 64, "embedding_dim": 8}, log=lambda line: None)
    assert result["base"]["model_dir"] == teacher and "base_accuracy" in result
    assert loaded.count(teacher) == 1, loaded

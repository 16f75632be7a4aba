"""Compressing a finished classification run: quantize, prune or distill, export, report.

`compress_run(run_dir, "int8" | "int4" | "prune", ...)` reads what
`ClassificationTask.train` left in a run directory (`model.keras`,
`vocabulary.txt`, `labels.txt`, `metadata.json`), compresses the model,
exports it with `ClassifierExport` as the next version under `export_dir`,
and returns the `compression_report` record beside the uncompressed model.
`distill_run(teacher, data, ...)` trains a small student on a teacher's
probabilities (the teacher: a run directory or any classifier export).
"""

import json
import os
import shutil
import tempfile

from tfllm.compression.pruning import (
    MagnitudePruning,
    PolynomialSparsity,
    check_sparsity,
    model_sparsity,
    prune_once,
    strip_pruning,
)
from tfllm.compression.quantize import quantize_model
from tfllm.compression.report import compression_report

METHODS = ("int8", "int4", "prune", "distill")
RUN_FILES = ("model.keras", "labels.txt", "metadata.json")


def load_run(run_dir):
    """`(ClassifierExport, LabelVocabulary, metadata)` of a classification run directory.

    Any run `ClassificationTask.train` wrote: a tfllm kind with its WordPiece
    vocabulary, or a fine-tuned backbone with the backbone's tokenizer.

    Raises:
        DataError: `run_dir` is not a tfllm classification run (one line).
    """
    from tfllm import data
    from tfllm.tasks.classification import load_run_export

    run_dir = os.fspath(run_dir)
    missing = [name for name in RUN_FILES if not os.path.isfile(os.path.join(run_dir, name))]
    if missing:
        hint = " (an export; int8 and prune need the training run directory)" if _is_export(run_dir) else ""
        raise data.DataError(f"not a tfllm classification run directory{hint}: missing {', '.join(missing)}", path=run_dir)
    try:
        export = load_run_export(run_dir)
    except (ValueError, TypeError, OSError) as error:
        message = " ".join(str(error).split())[:200]
        raise data.DataError(f"cannot load the run's model ({message})", path=run_dir) from None
    metadata = json.loads(export.metadata.numpy().decode("utf-8"))
    labels = [label.decode("utf-8") for label in export.label_names.numpy().tolist()]
    return export, data.LabelVocabulary(labels), metadata


def _is_export(path):
    from tfllm.serving.export import ExportError, resolve_model_dir

    try:
        resolve_model_dir(path)
    except ExportError:
        return False
    return True


def load_frames(path, label_names, *, text_column="text", label_column="label", val_fraction=0.2, seed=0):
    """`(train, validation)` frames of a table whose labels must all be in `label_names`.

    Raises:
        DataError: unreadable table, or a label the model does not know.
    """
    from tfllm import data

    frame = data.load_table(path, text_column, label_column)
    data.LabelVocabulary(label_names).encode(frame.label, source=path)
    return data.train_val_split(frame, val_fraction, seed=seed)


def export_classifier(model, tokenizer, label_names, metadata, export_dir, warmup_texts=None):
    """Exports model + tokenizer + labels as the next version under `export_dir`; returns its path."""
    from tfllm.serving import signatures
    from tfllm.serving.export import export_saved_model
    from tfllm.tasks.classifier_export import ClassifierExport

    export = ClassifierExport(tokenizer, model, label_names, max_length=metadata.get("max_length"), metadata=metadata)
    warmup = {signatures.TEXT: list(warmup_texts[:2])} if warmup_texts else None
    return export_saved_model(export, export_dir, export.signatures(), warmup_inputs=warmup)


def compress_run(run_dir, method, export_dir=None, *, data=None, sparsity=0.8, epochs=2, batch_size=32,
                 learning_rate=None, text_column="text", label_column="label", val_fraction=0.2, seed=0,
                 warmup_texts=None, runs=30, log=print):
    """Compresses the model of a classification run, exports it as a new version, reports.

    Args:
        run_dir: a run directory written by `ClassificationTask.train`.
        method: "int8" or "int4" (post-training weight quantization), or
            "prune" (magnitude pruning to `sparsity`: fine-tuned for `epochs`
            on the train split of `data` with a polynomial schedule, or in
            one shot without `data`).
        export_dir: base path of the new version (default
            `saved_models/<app>`, the app the run trained for).
        data: optional labelled table; its validation split (`val_fraction`,
            `seed`, as training splits) scores both models.
        sparsity: pruning target, in (0, 1).
        epochs, batch_size, learning_rate: pruning fine-tuning settings
            (learning rate default: the kind's training rate).
        text_column, label_column: columns of `data`.
        warmup_texts: texts written as TF Serving warm-up requests.
        runs: timed calls per batch size in the report.
        log: where progress lines go.

    Returns:
        The report record (`compression_report`) plus `method`,
        `export_path`, and for pruning the reached `sparsity`.

    Raises:
        ValueError: unknown method, or sparsity outside (0, 1).
        DataError: not a run directory, unreadable data, unknown labels.
    """
    if method not in ("int8", "int4", "prune"):
        raise ValueError(f"unknown compression method {method!r}; expected int8, int4 or prune (distill: distill_run)")
    if method == "prune":
        sparsity = check_sparsity(sparsity)
    export, labels, metadata = load_run(run_dir)
    model, tokenizer = export.model, export.tokenizer
    export_dir = export_dir or os.path.join("saved_models", metadata.get("app", "model"))
    frames = None
    if data is not None:
        frames = load_frames(data, labels.labels, text_column=text_column, label_column=label_column,
                             val_fraction=val_fraction, seed=seed)
    base_dir = tempfile.mkdtemp(prefix="tfllm-base-")
    try:
        base_path = export_classifier(model, tokenizer, labels.labels, metadata, base_dir)
        extra = {}
        if method == "prune":
            extra["sparsity"] = _prune(model, tokenizer, labels, metadata, frames, sparsity, epochs, batch_size,
                                       learning_rate, seed, log)
            compression = {"method": "prune", "sparsity": extra["sparsity"]}
        else:
            quantize_model(model, method)
            compression = {"method": method}
        compressed_metadata = {**metadata, "compression": compression}
        export_path = export_classifier(model, tokenizer, labels.labels, compressed_metadata, export_dir, warmup_texts)
        log(f"{method}: exported {export_path}")
        texts, label_values = (None, None) if frames is None else (frames[1].text.tolist(), frames[1].label.tolist())
        report = compression_report(base_path, export_path, texts, label_values, runs=runs)
    finally:
        shutil.rmtree(base_dir, ignore_errors=True)
    report["base"]["model_dir"] = os.fspath(run_dir)
    return {"command": "compress", "method": method, "export_path": export_path, **extra, **report}


def _prune(model, tokenizer, labels, metadata, frames, sparsity, epochs, batch_size, learning_rate, seed, log):
    """Prunes `model` in place (fine-tuned on `frames` when given); returns the sparsity reached."""
    if frames is None:
        prune_once(model, sparsity)
        log(f"prune: one-shot magnitude pruning to {sparsity:.0%} (no --data to fine-tune on)")
        return round(model_sparsity(model), 4)
    from tfllm import data
    import keras

    from tfllm.tasks.classification_recipe import LEARNING_RATES, make_optimizer
    from tfllm.training import copy_model

    train, _ = frames
    kind = metadata.get("model", "transformer")
    dataset = data.make_dataset(
        train.text, labels.encode(train.label), tokenizer=tokenizer,
        batch_size=batch_size, max_length=metadata.get("max_length"), seed=seed,
    )
    steps = max(int(dataset.cardinality()), 1) * max(int(epochs), 1)
    # Reach the target two thirds of the way in; the rest recovers accuracy at it.
    end_step = max(steps * 2 // 3, 1)
    schedule = PolynomialSparsity(sparsity, begin_step=0, end_step=end_step, frequency=max(end_step // 10, 1))
    pruning = MagnitudePruning(schedule)
    # Fine-tune a copy: a compiled model would carry its optimizer's slots into the export.
    trainee = copy_model(model)
    # A fine-tuned backbone ("backbone") keeps to a fine-tuning learning rate.
    optimizer = make_optimizer(kind, learning_rate) if kind in LEARNING_RATES else keras.optimizers.Adam(learning_rate or 5e-5)
    trainee.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                    metrics=["accuracy"])
    trainee.fit(dataset, epochs=max(int(epochs), 1), callbacks=[pruning], verbose=0)
    strip_pruning(trainee, pruning)
    model.set_weights(trainee.get_weights())
    reached = model_sparsity(model)
    log(f"prune: fine-tuned {steps} steps to {reached:.1%} sparsity")
    return round(reached, 4)


def load_teacher(teacher):
    """`(predictor, label names, metadata, export path or None)` of a run directory or an export.

    Raises:
        DataError: `teacher` is neither a classification run nor a classifier export.
    """
    from tfllm import data
    from tfllm.serving.export import ExportError
    from tfllm.tasks.classifier_export import load_classifier_export

    teacher = os.fspath(teacher)
    if os.path.isfile(os.path.join(teacher, "model.keras")):
        export, labels, metadata = load_run(teacher)
        return export, labels.labels, metadata, None
    try:
        signature, label_names, metadata, path = load_classifier_export(teacher)
    except ExportError as error:
        raise data.DataError(f"the teacher is neither a classification run nor a classifier export ({error})",
                             path=teacher) from None
    return signature, label_names, metadata, path


def distill_run(teacher, data, model="fasttext", export_dir=None, *, temperature=2.0, alpha=0.5, epochs=5,
                batch_size=32, max_length=None, vocabulary_size=8000, learning_rate=None, model_options=None,
                text_column="text", label_column="label", val_fraction=0.2, seed=0, warmup_texts=None, runs=30,
                log=print):
    """Trains a student classifier on a teacher's probabilities and the labels; exports and reports.

    Args:
        teacher: a classification run directory or a classifier export
            (version directory or base path).
        data: a labelled table; its labels must be the teacher's. The
            student trains on its train split, both models are scored on the
            validation split (`val_fraction`, `seed`).
        model: the student's kind (`build_classifier`), e.g. "fasttext".
        export_dir: base path of the student's new version (default
            `saved_models/<app>`).
        temperature, alpha: see `distillation_loss`.
        epochs, batch_size, learning_rate, model_options: student training.
        max_length: student input length (default the kind's default).
        vocabulary_size: size of the student's WordPiece vocabulary, built
            on the train split.
        warmup_texts, runs, log: as `compress_run`.

    Returns:
        The report record (`compression_report`, teacher as base) plus
        `method`, `export_path`, `student`.

    Raises:
        ValueError: bad temperature, alpha or model kind.
        DataError: bad teacher, unreadable data, labels the teacher lacks.
    """
    import keras

    from tfllm import data as tfllm_data, text
    from tfllm.compression.distillation import (
        DistillationLoss, DistilledAccuracy, check_distillation_args, distillation_targets, teacher_probabilities,
    )
    from tfllm.models.classifier import KINDS, build_classifier
    from tfllm.tasks.classification import DEFAULT_MAX_LENGTH
    from tfllm.tasks.classification_recipe import make_optimizer, vocabulary_sample

    check_distillation_args(temperature, alpha)
    if model not in KINDS:
        raise ValueError(f"unknown student model {model!r}; expected one of {', '.join(KINDS)}")
    predictor, label_names, teacher_metadata, teacher_path = load_teacher(teacher)
    train, val = load_frames(data, label_names, text_column=text_column, label_column=label_column,
                             val_fraction=val_fraction, seed=seed)
    labels = tfllm_data.LabelVocabulary(label_names)
    keras.utils.set_random_seed(seed)
    targets = distillation_targets(labels.encode(train.label), teacher_probabilities(predictor, train.text.tolist()))
    vocabulary = text.build_wordpiece_vocabulary(vocabulary_sample(train.text, seed=seed), vocabulary_size=vocabulary_size)
    max_length = max_length or DEFAULT_MAX_LENGTH[model]
    dataset = tfllm_data.make_dataset(
        train.text, targets, tokenizer=text.make_wordpiece_tokenizer(vocabulary), batch_size=batch_size,
        max_length=max_length, seed=seed,
    )
    student = build_classifier(model, len(vocabulary), len(label_names), max_length, **(model_options or {}))
    student.compile(optimizer=make_optimizer(model, learning_rate), loss=DistillationLoss(temperature, alpha),
                    metrics=[DistilledAccuracy()])
    history = student.fit(dataset, epochs=epochs, verbose=0)
    log(f"distill: {model} student trained {len(history.history.get('loss', []))} epochs on {len(train)} examples")
    metadata = {
        "app": teacher_metadata.get("app", "model"), "model": model, "max_length": max_length,
        "vocabulary_size": len(vocabulary), "trained_on": os.fspath(data), "examples": len(train),
        "compression": {"method": "distill", "teacher": os.fspath(teacher), "temperature": temperature, "alpha": alpha},
    }
    export_dir = export_dir or os.path.join("saved_models", metadata["app"])
    export_path = export_classifier(student, text.make_wordpiece_tokenizer(vocabulary), label_names, metadata,
                                    export_dir, warmup_texts)
    log(f"distill: exported {export_path}")
    base_dir = tempfile.mkdtemp(prefix="tfllm-teacher-")
    try:
        if teacher_path is None:
            from tfllm.serving.export import export_saved_model

            base = export_saved_model(predictor, base_dir, predictor.signatures())
        else:
            # The teacher export loaded above, not loaded a second time.
            base = (predictor, label_names, teacher_metadata, teacher_path)
        report = compression_report(base, export_path, val.text.tolist(), val.label.tolist(), runs=runs)
    finally:
        shutil.rmtree(base_dir, ignore_errors=True)
    report["base"]["model_dir"] = os.fspath(teacher)
    return {"command": "distill", "method": "distill", "student": model, "export_path": export_path, **report}

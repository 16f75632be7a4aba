"""What compression bought: size, latency and accuracy of an export beside its uncompressed original."""

import gzip
import io
import os
import tarfile
import time

import numpy as np

DEFAULT_TEXTS = ("a short sentence to time the model on", "another, somewhat longer text that the model reads")


def directory_bytes(path):
    """Total size in bytes of the files under `path`."""
    return sum(
        os.path.getsize(os.path.join(directory, name)) for directory, _, names in os.walk(path) for name in names
    )


class _ByteCounter(io.RawIOBase):
    """A write-only stream that keeps only the count of bytes written to it."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def writable(self):
        return True

    def write(self, data):
        self.count += len(data)
        return len(data)


def gzip_bytes(path):
    """Size in bytes of `path` as a gzip-compressed tar (how sparsity pays off in transfer and storage)."""
    # Counted, not kept: a large export's archive need not sit in memory.
    counter = _ByteCounter()
    with gzip.GzipFile(fileobj=counter, mode="wb", compresslevel=6, mtime=0) as stream:
        with tarfile.open(fileobj=stream, mode="w") as archive:
            archive.add(path, arcname=".")
    return counter.count


def parameter_counts(path):
    """`(values, nonzero values)` of the numeric variables an export's checkpoint stores (each once)."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(os.path.join(path, "variables", "variables"))
    total = nonzero = 0
    for name in reader.get_variable_to_shape_map():
        if name.startswith("_CHECKPOINTABLE_OBJECT_GRAPH"):
            continue
        values = np.asarray(reader.get_tensor(name))
        if values.dtype.kind in "fiu":
            total += values.size
            nonzero += int(np.count_nonzero(values))
    return total, nonzero


def latency_ms(signature, texts, batch_size, runs=30, warmup=3):
    """`(p50, p99)` wall-clock milliseconds of one call on a batch of `batch_size` texts."""
    import tensorflow as tf

    from tfllm.serving import signatures

    texts = list(texts) or list(DEFAULT_TEXTS)
    batch = tf.constant([texts[i % len(texts)] for i in range(batch_size)], dtype=tf.string)
    times = []
    for index in range(warmup + runs):
        started = time.perf_counter()
        outputs = signature(**{signatures.TEXT: batch})
        outputs[signatures.LABEL_ID].numpy()
        if index >= warmup:
            times.append((time.perf_counter() - started) * 1000.0)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def measure_export(model_dir, texts=None, labels=None, *, batch_sizes=(1, 32), runs=30):
    """One export's record: parameters, sizes on disk, latencies and (given labels) accuracy.

    Args:
        model_dir: an export's version directory or base path (latest version),
            or what `load_classifier_export` returned for one.
        texts: texts to time on (and to score, with `labels`).
        labels: label names of `texts`, as the export names them.
        batch_sizes: batch sizes to time; the first gives `p50_ms` / `p99_ms`.
        runs: timed calls per batch size.
    """
    from tfllm.tasks.classifier_export import load_classifier_export, predict_outputs

    loaded = model_dir if isinstance(model_dir, tuple) else load_classifier_export(model_dir)
    signature, names, metadata, path = loaded
    total, nonzero = parameter_counts(path)
    record = {
        "model_dir": path,
        "model": metadata.get("model"),
        "parameters": total,
        "nonzero_parameters": nonzero,
        "size_bytes": directory_bytes(path),
        "variables_bytes": directory_bytes(os.path.join(path, "variables")),
        "gzip_bytes": gzip_bytes(path),
    }
    timing_texts = list(texts[:64]) if texts is not None and len(texts) else list(DEFAULT_TEXTS)
    for batch_size in batch_sizes:
        p50, p99 = latency_ms(signature, timing_texts, batch_size, runs=runs)
        record[f"p50_ms_batch_{batch_size}"] = round(p50, 3)
        record[f"p99_ms_batch_{batch_size}"] = round(p99, 3)
    record["p50_ms"] = record[f"p50_ms_batch_{batch_sizes[0]}"]
    record["p99_ms"] = record[f"p99_ms_batch_{batch_sizes[0]}"]
    if texts is not None and labels is not None:
        _, predicted = predict_outputs(signature, list(texts))
        record["accuracy"] = round(float(np.mean([names[i] == str(label) for i, label in zip(predicted, labels)])), 6)
    return record


def _ratio(compressed, base):
    return round(compressed / base, 4) if base else None


def compression_report(base_export_dir, compressed_export_dir, texts=None, labels=None, *, batch_sizes=(1, 32), runs=30):
    """Compares a compressed export with its uncompressed original.

    Args:
        base_export_dir: the uncompressed export (version directory or base
            path, or an already loaded one: see `measure_export`).
        compressed_export_dir: the compressed export.
        texts: validation texts (timing inputs; scored when `labels` is given).
        labels: their label names.
        batch_sizes: batch sizes to time; the first gives `latency_ratio`.
        runs: timed calls per batch size and model.

    Returns:
        A dict: `base` and `compressed` records (see `measure_export`),
        `parameter_ratio` (nonzero values), `size_ratio`, `variables_ratio`, `gzip_ratio`, `latency_ratio` (p50 at
        the first batch size), `latency_ratio_batch_<n>` for each batch size,
        and, with labels, `accuracy`, `base_accuracy` and `accuracy_drop`.
    """
    base = measure_export(base_export_dir, texts, labels, batch_sizes=batch_sizes, runs=runs)
    compressed = measure_export(compressed_export_dir, texts, labels, batch_sizes=batch_sizes, runs=runs)
    report = {
        "base": base,
        "compressed": compressed,
        "parameter_ratio": _ratio(compressed["nonzero_parameters"], base["nonzero_parameters"]),
        "size_ratio": _ratio(compressed["size_bytes"], base["size_bytes"]),
        "variables_ratio": _ratio(compressed["variables_bytes"], base["variables_bytes"]),
        "gzip_ratio": _ratio(compressed["gzip_bytes"], base["gzip_bytes"]),
        "latency_ratio": _ratio(compressed["p50_ms"], base["p50_ms"]),
    }
    for batch_size in batch_sizes:
        key = f"p50_ms_batch_{batch_size}"
        report[f"latency_ratio_batch_{batch_size}"] = _ratio(compressed[key], base[key])
    if "accuracy" in base:
        report["accuracy"] = compressed["accuracy"]
        report["base_accuracy"] = base["accuracy"]
        report["accuracy_drop"] = round(base["accuracy"] - compressed["accuracy"], 6)
    return report

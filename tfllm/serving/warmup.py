"""TF Serving's warmup file: `assets.extra/tf_serving_warmup_requests`."""

import os
from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from tfllm.serving import signatures as sig
from tfllm.serving.layout import ExportError, read_signature_defs

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# TF Serving reads at most this many warmup records.
MAX_WARMUP_RECORDS = 1000


def _per_signature(warmup_inputs):
    if all(isinstance(v, Mapping) for v in warmup_inputs.values()):
        return dict(warmup_inputs)
    return {sig.SERVING_DEFAULT: dict(warmup_inputs)}


def write_warmup_requests(model_dir, warmup_inputs, *, model_name=None):
    """Writes `model_dir/assets.extra/tf_serving_warmup_requests`; returns its path.

    One `PredictionLog` (batch-1 `PredictRequest`) per example, checked
    against the signatures' input keys and dtypes. See `export_saved_model`
    for the format of `warmup_inputs`.
    """
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    signature_defs = read_signature_defs(model_dir)
    logs = []
    for signature_name, inputs in _per_signature(warmup_inputs).items():
        if signature_name not in signature_defs:
            raise ExportError(
                f"warmup_inputs names an unknown signature (have {sorted(signature_defs)}). "
                f"Received: {signature_name!r}"
            )
        spec = signature_defs[signature_name].inputs
        if set(inputs) != set(spec):
            raise ExportError(
                f"warmup_inputs for signature {signature_name!r} must have exactly the keys "
                f"{sorted(spec)}. Received: {sorted(inputs)}"
            )
        arrays = {k: np.asarray(v) for k, v in inputs.items()}
        sizes = {len(a) if a.ndim else 0 for a in arrays.values()}
        if len(sizes) != 1 or 0 in sizes:
            raise ExportError(
                f"warmup_inputs for signature {signature_name!r} need one non-empty list per "
                f"input, all of the same length. Received lengths: {sorted(sizes)}"
            )
        for row in range(sizes.pop()):
            request = predict_pb2.PredictRequest()
            request.model_spec.signature_name = signature_name
            if model_name:
                request.model_spec.name = model_name
            for key, array in arrays.items():
                dtype = tf.dtypes.as_dtype(spec[key].dtype)
                try:
                    request.inputs[key].CopyFrom(tf.make_tensor_proto(array[row:row + 1], dtype=dtype))
                except (TypeError, ValueError) as e:
                    raise ExportError(
                        f"warmup input {key!r} of signature {signature_name!r} does not convert "
                        f"to {dtype.name}: {e}"
                    ) from None
            logs.append(prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)))
    if len(logs) > MAX_WARMUP_RECORDS:
        raise ExportError(f"at most {MAX_WARMUP_RECORDS} warmup requests. Received: {len(logs)}")
    path = os.path.join(model_dir, WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(model_dir):
    """Returns the `PredictionLog`s of a version directory's warmup file ([] if none)."""
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(model_dir, WARMUP_FILE)
    if not tf.io.gfile.exists(path):
        return []
    logs = []
    try:
        for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
            logs.append(prediction_log_pb2.PredictionLog.FromString(record))
    except Exception as e:
        raise ExportError(f"{path}: unreadable warmup file ({e})") from None
    return logs

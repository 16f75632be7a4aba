"""TF Serving's REST JSON tensors on the server side: decoding inputs, encoding outputs.

Request bodies are untrusted: every failure is an INVALID_ARGUMENT naming the input.
"""

import base64

import numpy as np
from tensorflow.core.framework import types_pb2

from tfllm.serving.protocol import as_bytes, dtype_name, invalid, numpy_dtype

# TensorFlow's limit on the rank of a tensor (TensorShape::MaxDimensions).
MAX_RANK = 254


def _short(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _too_deep(name):
    return invalid(f'input "{name}": lists nested more than {MAX_RANK} deep; a tensor has '
                   f"at most {MAX_RANK} dimensions")


def json_bytes(v, name):
    """One JSON string value, text or `{"b64": ...}`, of input or feature `name` as bytes."""
    if isinstance(v, dict):
        if set(v) != {"b64"} or not isinstance(v["b64"], str):
            raise invalid(f'input "{name}": objects must be {{"b64": "<base64>"}}. '
                          f"Received: {_short(v)}")
        try:
            return base64.b64decode(v["b64"], validate=True)
        except ValueError:
            raise invalid(f'input "{name}": invalid base64 in {{"b64": ...}}') from None
    if isinstance(v, str):
        try:
            return v.encode("utf-8")
        except UnicodeEncodeError:  # A lone surrogate such as "\ud800".
            raise invalid(f'input "{name}": strings must be valid Unicode. '
                          f"Received: {_short(v)}") from None
    raise invalid(f'input "{name}" must be DT_STRING. Received: {json_type(v)} value {_short(v)}')


def json_to_ndarray(value, dtype_enum, name):
    """Decodes a JSON value (nested lists, `{"b64": ...}` for bytes) for input `name`."""
    # The walks below also bound the nesting (`depth`: lists around `v`), so
    # converting never recurses past a tensor's rank.
    if dtype_enum == types_pb2.DT_STRING:
        def convert(v, depth):
            if isinstance(v, list):
                if v and depth >= MAX_RANK:
                    raise _too_deep(name)
                return [convert(x, depth + 1) for x in v]
            return json_bytes(v, name)
        converted = convert(value, 0)
        array = _object_array(converted, name)
        return array
    dtype = numpy_dtype(dtype_enum)

    def check(v, depth):
        if isinstance(v, list):
            if v and depth >= MAX_RANK:
                raise _too_deep(name)
            for x in v:
                check(x, depth + 1)
        elif isinstance(v, (str, dict)) or v is None:
            raise invalid(
                f'input "{name}" must be {dtype_name(dtype_enum)}. Received: {json_type(v)} '
                f"value {_short(v)}"
            )
        elif isinstance(v, float) and dtype.kind in "iub":
            raise invalid(f'input "{name}" must be {dtype_name(dtype_enum)}. Received: float value {v!r}')
    check(value, 0)
    try:
        return np.asarray(value, dtype=dtype)
    except (ValueError, OverflowError) as e:
        raise invalid(
            f'input "{name}": values are not a regular {dtype_name(dtype_enum)} tensor ({e})'
        ) from None


def _object_array(nested, name):
    shape = []
    probe = nested
    while isinstance(probe, list):
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    try:
        array = np.empty(shape, dtype=object)
    except ValueError as e:  # numpy holds at most 64 dimensions, fewer than MAX_RANK.
        raise invalid(f'input "{name}": {e}') from None
    try:
        flat = _flatten(nested, shape)
    except ValueError:
        raise invalid(f'input "{name}": nested lists must have a regular shape') from None
    if shape:
        array.reshape(-1)[:] = flat
    else:
        array = np.array(nested, dtype=object)
    return array


def _flatten(nested, shape):
    if not shape:
        if isinstance(nested, list):
            raise ValueError
        return [nested]
    if not isinstance(nested, list) or len(nested) != shape[0]:
        raise ValueError
    out = []
    for item in nested:
        out.extend(_flatten(item, shape[1:]))
    return out


def json_type(v):
    return {dict: "object", list: "list", str: "string", bool: "bool", int: "int",
            float: "float", type(None): "null"}.get(type(v), type(v).__name__)


def ndarray_to_json(array, name):
    """Encodes an output as TF Serving does: strings as text, `*_bytes` outputs as b64."""
    if array.dtype == object or array.dtype.kind in "SU":
        binary = name.endswith("_bytes")

        def encode(v):
            if isinstance(v, list):
                return [encode(x) for x in v]
            v = as_bytes(v)
            if not binary:
                try:
                    return v.decode("utf-8")
                except UnicodeDecodeError:
                    pass
            return {"b64": base64.b64encode(v).decode("ascii")}
        return encode(array.tolist())
    if array.dtype == np.float16:
        array = array.astype(np.float32)
    return array.tolist()

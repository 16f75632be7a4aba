"""Wire formats shared by the model server and its clients.

`TensorProto` <-> numpy conversion, the client side of TF Serving's REST JSON
and `tf.Example` inputs, and `ServingError`, a status code plus message that
maps to gRPC and HTTP the way TF Serving maps it. No model code and no
TensorFlow runtime is needed here: only numpy and the protobuf messages.
"""

import base64

import grpc
import numpy as np
from tensorflow.core.example import example_pb2
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import input_pb2

# HTTP statuses TF Serving's REST API answers with, per gRPC code.
_HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
_CODE_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}
_CODE_BY_HTTP = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


class ServingError(Exception):
    """A request failed with a gRPC status `code` and a one-line `message`."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self):
        return _HTTP_STATUS.get(self.code, 500)

    @classmethod
    def from_code_value(cls, value, message):
        """Builds the error from a numeric status code (TensorFlow's and gRPC's agree)."""
        return cls(_CODE_BY_VALUE.get(value, grpc.StatusCode.UNKNOWN), message)

    @classmethod
    def from_http(cls, status, message):
        return cls(_CODE_BY_HTTP.get(status, grpc.StatusCode.INTERNAL), message)

    def __str__(self):
        return f"{self.code.name}: {self.message}"


def code_name(value):
    """'OK', 'NOT_FOUND', ... for a numeric status code."""
    return _CODE_BY_VALUE.get(value, grpc.StatusCode.UNKNOWN).name


def invalid(message):
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message):
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


# ---------------------------------------------------------------------------
# TensorProto <-> numpy.

_NUMPY = {
    types_pb2.DT_FLOAT: np.float32,
    types_pb2.DT_DOUBLE: np.float64,
    types_pb2.DT_HALF: np.float16,
    types_pb2.DT_INT8: np.int8,
    types_pb2.DT_INT16: np.int16,
    types_pb2.DT_INT32: np.int32,
    types_pb2.DT_INT64: np.int64,
    types_pb2.DT_UINT8: np.uint8,
    types_pb2.DT_UINT16: np.uint16,
    types_pb2.DT_UINT32: np.uint32,
    types_pb2.DT_UINT64: np.uint64,
    types_pb2.DT_BOOL: np.bool_,
}
_DTYPE = {np.dtype(v): k for k, v in _NUMPY.items()}
# Which repeated field holds the values when `tensor_content` is empty.
_VAL_FIELD = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_HALF: "half_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_BOOL: "bool_val",
}


def dtype_name(dtype_enum):
    """'DT_STRING' style name of a DataType enum value."""
    try:
        return types_pb2.DataType.Name(dtype_enum)
    except ValueError:  # A value no DataType has: a proto from a newer or broken sender.
        return f"DataType({dtype_enum})"


def describe_dtype(np_dtype):
    """'DT_FLOAT' style name of a numpy dtype (object arrays hold strings)."""
    np_dtype = np.dtype(np_dtype)
    if np_dtype == object or np_dtype.kind in "SU":
        return "DT_STRING"
    return dtype_name(_DTYPE[np_dtype]) if np_dtype in _DTYPE else str(np_dtype)


def numpy_dtype(dtype_enum):
    """The numpy dtype holding a DataType (object for DT_STRING)."""
    if dtype_enum == types_pb2.DT_STRING:
        return np.dtype(object)
    if dtype_enum not in _NUMPY:
        raise invalid(f"unsupported tensor dtype {dtype_name(dtype_enum)}")
    return np.dtype(_NUMPY[dtype_enum])


# Dtypes whose value field (int32 int_val / half_val) is wider than the dtype, so a
# value can be out of range; every other field's own type bounds its values.
_NARROW = {
    types_pb2.DT_INT8: np.int8,
    types_pb2.DT_INT16: np.int16,
    types_pb2.DT_UINT8: np.uint8,
    types_pb2.DT_UINT16: np.uint16,
    types_pb2.DT_HALF: np.uint16,  # half_val holds the float16 bit patterns.
}


def _narrowed(values, name, dtype_enum):
    """`values` of an int32 field as `_NARROW[dtype_enum]`; out-of-range values are refused."""
    wide = np.asarray(values, dtype=np.int32)
    narrow = _NARROW[dtype_enum]
    info = np.iinfo(narrow)
    if wide.size:
        low, high = int(wide.min()), int(wide.max())
        if low < info.min or high > info.max:
            raise invalid(
                f'input "{name}": {dtype_name(dtype_enum)} values must lie in [{info.min}, '
                f"{info.max}]. Received: {low if low < info.min else high}"
            )
    return wide.astype(narrow)


def to_ndarray(proto, name="tensor", max_bytes=None):
    """Returns a `TensorProto` as a numpy array (bytes objects for DT_STRING).

    Raises INVALID_ARGUMENT naming input `name` for a malformed tensor, or one
    whose values would take more than `max_bytes` bytes.
    """
    if proto.tensor_shape.unknown_rank:
        raise invalid(f'input "{name}": a tensor needs a fully defined shape, not unknown_rank')
    shape = [d.size for d in proto.tensor_shape.dim]
    if any(d < 0 for d in shape):
        raise invalid(f'input "{name}": dimensions must be >= 0. Received shape {shape}')
    size, extent = 1, 1
    for d in shape:  # Python ints: np.prod would overflow on hostile shapes.
        size *= d
        extent *= max(d, 1)
    if extent >= 2 ** 63:  # numpy (and TensorFlow) refuse such shapes even with a 0 in them.
        raise invalid(f'input "{name}": shape {shape} is too large for a tensor')
    if proto.dtype != types_pb2.DT_STRING and proto.dtype not in _NUMPY:
        raise invalid(f'input "{name}": unsupported tensor dtype {dtype_name(proto.dtype)}')
    dtype = numpy_dtype(proto.dtype)
    if max_bytes is not None and extent * dtype.itemsize > max_bytes:
        raise invalid(
            f'input "{name}": shape {shape} is too large: its values would take more than the '
            f"{max_bytes} bytes a request may carry"
        )
    if proto.dtype == types_pb2.DT_STRING:
        if proto.tensor_content:
            raise invalid(f'input "{name}": DT_STRING values go in string_val, not tensor_content')
        values = list(proto.string_val)
        array = np.empty(len(values), dtype=object)
        array[:] = values
    elif proto.tensor_content:
        content = proto.tensor_content
        if len(content) != size * dtype.itemsize:
            raise invalid(
                f'input "{name}": tensor_content has {len(content)} bytes but shape {shape} of '
                f"{dtype_name(proto.dtype)} needs {size * dtype.itemsize}"
            )
        return np.frombuffer(content, dtype=dtype).reshape(shape).copy()
    else:
        values = getattr(proto, _VAL_FIELD[proto.dtype])
        if proto.dtype in _NARROW:
            array = _narrowed(values, name, proto.dtype).view(dtype)
        else:
            array = np.asarray(values, dtype=dtype)
    if array.size == size:
        return array.reshape(shape)
    if array.size > size:
        raise invalid(f'input "{name}": tensor has {array.size} values but its shape {shape} holds {size}')
    # A TensorProto may list fewer values than its shape holds: the last repeats.
    if array.size == 0:
        if array.dtype == object:
            return np.full(shape, b"", dtype=object)
        return np.zeros(shape, dtype=array.dtype)
    return np.concatenate([array, np.repeat(array[-1:], size - array.size)]).reshape(shape)


def as_bytes(value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, np.bytes_):
        return bytes(value)
    raise TypeError(f"expected str or bytes, got {type(value).__name__}")


def to_tensor_proto(value, dtype_enum=None):
    """Returns `value` (numpy array, list, scalar; str/bytes for strings) as a `TensorProto`."""
    array = value if isinstance(value, np.ndarray) else np.asarray(value)
    if dtype_enum is None:
        if array.dtype.kind in "OSU":
            dtype_enum = types_pb2.DT_STRING
        elif array.dtype in _DTYPE:
            dtype_enum = _DTYPE[array.dtype]
        else:
            raise TypeError(f"cannot send numpy dtype {array.dtype} as a tensor")
    proto = tensor_pb2.TensorProto(dtype=dtype_enum)
    proto.tensor_shape.CopyFrom(shape_proto(array.shape))
    if dtype_enum == types_pb2.DT_STRING:
        proto.string_val.extend(as_bytes(v) for v in array.reshape(-1).tolist())
    else:
        proto.tensor_content = np.ascontiguousarray(array, dtype=numpy_dtype(dtype_enum)).tobytes()
    return proto


def shape_proto(shape):
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=int(d)) for d in shape]
    )


def shape_list(shape_proto_):
    """A TensorShapeProto as a list with -1 for unknown dims, or None for unknown rank."""
    if shape_proto_.unknown_rank:
        return None
    return [d.size for d in shape_proto_.dim]


# ---------------------------------------------------------------------------
# REST JSON (TF Serving's encoding of tensors).


def json_to_output(value, name, dtype=None):
    """Client side: turns a JSON output back into numpy (b64 objects into bytes)."""
    def decode(v):
        if isinstance(v, list):
            return [decode(x) for x in v]
        if isinstance(v, dict) and set(v) == {"b64"}:
            return base64.b64decode(v["b64"])
        return v
    decoded = decode(value)
    array = np.asarray(decoded)
    if array.dtype.kind in "SU" or dtype == object:
        return np.asarray(decoded, dtype=object)
    if dtype is not None:
        return array.astype(dtype)
    return array


# ---------------------------------------------------------------------------
# Client-side encoding.


def decode_strings(name, array):
    if array.dtype != object or name.endswith("_bytes"):
        return array
    out = np.empty(array.shape, dtype=object)
    flat = out.reshape(-1)
    for i, v in enumerate(array.reshape(-1)):
        try:
            flat[i] = v.decode("utf-8") if isinstance(v, bytes) else v
        except UnicodeDecodeError:
            flat[i] = v
    return out


def summarize_signatures(signature_defs):
    """`{signature: {"method_name", "inputs": {key: {"dtype", "shape"}}, "outputs": ...}}`."""
    def tensors(infos):
        return {
            k: {"dtype": dtype_name(v.dtype), "shape": shape_list(v.tensor_shape)}
            for k, v in sorted(infos.items())
        }
    return {
        name: {"method_name": d.method_name, "inputs": tensors(d.inputs), "outputs": tensors(d.outputs)}
        for name, d in sorted(signature_defs.items())
        if not name.startswith("__")  # __saved_model_init_op is not callable.
    }


def example_proto(features):
    example = example_pb2.Example()
    for key, value in features.items():
        if isinstance(value, np.ndarray):
            values = value.reshape(-1).tolist()
        else:
            values = list(value) if isinstance(value, (list, tuple)) else [value]
        feature = example.features.feature[key]
        if all(isinstance(v, (bool, int)) for v in values):
            feature.int64_list.value.extend(int(v) for v in values)
        elif all(isinstance(v, (int, float)) for v in values):
            feature.float_list.value.extend(float(v) for v in values)
        else:
            feature.bytes_list.value.extend(
                v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in values
            )
    return example


def input_proto(examples, context=None):
    proto = input_pb2.Input()
    if context is not None:
        target = proto.example_list_with_context
        target.context.CopyFrom(example_proto(context))
    else:
        target = proto.example_list
    for e in examples:
        target.examples.add().CopyFrom(e if isinstance(e, example_pb2.Example) else example_proto(e))
    return proto


def to_json_value(value):
    if not isinstance(value, np.ndarray):
        value = np.asarray(value, dtype=object if _has_bytes(value) else None)
    array = value
    if array.dtype == object or array.dtype.kind in "SU":
        def encode(v):
            if isinstance(v, list):
                return [encode(x) for x in v]
            if isinstance(v, (bytes, np.bytes_)):
                return {"b64": base64.b64encode(bytes(v)).decode("ascii")}
            return str(v)
        return encode(array.tolist())
    return array.tolist()


def _has_bytes(value):
    if isinstance(value, (bytes, bytearray)):
        return True
    if isinstance(value, (list, tuple)):
        return any(_has_bytes(v) for v in value)
    return False

"""Which ops a SavedModel uses, and whether stock TF Serving can run them."""

import functools
import json
import os
import subprocess
import sys

from tfllm.serving.layout import ExportError, read_saved_model_proto


_OP_REGISTRY_SCRIPT = """
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
from tensorflow.core.framework import op_def_pb2
from tensorflow.python.client import pywrap_tf_session as c_api

def registered():
    buf = c_api.TF_GetAllOpList()
    try:
        ops = op_def_pb2.OpList.FromString(c_api.TF_GetBuffer(buf))
    finally:
        c_api.TF_DeleteBuffer(buf)
    return {op.name for op in ops.op}

core = registered()
import tensorflow_text
text = registered() - core
sys.stdout.write(json.dumps({"core": sorted(core), "text": sorted(text)}))
"""


@functools.lru_cache(maxsize=1)
def registered_ops():
    """Returns `(core_ops, text_ops)`: op names of plain TensorFlow and those tensorflow-text adds.

    Both come from the op registry of a fresh `python` process, first right
    after `import tensorflow`, then after `import tensorflow_text`; this
    process may have loaded other custom-op libraries, so its registry cannot
    tell core ops apart.
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", _OP_REGISTRY_SCRIPT], capture_output=True, text=True, env=env
    )
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-1:] or ["no output"]
        raise ExportError(f"could not list the registered TensorFlow ops: {tail[0]}")
    ops = json.loads(result.stdout)
    return frozenset(ops["core"]), frozenset(ops["text"])


def saved_model_ops(path):
    """Returns the sorted op names used by every graph and function of a SavedModel."""
    proto = read_saved_model_proto(path)
    ops = set()
    for meta_graph in proto.meta_graphs:
        library = meta_graph.graph_def.library
        # Calling a library function puts its name in `op`; those are not kernels.
        functions = {f.signature.name for f in library.function}
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in library.function:
            ops.update(node.op for node in function.node_def)
        ops -= functions
    return sorted(ops)


def unsupported_ops(op_names, core_ops, text_ops):
    """Returns the sorted names in `op_names` that are neither core nor tensorflow-text ops."""
    return sorted(set(op_names) - set(core_ops) - set(text_ops))


def xla_ops(op_names):
    """Returns the sorted names in `op_names` that are XLA ops (`Xla*`)."""
    return sorted(op for op in set(op_names) if op.startswith("Xla"))


def check_serving_ops(path):
    """Checks that stock TF Serving can run every op of the SavedModel at `path`.

    Stock TF Serving links core TensorFlow and tensorflow-text ops, nothing
    else, and cannot be relied on for XLA ops even though they are core.
    Returns the sorted op names; raises `ExportError` naming the others.
    """
    ops = saved_model_ops(path)
    xla = xla_ops(ops)
    if xla:
        # TF Serving runs Xla* ops on CPU only with --xla_cpu_compilation_enabled=true
        # (off by default), and its GPU builds fail to load them (tensorflow/serving#2217).
        raise ExportError(
            f"{path}: ops {xla} are XLA ops: stock TF Serving runs them on CPU only with "
            "--xla_cpu_compilation_enabled=true (off by default) and its GPU builds fail on "
            "them (tensorflow/serving issue 2217); build the graph without XLA ops"
        )
    core, text = registered_ops()
    unknown = unsupported_ops(ops, core, text)
    if unknown:
        raise ExportError(
            f"{path}: ops {unknown} are neither core TensorFlow nor tensorflow-text ops, so "
            "stock TF Serving cannot load this model"
        )
    return ops

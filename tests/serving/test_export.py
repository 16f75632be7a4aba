import os
import shutil

import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2

from tfllm.serving import export
from tfllm.serving import signatures as sig
from tfllm.serving.export import ExportError


class Upper(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=sig.TEXT)])
    def serve(self, text):
        return {sig.OUTPUT_TEXT: tf.strings.upper(text)}


def _export_upper(base, **kwargs):
    model = Upper()
    return export.export_saved_model(model, str(base), {sig.SERVING_DEFAULT: model.serve}, **kwargs)


@pytest.mark.slow  # The first op check lists the op registry in a fresh process.
def test_versions_are_numbered_and_never_overwritten(tmp_path):
    base = tmp_path / "upper"
    first = _export_upper(base)
    second = _export_upper(base)
    assert (first, second) == (str(base / "1"), str(base / "2"))
    assert export.list_versions(str(base)) == [1, 2]
    assert export.resolve_model_dir(str(base)) == second
    before = (base / "1" / "saved_model.pb").read_bytes()
    with pytest.raises(ExportError, match="already exists"):
        _export_upper(base, version=1)
    assert (base / "1" / "saved_model.pb").read_bytes() == before
    assert sorted(os.listdir(base)) == ["1", "2"]  # No temporary directory left behind.


def test_failed_export_publishes_nothing(tmp_path):
    base = tmp_path / "upper"
    with pytest.raises(ExportError, match=r"exactly the keys \['text'\]"):
        _export_upper(base, warmup_inputs={"txt": ["hello"]})
    with pytest.raises(ExportError, match="unknown signature"):
        _export_upper(base, warmup_inputs={"other": {sig.TEXT: ["hello"]}})
    with pytest.raises(ExportError, match="unknown signature"):
        _export_upper(base, method_names={"other": sig.CLASSIFY_METHOD})
    assert os.listdir(base) == []
    assert export.next_version(str(base)) == 1


def test_warmup_file_holds_real_predict_requests(probe_base):
    path = probe_base / "1" / export.WARMUP_FILE
    records = [
        prediction_log_pb2.PredictionLog.FromString(r)
        for r in tf.data.TFRecordDataset(str(path)).as_numpy_iterator()
    ]
    requests = [r.predict_log.request for r in records]
    assert [(q.model_spec.signature_name, list(q.inputs[sig.TEXT].string_val)) for q in requests] == [
        (sig.SERVING_DEFAULT, [b"a great film"]),
        (sig.SERVING_DEFAULT, [b"a boring story"]),
        ("generate", [b"hello"]),
    ]
    assert all(q.inputs[sig.TEXT].tensor_shape.dim[0].size == 1 for q in requests)
    assert export.read_warmup_requests(str(probe_base / "1")) == records


def test_method_names_mark_classify_and_regress_signatures(probe_base):
    defs = export.read_signature_defs(str(probe_base))
    assert defs[sig.SERVING_DEFAULT].method_name == sig.PREDICT_METHOD
    assert defs["classify"].method_name == sig.CLASSIFY_METHOD
    assert defs["regress"].method_name == sig.REGRESS_METHOD


def test_check_serving_ops_accepts_a_wordpiece_export(probe_base):
    ops = export.check_serving_ops(str(probe_base / "1"))
    assert {"FastWordpieceTokenizeWithOffsets", "CaseFoldUTF8", "MatMul", "Softmax"} <= set(ops)
    core, text = export.registered_ops()
    assert "FastWordpieceTokenizeWithOffsets" in text and "FastWordpieceTokenizeWithOffsets" not in core
    assert "MatMul" in core and "StatefulPartitionedCall" in core
    # Function names appear as node ops when a function calls another; they are not kernels.
    assert not any(op.startswith("__inference") for op in ops)


def test_check_serving_ops_rejects_an_unknown_op(probe_base, tmp_path):
    model_dir = tmp_path / "1"
    shutil.copytree(probe_base / "1", model_dir)
    pb = model_dir / "saved_model.pb"
    proto = saved_model_pb2.SavedModel.FromString(pb.read_bytes())
    replaced = 0
    for function in proto.meta_graphs[0].graph_def.library.function:
        for node in function.node_def:
            if node.op == "Softmax":
                node.op = "MyFancySoftmax"
                replaced += 1
    assert replaced
    pb.write_bytes(proto.SerializeToString())
    with pytest.raises(ExportError, match=r"\['MyFancySoftmax'\].*stock TF Serving cannot load"):
        export.check_serving_ops(str(model_dir))


def test_unsupported_ops_is_a_set_difference():
    core, text = {"MatMul", "Softmax"}, {"CaseFoldUTF8"}
    assert export.unsupported_ops(["MatMul", "CaseFoldUTF8", "Zeta", "Alpha"], core, text) == ["Alpha", "Zeta"]
    assert export.unsupported_ops(["MatMul"], core, text) == []


def test_write_model_config_round_trips(tmp_path):
    path = tmp_path / "models.config"
    export.write_model_config(str(path), [
        {"name": "sentiment", "base_path": "saved_models/sentiment"},
        {"name": "dialogue", "base_path": str(tmp_path / "d"), "version_policy": "all",
         "version_labels": {"stable": 1, "canary": 2}},
        {"name": "pinned", "base_path": "/m/p", "version_policy": [3, 4]},
        {"name": "recent", "base_path": "/m/r", "version_policy": {"latest": 2}},
    ])
    text = path.read_text()
    assert "model_config_list" in text and 'model_platform: "tensorflow"' in text
    config = export.read_model_config(str(path))
    models = {c.name: c for c in config.model_config_list.config}
    assert models["sentiment"].base_path == os.path.abspath("saved_models/sentiment")
    assert models["sentiment"].model_version_policy.WhichOneof("policy_choice") == "latest"
    assert models["dialogue"].model_version_policy.WhichOneof("policy_choice") == "all"
    assert dict(models["dialogue"].version_labels) == {"stable": 1, "canary": 2}
    assert list(models["pinned"].model_version_policy.specific.versions) == [3, 4]
    assert models["recent"].model_version_policy.latest.num_versions == 2
    assert export.write_model_config(str(path), {"only": "/m/o"}) == str(path)
    assert [c.name for c in export.read_model_config(str(path)).model_config_list.config] == ["only"]


def test_model_config_errors_name_the_problem(tmp_path):
    with pytest.raises(ExportError, match="version_policy of model 'm'"):
        export.model_server_config([{"name": "m", "base_path": "/x", "version_policy": "newest"}])
    with pytest.raises(ExportError, match="unique"):
        export.model_server_config([{"name": "m", "base_path": "/x"}, {"name": "m", "base_path": "/y"}])
    with pytest.raises(ExportError, match=r"models\[0\] needs keys"):
        export.model_server_config([{"name": "m"}])
    bad = tmp_path / "bad.config"
    bad.write_text("model_config_list { config { nme: 'x' } }")
    with pytest.raises(ExportError, match="bad.config"):
        export.read_model_config(str(bad))
    with pytest.raises(ExportError, match="cannot read"):
        export.read_model_config(str(tmp_path / "missing.config"))


class DynamicUpdate(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def serve(self, x):
        from tensorflow.compiler.tf2xla.python import xla

        return {"y": xla.dynamic_update_slice(x, tf.ones([1]), tf.constant([0]))}


def test_export_refuses_xla_ops_and_publishes_nothing(tmp_path):
    base = tmp_path / "xla"
    model = DynamicUpdate()
    with pytest.raises(ExportError) as e:
        export.export_saved_model(model, str(base), {sig.SERVING_DEFAULT: model.serve})
    message = str(e.value)
    assert "['XlaDynamicUpdateSlice']" in message
    assert "--xla_cpu_compilation_enabled=true" in message and "issue 2217" in message
    assert os.listdir(base) == []  # Neither a version nor a temporary directory.
    assert export.list_versions(str(base)) == []


def test_xla_ops_are_those_named_xla():
    assert export.xla_ops(["MatMul", "XlaDynamicUpdateSlice", "XlaGather", "TopKV2"]) == [
        "XlaDynamicUpdateSlice", "XlaGather"
    ]

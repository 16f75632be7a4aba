"""Faults: broken versions while serving, exports that cannot be written, bad startup arguments."""

import errno
import logging
import os
import shutil
import socket
import time

import grpc
import pytest
import tensorflow as tf
from serving_probe import Hammer, wait_for
from tensorflow_serving.apis import get_model_status_pb2, predict_pb2, prediction_service_pb2_grpc

from tfllm.serving import export
from tfllm.serving import signatures as sig
from tfllm.serving.__main__ import main
from tfllm.serving.export import ExportError
from tfllm.serving.server import ModelServer

State = get_model_status_pb2.ModelVersionStatus.State


class WrongKeys(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="txt")])
    def serve(self, txt):
        return {sig.LABEL: tf.strings.upper(txt)}


def _truncate(version_dir):
    pb = version_dir / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[:1000])


def _drop_variables(version_dir):
    shutil.rmtree(version_dir / "variables")


def _wrong_keys(version_dir):
    shutil.rmtree(version_dir)
    model = WrongKeys()
    tf.saved_model.save(model, str(version_dir), signatures={sig.SERVING_DEFAULT: model.serve})


@pytest.mark.parametrize("breakage, fragment", [
    (_truncate, "not a readable SavedModel"),
    (_drop_variables, ""),
    (_wrong_keys, "takes inputs ['txt']"),
])
def test_a_broken_new_version_is_reported_and_the_old_one_serves_on(
        tmp_path, probe_base, caplog, breakage, fragment):
    base = tmp_path / "faulty"
    base.mkdir()
    shutil.copytree(probe_base / "1", base / "1")
    caplog.set_level(logging.INFO, logger="tfllm.serving")
    with ModelServer(model_name="faulty", model_base_path=str(base), port=0,
                     file_system_poll_wait_seconds=0.05) as server:
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "faulty"
        request.inputs[sig.TEXT].CopyFrom(tf.make_tensor_proto(["a great film"]))
        model = server.manager.models["faulty"]
        try:
            with Hammer(stub, request) as load:
                seen, errors = load.seen, load.errors
                wait_for(lambda: seen[1] >= 20, "version 1 traffic")
                staging = base / ".staging-2"
                shutil.copytree(probe_base / "1", staging)
                breakage(staging)
                staging.rename(base / "2")  # Appears whole, as an export publishes it.
                wait_for(lambda: model.status.get(2, (None,))[0] == State.END, "version 2 to fail")
                before = seen[1]
                wait_for(lambda: seen[1] >= before + 40, "more version 1 traffic")  # Several polls.
        finally:
            channel.close()
        state, code, message = model.status[2]
        loaded = sorted(model.servables)
    assert errors == []
    assert set(seen) == {1} and loaded == [1]
    assert code == grpc.StatusCode.UNKNOWN.value[0] and message and fragment in message
    failed = [r.getMessage() for r in caplog.records
              if r.name == "tfllm.serving" and "version 2" in r.getMessage()]
    assert len(failed) == 1 and "failed to load" in failed[0] and "\n" not in failed[0]


class Upper(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=sig.TEXT)])
    def serve(self, text):
        return {sig.OUTPUT_TEXT: tf.strings.upper(text)}


def _export(base):
    model = Upper()
    return export.export_saved_model(model, str(base), {sig.SERVING_DEFAULT: model.serve},
                                     check_ops=False)


@pytest.mark.parametrize("error", [
    OSError(errno.ENOSPC, "No space left on device"),
    tf.errors.PermissionDeniedError(None, None, "/models/.tmp-2; Read-only file system\n\tat ..."),
    tf.errors.ResourceExhaustedError(None, None, "variables.data-00000-of-00001; No space left"),
])
def test_an_export_that_cannot_be_written_leaves_nothing_behind(tmp_path, monkeypatch, error):
    base = tmp_path / "upper"
    _export(base)
    before = {p: p.read_bytes() for p in (base / "1").rglob("*") if p.is_file()}
    real_save = tf.saved_model.save

    def failing_save(obj, path, **kwargs):
        real_save(obj, path, **kwargs)  # Half the export is on disk when the disk fills up.
        raise error
    monkeypatch.setattr(tf.saved_model, "save", failing_save)
    with pytest.raises(ExportError) as e:
        _export(base)
    message = str(e.value)
    assert "\n" not in message and str(base / "2") in message and "nothing was published" in message
    assert sorted(os.listdir(base)) == ["1"]  # No version 2, no temporary directory.
    assert {p: p.read_bytes() for p in (base / "1").rglob("*") if p.is_file()} == before


def _stderr_lines(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_serve_startup_errors_are_one_line_with_exit_code_2(probe_base, tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        start = time.monotonic()
        assert main(["serve", "--model_name=p", f"--model_base_path={probe_base}",
                     f"--port={port}", "--file_system_poll_wait_seconds=0"]) == 2
        assert time.monotonic() - start < 5  # Before any model loads.
        lines = _stderr_lines(capsys)
        assert len(lines) == 1 and lines[0].startswith("error: cannot bind gRPC")
        assert str(port) in lines[0] and "in use" in lines[0]
    missing = tmp_path / "no" / "such" / "models"
    assert main(["serve", "--model_name=p", f"--model_base_path={missing}", "--port=0"]) == 2
    lines = _stderr_lines(capsys)
    assert lines == [f"error: model p: base path {missing} does not exist"]
    config = tmp_path / "models.config"
    config.write_text('model_config_list { config { name: "p" base_path: "/m" ')
    assert main(["serve", f"--model_config_file={config}", "--port=0"]) == 2
    lines = _stderr_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith(f"error: {config}:")

"""Version policies, hot swaps under load, and config reloads."""

import logging

import grpc
import pytest
import tensorflow as tf
from serving_probe import Hammer, wait_for
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tfllm.serving import export
from tfllm.serving import signatures as sig
from tfllm.serving.server import ModelServer

State = get_model_status_pb2.ModelVersionStatus.State


def _request(model):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.inputs[sig.TEXT].CopyFrom(tf.make_tensor_proto(["a great film"]))
    return request


@pytest.mark.slow
def test_new_version_swaps_in_under_load_without_failed_requests(tmp_path, copy_version, caplog):
    base = tmp_path / "swap"
    copy_version(1, base)
    caplog.set_level(logging.INFO, logger="tfllm.serving")
    with ModelServer(model_name="swap", model_base_path=str(base), port=0,
                     file_system_poll_wait_seconds=0.05) as server:
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = _request("swap")
        try:
            with Hammer(stub, request) as load:
                seen, errors = load.seen, load.errors
                wait_for(lambda: seen[1] >= 20, what="version 1 traffic")
                copy_version(2, base)
                wait_for(lambda: seen[2] >= 20, what="version 2 traffic")
                wait_for(lambda: 1 not in server.manager.models["swap"].servables, what="unload")
        finally:
            channel.close()
        states = {v: s[0] for v, s in server.manager.models["swap"].status.items()}
    assert errors == []
    assert seen[1] >= 20 and seen[2] >= 20
    assert states == {1: State.END, 2: State.AVAILABLE}
    messages = [r.getMessage() for r in caplog.records if r.name == "tfllm.serving"]
    loaded = [i for i, m in enumerate(messages) if m.startswith("loaded model swap version 2")]
    unloaded = [i for i, m in enumerate(messages) if m == "unloaded model swap version 1"]
    assert len(loaded) == 1 and len(unloaded) == 1 and loaded[0] < unloaded[0]


@pytest.mark.slow
def test_version_policies_and_config_reload(tmp_path, copy_version):
    base = tmp_path / "policy"
    for version in (1, 2):
        copy_version(version, base)
    config_file = tmp_path / "models.config"
    export.write_model_config(str(config_file), [
        {"name": "pinned", "base_path": str(base), "version_policy": [1]},
    ])
    with ModelServer(model_config_file=str(config_file), port=0,
                     file_system_poll_wait_seconds=0) as server:
        assert sorted(server.manager.models["pinned"].servables) == [1]
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        predict = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict
        models = model_service_pb2_grpc.ModelServiceStub(channel)
        assert predict(_request("pinned")).model_spec.version.value == 1

        new_config = export.model_server_config([
            {"name": "everything", "base_path": str(base), "version_policy": "all",
             "version_labels": {"stable": 1}},
        ])
        response = models.HandleReloadConfigRequest(
            model_management_pb2.ReloadConfigRequest(config=new_config))
        assert response.status.error_code == 0, response.status.error_message
        assert sorted(server.manager.models["everything"].servables) == [1, 2]
        labelled = _request("everything")
        labelled.model_spec.version_label = "stable"
        assert predict(labelled).model_spec.version.value == 1
        with pytest.raises(grpc.RpcError) as e:
            predict(_request("pinned"))  # Dropped from the config, so unloaded.
        assert e.value.code() == grpc.StatusCode.NOT_FOUND

        bad = export.model_server_config([{"name": "x", "base_path": str(base)}])
        bad.model_config_list.config[0].model_platform = "pytorch"
        response = models.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(config=bad))
        assert response.status.error_code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert "pytorch" in response.status.error_message
        assert predict(_request("everything")).model_spec.version.value == 2
        channel.close()


def test_a_version_that_fails_to_load_is_reported_and_the_old_one_keeps_serving(tmp_path, copy_version):
    base = tmp_path / "broken"
    copy_version(1, base)
    with ModelServer(model_name="broken", model_base_path=str(base), port=0,
                     file_system_poll_wait_seconds=0) as server:
        model = server.manager.models["broken"]
        (base / "2").mkdir()
        (base / "2" / "saved_model.pb").write_bytes(b"not a saved model")
        server.poll()
        assert model.status[2][0] == State.END and "not a readable SavedModel" in model.status[2][2]
        assert sorted(model.servables) == [1]
        copy_version(1, base, as_version=3)
        server.poll()
        assert sorted(model.servables) == [3]


def test_server_refuses_to_start_without_a_loadable_model(tmp_path):
    with pytest.raises(export.ExportError, match="no servable version"):
        ModelServer(model_name="empty", model_base_path=str(tmp_path), port=0).start()
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "saved_model.pb").write_bytes(b"junk")
    with pytest.raises(export.ExportError, match="no servable version.*not a readable SavedModel"):
        ModelServer(model_name="junk", model_base_path=str(tmp_path), port=0).start()


def test_busy_ports_fail_with_a_clear_error(probe_base):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot bind gRPC to 127.0.0.1:{port}"):
            ModelServer(model_name="p", model_base_path=str(probe_base), port=port,
                        file_system_poll_wait_seconds=0).start()
        server = ModelServer(model_name="p", model_base_path=str(probe_base), port=0,
                             rest_api_port=port, file_system_poll_wait_seconds=0)
        with pytest.raises(OSError, match=f"cannot bind REST to 127.0.0.1:{port}"):
            server.start()
        server.stop()  # Stopping twice is harmless.

"""ServingClient, RestClient and the `python -m tfllm.serving` command line."""

import json
import os
import socket
import subprocess
import sys

import grpc
import numpy as np
import pytest
from serving_probe import BATCH_SIZE

from tfllm.serving import signatures as sig
from tfllm.serving.__main__ import main
from tfllm.serving.client import RestClient, ServingClient
from tfllm.serving.protocol import ServingError
from tfllm.serving.server import ModelServer

TEXTS = ["a great film", "a boring story"]


@pytest.fixture(scope="module")
def clients(server):
    grpc_client = ServingClient(f"127.0.0.1:{server.port}", timeout=30)
    rest_client = RestClient(f"http://127.0.0.1:{server.rest_api_port}", timeout=30)
    yield grpc_client, rest_client
    grpc_client.close()
    rest_client.close()


def test_grpc_and_rest_clients_return_the_same_outputs(clients, in_process):
    expected = in_process(2, TEXTS)
    grpc_client, rest_client = clients
    results = [
        grpc_client.predict("latest", {sig.TEXT: TEXTS}),
        rest_client.predict("latest", {sig.TEXT: TEXTS}),
        rest_client.predict("latest", {sig.TEXT: TEXTS}, row_format=True),
    ]
    for outputs in results:
        assert set(outputs) == set(sig.CLASSIFIER_OUTPUTS) | {BATCH_SIZE}
        assert outputs[sig.PROBABILITIES].dtype == np.float32
        np.testing.assert_allclose(outputs[sig.PROBABILITIES], expected[sig.PROBABILITIES], rtol=1e-6)
        assert outputs[sig.LABEL].tolist() == [x.decode() for x in expected[sig.LABEL]]
        assert outputs[sig.LABEL_ID].dtype == np.int64
    generated = [c.predict("latest", {sig.TEXT: ["hi"]}, signature="generate")[sig.OUTPUT_TEXT].tolist()
                 for c in clients]
    assert generated == [["echo: HI"], ["echo: HI"]]


def test_clients_pick_versions_and_labels(clients, in_process):
    for client in clients:
        for kwargs, version in (({"version": 1}, 1), ({"label": "canary"}, 2)):
            outputs = client.predict("probe", {sig.TEXT: TEXTS}, **kwargs)
            np.testing.assert_allclose(
                outputs[sig.PROBABILITIES], in_process(version, TEXTS)[sig.PROBABILITIES], rtol=1e-6
            )


def test_metadata_and_status(clients):
    grpc_client, rest_client = clients
    metadata = grpc_client.metadata("probe", version=1)
    assert metadata == rest_client.metadata("probe", version=1)
    assert metadata["version"] == 1
    default = metadata["signatures"][sig.SERVING_DEFAULT]
    assert default["inputs"] == {sig.TEXT: {"dtype": "DT_STRING", "shape": [-1]}}
    assert default["outputs"][sig.PROBABILITIES] == {"dtype": "DT_FLOAT", "shape": [-1, 2]}
    status = grpc_client.status("probe")
    assert status == rest_client.status("probe")
    assert [(s["version"], s["state"], s["error_code"]) for s in status] == [
        (2, "AVAILABLE", "OK"), (1, "AVAILABLE", "OK")
    ]


def test_classify_and_regress_through_both_clients(clients, in_process):
    expected = in_process(2, TEXTS)[sig.PROBABILITIES]
    examples = [{sig.TEXT: t} for t in TEXTS]
    for client in clients:
        rows = client.classify("latest", examples, signature="classify")
        assert [[label for label, _ in row] for row in rows] == [["negative", "positive"]] * 2
        np.testing.assert_allclose([[s for _, s in row] for row in rows], expected, rtol=1e-5)
        np.testing.assert_allclose(client.regress("latest", examples, signature="regress"), expected[:, 1], rtol=1e-5)


def test_client_errors_carry_the_status(clients):
    for client in clients:
        with pytest.raises(ServingError) as e:
            client.predict("nope", {sig.TEXT: ["x"]})
        assert e.value.code == grpc.StatusCode.NOT_FOUND
        with pytest.raises(ServingError) as e:
            client.predict("latest", {"txt": ["x"]})
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and "txt" in e.value.message


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_clients_retry_unavailable_servers_then_give_up(monkeypatch):
    from tfllm.serving import client as client_module

    sleeps = []
    monkeypatch.setattr(client_module.time, "sleep", sleeps.append)
    port = _free_port()
    with ServingClient(f"127.0.0.1:{port}", retries=2, backoff=0.01, timeout=5) as c:
        with pytest.raises(ServingError) as e:
            c.status("any")
    assert e.value.code == grpc.StatusCode.UNAVAILABLE
    assert sleeps == [0.01, 0.02]
    sleeps.clear()
    with RestClient(f"http://127.0.0.1:{port}", retries=1, backoff=0.05) as c:
        with pytest.raises(ServingError) as e:
            c.status("any")
    assert e.value.code == grpc.StatusCode.UNAVAILABLE and sleeps == [0.05]


@pytest.mark.slow
def test_client_imports_no_model_code():
    # The protobuf messages import tensorflow itself; nothing of tfllm's models,
    # the server, keras_hub or tensorflow-text may follow.
    code = (
        "import sys; from tfllm.serving import ServingClient, RestClient; "
        "import tfllm.serving.client; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tfllm', 'keras_hub', 'tensorflow_text')))"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == str(sorted([
        "tfllm", "tfllm.serving", "tfllm.serving.client", "tfllm.serving.protocol",
    ]))


def test_cli_predict_status_and_metadata(server, capsys):
    assert main(["predict", "--server", f"127.0.0.1:{server.port}", "--model", "latest", "great film"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result[sig.LABEL][0] in ("negative", "positive") and len(result[sig.PROBABILITIES][0]) == 2
    rest_url = f"http://127.0.0.1:{server.rest_api_port}"
    assert main(["predict", "--server", rest_url, "--model", "probe", "--version", "1", "great film"]) == 0
    assert json.loads(capsys.readouterr().out)[sig.LABEL_ID][0] in (0, 1)
    assert main(["status", "--server", rest_url, "--model", "probe", "--label", "stable"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["version"] == 1
    assert main(["metadata", "--server", f"127.0.0.1:{server.port}", "--model", "latest"]) == 0
    assert sig.SERVING_DEFAULT in json.loads(capsys.readouterr().out)["signatures"]


def test_cli_errors_are_one_line_with_exit_code_2(server, tmp_path, capsys):
    assert main(["predict", "--server", f"127.0.0.1:{server.port}", "--model", "nope", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "NOT_FOUND" in err and "\n" not in err
    assert main(["serve", "--port", "0"]) == 2
    assert "exactly one of --model_base_path or --model_config_file" in capsys.readouterr().err
    assert main(["serve", "--port", "0", "--model_base_path", str(tmp_path)]) == 2
    assert "no servable version" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["serve", "--enable_batching=maybe"])
    assert e.value.code == 2
    assert main(["serve", "--port", "0", "--model_base_path", str(tmp_path),
                 "--tensorflow_intra_op_parallelism=-1"]) == 2
    assert "tensorflow_intra_op_parallelism must be >= 0" in capsys.readouterr().err


def test_thread_flags_after_tensorflow_started_are_a_clear_error(probe_base):
    import tensorflow as tf

    tf.constant(1.0) + 1.0  # This process has run ops: its thread pools exist.
    taken = tf.config.threading.get_intra_op_parallelism_threads()
    with pytest.raises(ValueError, match="before TensorFlow runs its first op"):
        ModelServer(model_name="probe", model_base_path=str(probe_base), port=0,
                    tensorflow_intra_op_parallelism=taken + 3).start()


@pytest.mark.slow
def test_cli_serve_answers_then_stops_on_sigterm(probe_base, tmp_path):
    import signal
    import time

    port = _free_port()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen(
        [sys.executable, "-m", "tfllm.serving", "serve", "--model_name=probe",
         f"--model_base_path={probe_base}", f"--port={port}", "--enable_batching",
         "--file_system_poll_wait_seconds=0", "--tensorflow_intra_op_parallelism=1",
         "--tensorflow_inter_op_parallelism=2"],
        stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        with ServingClient(f"127.0.0.1:{port}", retries=60, backoff=0.5, timeout=60) as client:
            assert client.predict("probe", {sig.TEXT: ["great"]})[sig.LABEL].shape == (1,)
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert process.returncode == 0
        log = process.stderr.read()
        assert "loaded model probe version 2" in log and "unloaded model probe version 2" in log
        assert "TensorFlow threads: intra-op 1, inter-op 2" in log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

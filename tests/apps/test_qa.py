"""Question-answering app: fine-tune a tiny BERT preset in process, export, serve over gRPC and REST."""

import contextlib
import http.client
import io
import json
import os
import subprocess
import sys

import backbones
import harness
import numpy as np
import pytest

ROOT = harness.REPO_ROOT
TINY = ["--epochs", "1", "--max-seq-length", "48", "--doc-stride", "16", "--max-query-length", "12",
        "--max-answer-length", "8", "--batch-size", "16", "--learning-rate", "3e-3"]
CONTEXT = "The old lighthouse of Lindqvist Harbor is painted red and white. It was built in 1712."
QUESTIONS = ["What colour is the lighthouse?", "When was it built?"]


@pytest.fixture(scope="module")
def app():
    return harness.load_app("qa")


def run_main(app, argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = app.main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def trained(app, tmp_path_factory):
    """Fine-tunes a random keras-hub BERT preset (vocabulary learned on the sample) on the sample."""
    from tfllm import text
    from tfllm.data.squad import SAMPLE, load_squad_sample

    base = tmp_path_factory.mktemp("qa")
    questions = load_squad_sample()
    vocabulary = text.build_wordpiece_vocabulary(
        list({q.context for q in questions}) + [q.question for q in questions], 300,
        reserved_tokens=(*text.RESERVED_TOKENS, "[MASK]"))
    preset = backbones.save_bert_preset(str(base / "bert"), vocabulary, max_sequence_length=48)
    data = os.path.join(ROOT, "tfllm", "data", "samples", SAMPLE)
    code, out, err = run_main(app, ["train", "--data", data, "--backbone", preset, *TINY,
                                    "--run-dir", str(base / "run"), "--export-dir", str(base / "export")])
    assert code == 0, err
    return base, data, harness.last_json(out)


@pytest.mark.slow
def test_train_reports_exact_match_and_f1_beside_the_baseline_and_exports(trained):
    base, _, result = trained
    assert result["train_questions"] + result["val_questions"] == 46
    assert result["train_windows"] > result["train_questions"]  # 48-token windows: contexts are split
    for key in ("val_exact_match", "val_f1", "val_baseline_exact_match", "val_baseline_f1"):
        assert 0.0 <= result[key] <= 100.0
    assert result["val_baseline_f1"] > 0  # the baseline always finds some overlap on the sample
    assert result["export_path"] == str(base / "export" / "1")
    assert os.path.exists(os.path.join(result["export_path"], "assets.extra", "tf_serving_warmup_requests"))
    for name in ("model.keras", "vocabulary.txt", "metadata.json", "history.json"):
        assert os.path.getsize(base / "run" / name) > 0


@pytest.mark.slow
def test_export_answers_with_character_offsets_in_a_fresh_process(trained):
    base, _, _ = trained
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "apps", "qa.py"), "predict", "--model-dir", str(base / "export"),
         "--context", CONTEXT, *QUESTIONS],
        capture_output=True, text=True, timeout=180, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert [line["question"] for line in lines] == QUESTIONS
    for line in lines:
        assert line["answer"] and CONTEXT[line["start"]:line["end"]] == line["answer"]
        assert 0.0 < line["score"] <= 1.0


@pytest.mark.slow
def test_export_matches_the_run(app, trained):
    from tfllm.serving import signatures
    from tfllm.tasks.qa_export import answer_questions, load_qa_export
    from tfllm.tasks.question_answering import load_run_export

    base, _, _ = trained
    signature, metadata, _ = load_qa_export(str(base / "export"))
    inputs = signature.structured_input_signature[1]
    assert set(inputs) == {signatures.QUESTION, signatures.CONTEXT}
    assert set(signature.structured_outputs) == set(signatures.QUESTION_ANSWERING_OUTPUTS)
    assert metadata["featurizer"]["max_seq_length"] == 48
    contexts = [CONTEXT, "Glass frogs live in the rain forests. " * 6]  # the second spans several windows
    questions = [QUESTIONS[0], "Where do glass frogs live?"]
    exported = answer_questions(signature, questions, contexts)
    assert exported == answer_questions(load_run_export(base / "run"), questions, contexts)


@pytest.mark.slow
def test_evaluate_and_export_again(app, trained):
    base, data, _ = trained
    code, out, err = run_main(app, ["evaluate", "--model-dir", str(base / "export"), "--data", data])
    assert code == 0, err
    report = harness.last_json(out)
    assert report["questions"] == 46 and 0 <= report["f1"] <= 100 and report["baseline_f1"] > 0
    code, out, err = run_main(app, ["export", "--run-dir", str(base / "run"), "--export-dir", str(base / "export")])
    assert code == 0, err
    assert harness.last_json(out)["export_path"] == str(base / "export" / "2")


@pytest.mark.slow
def test_model_server_answers_over_grpc_and_rest_and_refuses_empty_inputs(trained):
    from tfllm.serving import signatures
    from tfllm.serving.client import RestClient, ServingClient, ServingError
    from tfllm.serving.server import ModelServer
    from tfllm.tasks.qa_export import answer_questions, load_qa_export

    base, _, _ = trained
    expected = answer_questions(load_qa_export(str(base / "export"))[0], QUESTIONS, [CONTEXT] * 2)
    inputs = {signatures.QUESTION: QUESTIONS, signatures.CONTEXT: [CONTEXT] * 2}
    with ModelServer(model_name="qa", model_base_path=str(base / "export"), port=0, rest_api_port=0,
                     file_system_poll_wait_seconds=0) as server:
        with ServingClient(f"127.0.0.1:{server.port}", timeout=60) as client:
            outputs = client.predict("qa", inputs)
            with pytest.raises(ServingError) as refused:
                client.predict("qa", {signatures.QUESTION: ["", "ok?"], signatures.CONTEXT: [CONTEXT] * 2})
        answers = [a.decode() if isinstance(a, bytes) else str(a) for a in outputs[signatures.ANSWER]]
        assert answers == [record["answer"] for record in expected]
        assert list(outputs[signatures.START]) == [record["start"] for record in expected]
        np.testing.assert_allclose(outputs[signatures.SCORE], [record["score"] for record in expected], atol=1e-6)
        assert refused.value.code.name == "INVALID_ARGUMENT" and "input question holds an empty string" in str(refused.value)

        rest = RestClient(f"http://127.0.0.1:{server.rest_api_port}", timeout=60)
        answered = rest.predict("qa", inputs)
        assert [str(a) for a in answered[signatures.ANSWER]] == answers
        connection = http.client.HTTPConnection("127.0.0.1", server.rest_api_port, timeout=30)
        body = {"inputs": {signatures.QUESTION: QUESTIONS, signatures.CONTEXT: ["  ", CONTEXT]}}
        connection.request("POST", "/v1/models/qa:predict", body=json.dumps(body))
        response = connection.getresponse()
        payload = json.loads(response.read())
        connection.close()
        assert response.status == 400 and "input context holds an empty string" in payload["error"]


def test_bad_input_exits_2_with_one_line(app, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"data": [{"title": "T", "paragraphs": [{"context": "It is red.", "qas": [
        {"id": "q7", "question": "Which colour?", "answers": [{"text": "red", "answer_start": 2}]}]}]}]}))
    cases = [
        (["train", "--data", str(tmp_path / "missing.json")], "no such file"),
        (["train", "--data", str(bad)], "question q7: answers[0].answer_start 2 does not match"),
        (["train", "--data", str(bad), "--max-query-length", "62", "--max-seq-length", "64"], "leaves no room"),
        (["train", "--data", str(bad), "--model", "bert"], "unknown model 'bert'; expected one of transformer, reader"),
        (["train", "--data", str(bad), "--model", "reader", "--backbone", "x"], "use it with --model transformer"),
        (["evaluate", "--model-dir", str(tmp_path / "nothing"), "--data", str(bad)], "nothing"),
        (["predict", "--model-dir", str(tmp_path), "--context", "", "why?"], "--context is empty"),
        (["predict", "--model-dir", str(tmp_path), "--context", "It is red.", " "], "question 1 is empty"),
        (["export", "--run-dir", str(tmp_path / "norun")], "no trained model"),
    ]
    for argv, message in cases:
        code, _, err = run_main(app, argv)
        err = err.strip().splitlines()[-1] if err.strip() else ""
        assert code == 2, (argv, err)
        assert err.startswith("qa: error:") and message in err, (argv, err)

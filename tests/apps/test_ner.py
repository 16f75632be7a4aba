"""NER app: train a small tagger in process, export, reload in a fresh process, serve over gRPC and REST."""

import http.client
import io
import json
import os
from contextlib import redirect_stdout

import harness
import pytest

TEXTS = ["Anna Berg flew from Oslo to Lisbon with Tomas Varga.", "Shares in Nordlys Bank rose in Zürich.", ""]


@pytest.fixture(scope="module")
def app():
    return harness.load_app("ner")


@pytest.fixture(scope="module")
def sample_path(tmp_path_factory):
    from tfllm.data.conll import load_conll_sample

    sample = load_conll_sample("ner")
    path = tmp_path_factory.mktemp("ner-data") / "sample.conll"
    # Four columns, as CoNLL-2003 writes them.
    path.write_text("\n\n".join("\n".join(f"{w} X X {t}" for w, t in zip(words, tags))
                                for words, tags in zip(sample.words, sample.tags)) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def trained(app, sample_path, tmp_path_factory):
    """Trains on the built-in sample (15% held out) and exports version 1."""
    base = tmp_path_factory.mktemp("ner")
    args = ["train", "--data", sample_path, "--val-fraction", "0.15", "--epochs", "10", "--batch-size", "8",
            "--min-word-count", "1", "--patience", "10", "--run-dir", str(base / "run"),
            "--export-dir", str(base / "export")]
    out = io.StringIO()
    with redirect_stdout(out):
        assert app.main(args) == 0
    return base, harness.last_json(out.getvalue())


@pytest.mark.slow
def test_train_beats_the_majority_baseline_and_exports(trained):
    base, result = trained
    assert result["scheme"] == "IOB2" and result["tags"][0] == "O" and len(result["tags"]) == 9
    assert result["train_sentences"] + result["val_sentences"] == 105
    assert result["val_f1"] > result["baseline_f1"] + 0.2, result
    assert set(result["val_per_type"]) <= {"PER", "ORG", "LOC", "MISC"}
    assert result["export_path"] == str(base / "export" / "1")
    for name in ("model.keras", "words.txt", "chars.txt", "tags.txt", "metadata.json"):
        assert os.path.exists(base / "run" / name), name


@pytest.mark.slow
def test_predict_reloads_the_export_and_gives_character_offsets(app, trained, capsys):
    """`predict` reads the SavedModel back (tests/tasks/test_export_matrix.py loads it in a fresh process)."""
    base, _ = trained
    assert app.main(["predict", "--model-dir", str(base / "export"), *TEXTS[:2]]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [line["text"] for line in lines] == TEXTS[:2]
    found = [entity for line in lines for entity in line["entities"]]
    assert found, lines
    for line in lines:
        for entity in line["entities"]:
            assert line["text"][entity["start"] : entity["end"]] == entity["text"]
            assert entity["type"] in ("PER", "ORG", "LOC", "MISC") and 0 < entity["score"] <= 1
    # The sample's own names come back with their types.
    assert {"text": "Anna Berg", "type": "PER"} in [{k: e[k] for k in ("text", "type")} for e in found]


@pytest.mark.slow
def test_signature_takes_strings_and_passes_the_op_check(trained):
    import tensorflow as tf

    from tfllm.serving import signatures
    from tfllm.serving.export import check_serving_ops
    from tfllm.tasks.tagger_export import LoadedTagger

    base, _ = trained
    loaded = LoadedTagger(str(base / "export"))
    spec = loaded.signature.structured_input_signature[1][signatures.TEXT]
    assert spec.dtype == tf.string and spec.shape.as_list() == [None]
    assert set(loaded.signature.structured_outputs) == set(signatures.ENTITY_OUTPUTS)
    check_serving_ops(str(base / "export" / "1"))


@pytest.mark.slow
def test_evaluate_a_table_and_export_again(app, trained, tmp_path, capsys):
    base, _ = trained
    table = tmp_path / "spans.jsonl"
    rows = [{"text": "Anna Berg joined Nordlys Bank in Bergen.", "entities": [[0, 9, "PER"], [17, 29, "ORG"], [33, 39, "LOC"]]},
            {"text": "It rained all day.", "entities": []}]
    table.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert app.main(["evaluate", "--model-dir", str(base / "export"), "--data", str(table),
                     "--baseline-data", str(table)]) == 0
    result = harness.last_json(capsys.readouterr().out)
    assert result["sentences"] == 2 and result["entities"] == 3 and 0.0 <= result["f1"] <= 1.0
    assert result["baseline_f1"] == 1.0  # The baseline learned these very sentences.
    assert app.main(["export", "--run-dir", str(base / "run"), "--export-dir", str(base / "export")]) == 0
    assert harness.last_json(capsys.readouterr().out)["export_path"] == str(base / "export" / "2")


@pytest.mark.slow
def test_model_server_answers_over_grpc_and_rest(trained):
    from tfllm.serving import signatures as sig
    from tfllm.serving.client import ServingClient, ServingError
    from tfllm.serving.server import ModelServer
    from tfllm.tasks.tagger_export import LoadedTagger, entity_records

    base, _ = trained
    expected = entity_records(LoadedTagger(str(base / "export" / "1")), TEXTS)
    with ModelServer(model_name="ner", model_base_path=str(base / "export"), port=0, rest_api_port=0,
                     file_system_poll_wait_seconds=0) as server:
        with ServingClient(f"127.0.0.1:{server.port}", timeout=60) as client:
            outputs = client.predict("ner", {sig.TEXT: TEXTS})
            with pytest.raises(ServingError) as error:
                client.predict("ner", {"txt": TEXTS})
        connection = http.client.HTTPConnection("127.0.0.1", server.rest_api_port, timeout=60)
        connection.request("POST", "/v1/models/ner:predict", json.dumps({"instances": TEXTS[:1]}))
        rest = connection.getresponse()
        rest_body = json.loads(rest.read())
        connection.request("POST", "/v1/models/ner:predict", json.dumps({"inputs": {"text": [1, 2]}}))
        bad = connection.getresponse()
        bad_body = json.loads(bad.read())
    assert outputs[sig.ENTITY_COUNT].tolist() == [len(row) for row in expected]
    for row, entities in enumerate(expected):
        assert [str(t) for t in outputs[sig.ENTITY_TEXT][row][: len(entities)]] == [e["text"] for e in entities]
        assert outputs[sig.ENTITY_START][row][: len(entities)].tolist() == [e["start"] for e in entities]
    assert error.value.code.name == "INVALID_ARGUMENT" and "txt" in error.value.message
    assert rest.status == 200
    prediction = rest_body["predictions"][0]
    count = prediction[sig.ENTITY_COUNT]
    assert count == len(expected[0]) and prediction[sig.ENTITY_TEXT][:count] == [e["text"] for e in expected[0]]
    assert bad.status == 400 and "text" in bad_body["error"]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    base = tmp_path_factory.mktemp("ner-bad")
    files = {
        "columns.txt": "EU NNP B-NP B-ORG\nrejects VBZ O\n",
        "tag.txt": "EU NNP B-NP B-ORG\n\nPeter NNP B-NP S-PER\n",
        "spans.csv": "text,spans\nAnna Berg,[]\n",
        "offsets.csv": 'text,entities\nAnna Berg,"[[0, 99, ""PER""]]"\n',
    }
    for name, text in files.items():
        (base / name).write_text(text)
    return base


@pytest.mark.parametrize("argv, needle", [
    (["train", "--data", "{base}/missing.txt"], "missing.txt"),
    (["train", "--data", "{base}/columns.txt"], "columns.txt: line 2: expected 4 columns like line 1, found 3"),
    (["train", "--data", "{base}/tag.txt"], "tag.txt: line 3: tag 'S-PER' is not IOB"),
    (["train", "--data", "{base}/spans.csv"], "spans.csv: no entities column 'entities'"),
    (["train", "--data", "{base}/offsets.csv"], "offsets.csv: row 1: column 'entities': entity 1 [0, 99) is outside"),
    (["evaluate", "--model-dir", "{base}/nothing", "--data", "{base}/tag.txt"], "nothing"),
    (["predict", "--model-dir", "{base}", ""], "text 1 is empty"),
    (["export", "--run-dir", "{base}/norun"], "no trained model"),
    (["train", "--data", "{base}/tag.txt", "--epochs", "0"], "--epochs"),
    (["train", "--model", "crf", "--data", "{base}/tag.txt"], "unknown model 'crf'"),
])
def test_bad_input_is_one_line_and_exit_2(app, bad_files, argv, needle, capsys):
    argv = [arg.format(base=bad_files) for arg in argv]
    assert app.main(argv) == 2, argv
    err = capsys.readouterr().err.strip()
    assert err.startswith("ner: error:") and "\n" not in err and needle in err, err

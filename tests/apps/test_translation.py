"""Translation app: a pair file in, a tiny model trained in process, exported, served and drawn."""

import http.client
import io
import json
import os
import subprocess
import sys

from contextlib import redirect_stdout

import harness
import numpy as np
import pytest

from tfllm.data import DataError

ROOT = harness.REPO_ROOT
TINY = [
    "--epochs", "1", "--vocabulary-size", "300", "--max-source-length", "16",
    "--max-target-length", "16", "--hidden-dim", "16", "--num-layers", "2", "--num-heads", "2",
    "--intermediate-dim", "32", "--batch-size", "16", "--decoding", "greedy",
]


@pytest.fixture(scope="module")
def app():
    return harness.load_app("translation")


def write_pairs(path, frame):
    path.write_text("".join(f"{s}\t{t}\n" for s, t in zip(frame.source, frame.target)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(app, tmp_path_factory):
    """Trains on the built-in sample written as an English<TAB>Spanish file, scores 4 pairs, exports."""
    from tfllm.data import load_sample

    base = tmp_path_factory.mktemp("translation")
    pairs = write_pairs(base / "pairs.txt", load_sample("translation"))
    args = [
        "train", "--data", str(pairs), "--eval-limit", "4", *TINY,
        "--run-dir", str(base / "run"), "--export-dir", str(base / "export"),
    ]
    out = io.StringIO()
    with redirect_stdout(out):
        code = app.main(args)
    assert code == 0
    return base, pairs, harness.last_json(out.getvalue())


@pytest.fixture(scope="module")
def run_model(trained):
    """`(model, tokenizer, vocabulary)` of the trained run, loaded once."""
    from tfllm.tasks import text_to_text

    return text_to_text.load_run(trained[0] / "run")


def test_metrics_are_sacrebleu_corpus_scores_beside_copying_the_source(app):
    import sacrebleu

    sources = ["The cat is black.", "I am cold."]
    references = ["El gato es negro.", "Tengo frío."]
    predictions = ["El gato es negro.", "Tengo mucho frío."]
    scores = app.translation_metrics(sources, references, predictions)
    assert scores["bleu"] == round(sacrebleu.corpus_bleu(predictions, [references]).score, 2)
    assert scores["chrf"] == round(sacrebleu.corpus_chrf(predictions, [references]).score, 2)
    assert scores["copy_source_bleu"] == round(sacrebleu.corpus_bleu(sources, [references]).score, 2)
    assert app.translation_metrics(sources, references, references)["bleu"] == 100.0
    assert 0 <= scores["copy_source_bleu"] < scores["bleu"] < 100
    assert scores["copy_source_chrf"] < scores["chrf"] < 100


def test_a_file_splits_with_no_sentence_on_both_sides_and_reverses(app, tmp_path):
    import pandas as pd

    from tfllm.data import load_sample

    frame = load_sample("translation")
    pairs = write_pairs(tmp_path / "pairs.txt", frame)
    sources, targets, val_sources, val_targets, _ = app.TASK.training_data(data=str(pairs), val_fraction=0.2, seed=3)
    assert len(sources) + len(val_sources) == len(frame) and 20 <= len(val_sources) <= 40
    assert not set(sources) & set(val_sources) and not set(targets) & set(val_targets)
    # The sample's two English sentences with two translations each stay together.
    train = pd.DataFrame({"source": sources, "target": targets})
    for sentence in ("The car is red.", "Thank you very much."):
        assert (train.source == sentence).sum() in (0, 2) and sentence in sources + val_sources
    # The same seed gives the same split; another seed another one.
    assert app.TASK.training_data(data=str(pairs), val_fraction=0.2, seed=3)[2] == val_sources
    assert app.TASK.training_data(data=str(pairs), val_fraction=0.2, seed=4)[2] != val_sources
    spanish, english, description = app.TASK.read_pairs(data=str(pairs), reverse=True)
    assert (spanish[0], english[0]) == ("Buenos días.", "Good morning.") and description.endswith("(reversed)")


@pytest.mark.slow
def test_train_reports_bleu_and_chrf_next_to_copying_the_source(trained):
    base, _, result = trained
    assert result["data"] == str(base / "pairs.txt") and result["scored_examples"] == 4
    for key in ("bleu", "chrf", "copy_source_bleu", "copy_source_chrf"):
        assert 0.0 <= result[key] <= 100.0
    # English and Spanish share letters, so copying the source has some chrF.
    assert result["copy_source_chrf"] > 0
    assert result["export_path"] == str(base / "export" / "1")
    assert os.path.exists(os.path.join(result["export_path"], "saved_model.pb"))


@pytest.mark.slow
def test_export_matches_in_process_generation_and_is_served_over_grpc_and_rest(app, trained, run_model, capsys):
    import grpc

    from tfllm.serving import signatures
    from tfllm.serving.client import ServingClient
    from tfllm.serving.export import check_serving_ops
    from tfllm.serving.protocol import ServingError
    from tfllm.serving.server import ModelServer
    from tfllm.tasks import text_generator

    base, pairs, result = trained
    assert app.main(["evaluate", "--model-dir", str(base / "export"), "--data", str(pairs), "--limit", "3"]) == 0
    scores = harness.last_json(capsys.readouterr().out)
    assert scores["examples"] == 3 and {"bleu", "chrf", "copy_source_bleu", "copy_source_chrf"} <= set(scores)
    texts = ["Where is the station?", "The dog is white."]
    model, tokenizer, _ = run_model
    expected = text_generator.generate_texts(model, tokenizer, texts, **result["decoding"])
    check_serving_ops(str(base / "export" / "1"))
    with ModelServer(model_name="translation", model_base_path=str(base / "export"), port=0, rest_api_port=0,
                     file_system_poll_wait_seconds=0) as server:
        with ServingClient(f"127.0.0.1:{server.port}", timeout=60) as client:
            outputs = client.predict("translation", {signatures.TEXT: texts})
            with pytest.raises(ServingError) as error:
                client.predict("translation", {"txt": texts})
        status, body = rest_post(server, {"instances": texts})
        bad_status, bad_body = rest_post(server, {"instances": [{"txt": "Hello."}]})
    assert [str(s) for s in outputs[signatures.OUTPUT_TEXT]] == expected
    assert status == 200 and body["predictions"] == expected
    assert bad_status == 400 and "txt" in bad_body["error"]
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT and "txt" in error.value.message


def test_beam_search_is_an_export_option(app):
    from tfllm.cli.text_to_text import decoding_options

    args = app.APP.build_parser().parse_args(["export", "--decoding", "beam", "--num-beams", "4"])
    assert decoding_options(args, 48) == {"strategy": "beam", "num_beams": 4}
    assert app.APP.build_parser().parse_args(["export"]).decoding == app.TASK.decoding


def rest_post(server, request):
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_api_port, timeout=60)
    connection.request("POST", "/v1/models/translation:predict", body=json.dumps(request))
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    return response.status, body


@pytest.mark.slow
def test_attention_draws_rows_that_sum_to_one(app, trained, run_model, tmp_path, capsys):
    from tfllm.tasks.cross_attention import cross_attention

    base, _, _ = trained
    model, tokenizer, vocabulary = run_model
    attention = cross_attention(model, tokenizer, vocabulary, "Where is the station?")
    layers, heads, rows, columns = attention.weights.shape
    assert (layers, heads) == (2, 2)
    assert columns == len(attention.source_tokens) and rows == len(attention.output_tokens) >= 1
    np.testing.assert_allclose(attention.weights.sum(axis=-1), 1.0, atol=1e-5)
    assert "".join(t.replace("##", "") for t in attention.source_tokens) == "Whereisthestation?"

    png = tmp_path / "attention.png"
    assert app.main(["attention", "--model-dir", str(base / "run"), "Where is the station?", "--per-head",
                     "--output", str(png)]) == 0
    result = harness.last_json(capsys.readouterr().out)
    assert result["output_tokens"] == attention.output_tokens and (result["layers"], result["heads"]) == (2, 2)
    import matplotlib.image

    image = matplotlib.image.imread(png)
    # Two rows (layers) of two panels (heads), each at least 100 pixels across.
    assert image.shape[0] > 200 and image.shape[1] > 200 and image[..., :3].std() > 0.05


def test_pair_text_files_are_read_in_the_encoding_given(app, tmp_path):
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("Coffee.\tCaf\xe9.\nGood night.\tBuenas noches.\n", encoding="utf-16")
    sources, targets, _ = app.TASK.read_pairs(data=str(pairs), encoding="utf-16")
    assert (sources, targets) == (["Coffee.", "Good night."], ["Caf\xe9.", "Buenas noches."])
    with pytest.raises(DataError, match="not valid utf-8"):
        app.TASK.read_pairs(data=str(pairs))


def test_bad_input_exits_2_with_one_line_naming_the_place(app, tmp_path, capsys):
    no_tab = tmp_path / "pairs.txt"
    no_tab.write_text("Hello.\tHola.\nGood night. Buenas noches.\n", encoding="utf-8")
    bad_table = tmp_path / "bad.csv"
    bad_table.write_text("english,spanish\nHello.,Hola.\n")
    cases = [
        (["train", "--data", str(no_tab)], f"{no_tab}"),
        (["evaluate", "--model-dir", str(tmp_path), "--data", str(no_tab)], "row 2: expected source<TAB>target"),
        (["train", "--data", str(bad_table)], "source"),
        (["train", "--data", str(bad_table), "--text-column", "english", "--target-column", "es"], "es"),
        (["attention", "--model-dir", str(tmp_path / "norun"), "Hi."], "norun"),
        (["attention", "--model-dir", str(tmp_path), " "], "TEXT is empty"),
        (["predict", "--model-dir", str(tmp_path), ""], "empty"),
    ]
    for argv, named in cases:
        assert app.main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("translation: error:") and "\n" not in err, (argv, err)
        assert named in err, (argv, err)


@pytest.mark.parametrize("name", ["summarization", "dialogue"])
def test_every_text_to_text_app_has_the_attention_command(name):
    from tfllm.cli.text_to_text import attention_command

    other = harness.load_app(name).APP
    args = other.build_parser().parse_args(["attention", "Hi there!", "--output", "hi.png"])
    assert (args.command, args.run_dir, args.text) == ("attention", f"runs/{name}", "Hi there!")
    assert other.all_extra_commands()["attention"][2] is attention_command

"""Tagging with an encoder backbone: sub-words per word, tags read at first sub-words, through the NER app."""

import contextlib
import io

import harness
import keras_hub
import pytest
import tensorflow as tf

from tfllm.tasks.backbone_tagging import SubwordFeaturizer

VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "anna", "berg", "oslo", "fl", "##ew", "to", "##s"]


def featurizer(max_length=16):
    tokenizer = keras_hub.tokenizers.WordPieceTokenizer(vocabulary=VOCABULARY, lowercase=True)
    return SubwordFeaturizer(tokenizer, max_length, start_id=2, end_id=3, unknown_id=1)


def test_word_starts_point_at_first_sub_words():
    words = tf.ragged.constant([["Anna", "flew", "to", "Oslo", "!"], ["Berg"], []])
    out = {key: value.numpy().tolist() for key, value in featurizer()(words).items()}
    # [CLS] anna fl ##ew to oslo [UNK] [SEP]; "!" is not in the vocabulary.
    assert out["token_ids"][0] == [2, 5, 8, 9, 10, 7, 1, 3]
    assert out["word_starts"] == [[1, 2, 4, 5, 6], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]]
    assert out["token_ids"][1][:3] == [2, 6, 3] and out["token_ids"][2][:2] == [2, 3]
    assert out["padding_mask"][1] == [True, True, True] + [False] * 5


def test_words_past_max_length_read_cls():
    out = featurizer(max_length=5)(tf.ragged.constant([["Anna", "flew", "to", "Oslo"]]))
    assert out["token_ids"].numpy().tolist() == [[2, 5, 8, 9, 3]]
    assert out["word_starts"].numpy().tolist() == [[1, 2, 0, 0]]


@pytest.fixture(scope="module")
def backbone_dir(tmp_path_factory):
    """A tiny random encoder with a WordPiece vocabulary of the built-in NER sample."""
    from tfllm import text
    from tfllm.data.conll import load_conll_sample
    from tfllm.models import EncoderBackbone

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    learned = text.build_wordpiece_vocabulary(load_conll_sample("ner").texts(), vocabulary_size=400)
    vocabulary = special + [token for token in learned if token not in special]
    path = str(tmp_path_factory.mktemp("backbone") / "preset")
    EncoderBackbone(vocabulary_size=len(vocabulary), num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
                    max_sequence_length=64).save_to_preset(path)
    keras_hub.tokenizers.WordPieceTokenizer(vocabulary=vocabulary, lowercase=True).save_to_preset(path)
    return path


@pytest.mark.slow
def test_ner_app_fine_tunes_a_backbone_and_exports_it(backbone_dir, tmp_path):
    from tfllm.data.conll import load_conll_sample
    from tfllm.tasks.tagger_export import LoadedTagger, entity_records, tag_sentences
    from tfllm.tasks.tagging_data import load_sentences

    app = harness.load_app("ner")
    sample = tmp_path / "sample.conll"

    sentences = load_conll_sample("ner")
    sample.write_text("\n\n".join("\n".join(f"{w} {t}" for w, t in zip(ws, ts))
                                  for ws, ts in zip(sentences.words, sentences.tags)) + "\n")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = app.main(["train", "--data", str(sample), "--backbone", backbone_dir, "--epochs", "3",
                         "--batch-size", "16", "--learning-rate", "3e-3", "--max-length", "32",
                         "--run-dir", str(tmp_path / "run"), "--export-dir", str(tmp_path / "export")])
    assert code == 0
    result = harness.last_json(out.getvalue())
    assert result["model"] == "backbone" and result["backbone"] == backbone_dir
    assert result["best_val_loss"] < 2.0  # Nine tags: a uniform guess costs ln 9 = 2.2.
    loaded = LoadedTagger(result["export_path"])
    assert loaded.metadata["max_length"] == 32
    held_out = load_sentences(str(sample)).subset(range(5))
    assert [len(tags) for tags in tag_sentences(loaded, held_out.words)] == [len(w) for w in held_out.words]
    records = entity_records(loaded, ["Anna Berg flew to Oslo."])
    assert all(record["text"] == "Anna Berg flew to Oslo."[record["start"]:record["end"]] for record in records[0])

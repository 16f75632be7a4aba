"""load_backbone: keras-hub BERT / GPT-2 presets converted exactly, tfllm presets, one-line errors."""

import json
import os

import keras_hub
import numpy as np
import pytest
from backbones import (
    SIZES,
    VOCAB,
    decoder_batch,
    encoder_batch,
    gpt2_tokenizer,
    randomize,
    real,
    word_piece_tokenizer,
)

from tfllm.models import BackboneError, DecoderBackbone, EncoderBackbone, load_backbone


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    bert = randomize(keras_hub.models.BertBackbone(VOCAB, max_sequence_length=16, **SIZES), seed=1)
    path = str(tmp_path_factory.mktemp("bert"))
    bert.save_to_preset(path)
    keras_hub.models.BertTokenizer(vocabulary=word_piece_tokenizer().vocabulary).save_to_preset(path)
    return bert, path


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    gpt2 = randomize(keras_hub.models.GPT2Backbone(VOCAB, max_sequence_length=16, **SIZES), seed=2)
    path = str(tmp_path_factory.mktemp("gpt2"))
    gpt2.save_to_preset(path)
    gpt2_tokenizer().save_to_preset(path)
    return gpt2, path


def test_bert_preset_converts_to_an_encoder_with_equal_outputs(bert_dir):
    bert, path = bert_dir
    backbone, tokenizer = load_backbone(path, kind="encoder")
    assert isinstance(backbone, EncoderBackbone)
    assert isinstance(tokenizer, keras_hub.models.BertTokenizer)
    batch = encoder_batch()
    mine, theirs = backbone(batch), bert(batch)
    sequence_diff = np.abs(real(mine["sequence_output"], batch) - real(theirs["sequence_output"], batch))
    assert sequence_diff.max() <= 1e-5
    np.testing.assert_allclose(mine["pooled_output"], theirs["pooled_output"], atol=1e-5, rtol=0)
    assert tokenizer.token_to_id("w3") == 8


def test_gpt2_preset_converts_to_a_decoder_with_equal_outputs_and_logits(gpt2_dir):
    gpt2, path = gpt2_dir
    backbone, tokenizer = load_backbone(path, kind="decoder")
    assert isinstance(backbone, DecoderBackbone)
    assert isinstance(tokenizer, keras_hub.models.GPT2Tokenizer)
    batch = decoder_batch()
    assert np.abs(real(backbone(batch), batch) - real(gpt2(batch), batch)).max() <= 1e-5

    from tfllm.models import CausalLanguageModel

    theirs = keras_hub.models.GPT2CausalLM(backbone=gpt2, preprocessor=None)(batch)
    mine = CausalLanguageModel(backbone)(batch)
    assert np.abs(real(mine, batch) - real(theirs, batch)).max() <= 1e-5


def test_converted_backbone_saves_and_reloads_as_tfllm(bert_dir, tmp_path):
    backbone, tokenizer = load_backbone(bert_dir[1])
    backbone.save_to_preset(str(tmp_path))
    tokenizer.save_to_preset(str(tmp_path))
    with open(tmp_path / "config.json") as f:
        assert json.load(f)["registered_name"] == "tfllm>EncoderBackbone"
    again, tokenizer_again = load_backbone(str(tmp_path), kind="encoder")
    batch = encoder_batch()
    np.testing.assert_array_equal(again(batch)["sequence_output"], backbone(batch)["sequence_output"])
    assert tokenizer_again.get_vocabulary() == tokenizer.get_vocabulary()


def _error(source, kind=None):
    with pytest.raises(BackboneError) as info:
        load_backbone(source, kind=kind)
    message = str(info.value)
    assert "\n" not in message
    assert str(source) in message
    return message


def test_missing_directory_or_unknown_preset_name(tmp_path):
    assert "no such backbone directory" in _error(str(tmp_path / "nowhere"))
    assert "not a keras-hub preset name" in _error("bert_not_a_real_preset_en")


def test_incomplete_directories(bert_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no config.json" in _error(str(empty))
    (tmp_path / "file").write_text("x")
    assert "not a backbone directory" in _error(str(tmp_path / "file"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    assert "not valid JSON" in _error(str(broken))
    config = open(os.path.join(bert_dir[1], "config.json")).read()
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text(config)
    assert "no model.weights.h5" in _error(str(no_weights))
    no_tokenizer = tmp_path / "no_tokenizer"
    no_tokenizer.mkdir()
    (no_tokenizer / "config.json").write_text(config)
    (no_tokenizer / "model.weights.h5").write_bytes(open(os.path.join(bert_dir[1], "model.weights.h5"), "rb").read())
    assert "no tokenizer.json" in _error(str(no_tokenizer))
    (no_tokenizer / "tokenizer.json").write_text(open(os.path.join(bert_dir[1], "tokenizer.json")).read())
    (no_tokenizer / "model.weights.h5").write_bytes(b"not an h5 file")
    assert "cannot load the backbone directory" in _error(str(no_tokenizer))


def test_wrong_kind_and_unsupported_backbones(bert_dir, gpt2_dir, tmp_path):
    message = _error(gpt2_dir[1], kind="encoder")
    assert "decoder backbone" in message and "kind='encoder'" in message
    assert "encoder backbone" in _error(bert_dir[1], kind="decoder")
    other = tmp_path / "roberta"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"registered_name": "keras_hub>RobertaBackbone", "config": {}}))
    assert "RobertaBackbone" in _error(str(other))
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"model_type": "t5"}))
    assert "'t5'" in _error(str(hf))
    with pytest.raises(ValueError, match="Received: kind='seq2seq'"):
        load_backbone(bert_dir[1], kind="seq2seq")

"""Loading backbones: tfllm presets and keras-hub BERT / GPT-2 checkpoints converted to tfllm.

A backbone directory is a keras-hub preset: `config.json` (the backbone's
config), `model.weights.h5` and `tokenizer.json` with the tokenizer's
vocabulary under `assets/tokenizer/`, written by `backbone.save_to_preset(dir)`
and `tokenizer.save_to_preset(dir)`.
"""

import glob
import json
import os

import keras
import keras_hub

from tfllm.models.decoder_backbone import DecoderBackbone
from tfllm.models.encoder_backbone import EncoderBackbone

KINDS = ("encoder", "decoder")
# What each backbone class (a config's `registered_name`) is.
_CLASS_KINDS = {
    "tfllm>EncoderBackbone": "encoder",
    "tfllm>DecoderBackbone": "decoder",
    "keras_hub>BertBackbone": "encoder",
    "keras_hub>GPT2Backbone": "decoder",
}
# Hugging Face checkpoints (`model_type` in config.json) keras-hub converts.
_HF_KINDS = {"bert": "encoder", "gpt2": "decoder"}
_DESCRIPTION = "a tfllm, BERT or GPT-2 backbone"


class BackboneError(ValueError):
    """A backbone directory or preset that is missing, incomplete or of the wrong kind.

    The message is one line naming the path or preset and what is wrong.
    """


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def encoder_from_bert(bert):
    """An `EncoderBackbone` holding the weights of a `keras_hub.models.BertBackbone`."""
    if not isinstance(bert, keras_hub.models.BertBackbone):
        raise ValueError(f"`bert` must be a keras_hub BertBackbone. Received: bert={type(bert).__name__}")
    encoder = EncoderBackbone(
        vocabulary_size=bert.vocabulary_size,
        num_layers=bert.num_layers,
        num_heads=bert.num_heads,
        hidden_dim=bert.hidden_dim,
        intermediate_dim=bert.intermediate_dim,
        max_sequence_length=bert.max_sequence_length,
        num_segments=bert.num_segments,
        dropout=bert.dropout,
        # keras-hub's BERT: tanh GELU, layer norms with epsilon 1e-12.
        activation="gelu_approximate",
        layer_norm_epsilon=1e-12,
        dtype=bert.dtype_policy,
    )
    encoder.token_embedding.set_weights(bert.token_embedding.get_weights())
    encoder.embedding.position_embeddings.assign(bert.position_embedding.position_embeddings)
    encoder.embedding.segment_embedding.set_weights(bert.segment_embedding.get_weights())
    encoder.embeddings_layer_norm.set_weights(bert.embeddings_layer_norm.get_weights())
    for mine, theirs in zip(encoder.transformer_layers, bert.transformer_layers):
        mine.load_keras_hub_weights(theirs)
    encoder.pooled_dense.set_weights(bert.pooled_dense.get_weights())
    return encoder


def decoder_from_gpt2(gpt2):
    """A `DecoderBackbone` holding the weights of a `keras_hub.models.GPT2Backbone`."""
    if not isinstance(gpt2, keras_hub.models.GPT2Backbone):
        raise ValueError(f"`gpt2` must be a keras_hub GPT2Backbone. Received: gpt2={type(gpt2).__name__}")
    decoder = DecoderBackbone(
        vocabulary_size=gpt2.vocabulary_size,
        num_layers=gpt2.num_layers,
        num_heads=gpt2.num_heads,
        hidden_dim=gpt2.hidden_dim,
        intermediate_dim=gpt2.intermediate_dim,
        max_sequence_length=gpt2.max_sequence_length,
        dropout=gpt2.dropout,
        layer_norm_epsilon=1e-5,
        dtype=gpt2.dtype_policy,
    )
    decoder.token_embedding.set_weights(gpt2.token_embedding.get_weights())
    decoder.embedding.position_embeddings.assign(gpt2.position_embedding.position_embeddings)
    for mine, theirs in zip(decoder.transformer_layers, gpt2.transformer_layers):
        mine.load_keras_hub_weights(theirs)
    decoder.layer_norm.set_weights(gpt2.layer_norm.get_weights())
    return decoder


def _kind_of_backbone(backbone):
    if isinstance(backbone, (EncoderBackbone, keras_hub.models.BertBackbone)):
        return "encoder"
    if isinstance(backbone, (DecoderBackbone, keras_hub.models.GPT2Backbone)):
        return "decoder"
    return None


def _check_kind(source, found_kind, what, kind):
    if kind is not None and found_kind != kind:
        raise BackboneError(f"{source}: holds a {found_kind} backbone ({what}), expected kind={kind!r}")


def _inspect_directory(path, kind):
    """Checks a local preset directory; returns its config's class name (None for Hugging Face)."""
    if not os.path.exists(path):
        raise BackboneError(f"{path}: no such backbone directory, and not a keras-hub preset name")
    if not os.path.isdir(path):
        raise BackboneError(f"{path}: is a file, not a backbone directory")
    config_path = os.path.join(path, "config.json")
    if not os.path.isfile(config_path):
        raise BackboneError(f"{path}: incomplete backbone directory: no config.json")
    try:
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as error:
        raise BackboneError(f"{path}: config.json is not valid JSON: {_first_line(error)}") from error
    if not isinstance(config, dict):
        raise BackboneError(f"{path}: config.json holds no backbone config")
    if "model_type" in config and "registered_name" not in config:
        model_type = config["model_type"]
        if model_type not in _HF_KINDS:
            raise BackboneError(f"{path}: holds a Hugging Face {model_type!r} checkpoint, not {_DESCRIPTION}")
        _check_kind(path, _HF_KINDS[model_type], f"Hugging Face {model_type}", kind)
        return None
    name = config.get("registered_name")
    if name not in _CLASS_KINDS:
        raise BackboneError(f"{path}: config.json describes {name or 'no registered class'}, not {_DESCRIPTION}")
    _check_kind(path, _CLASS_KINDS[name], name.split(">")[-1], kind)
    has_weights = os.path.isfile(os.path.join(path, "model.weights.h5")) or glob.glob(
        os.path.join(path, "model_*.weights.h5")
    )
    if not has_weights:
        raise BackboneError(f"{path}: incomplete backbone directory: no model.weights.h5")
    if not os.path.isfile(os.path.join(path, "tokenizer.json")):
        raise BackboneError(f"{path}: incomplete backbone directory: no tokenizer.json (save the tokenizer "
                            "with tokenizer.save_to_preset(dir))")
    return name


def _load_tokenizer(path):
    """The keras-hub tokenizer a Keras-format preset directory holds, with its vocabulary."""
    with open(os.path.join(path, "tokenizer.json"), encoding="utf-8") as f:
        tokenizer = keras.saving.deserialize_keras_object(json.load(f))
    if hasattr(tokenizer, "load_preset_assets"):
        tokenizer.load_preset_assets(path)
    return tokenizer


def _is_local(source):
    from keras_hub.src.utils.preset_utils import BUILTIN_PRESETS

    return os.path.exists(source) or not (source in BUILTIN_PRESETS or "://" in source)


def load_backbone(path_or_preset, kind=None, dtype=None):
    """Loads a backbone and its tokenizer as tfllm classes.

    Args:
        path_or_preset: a preset directory written by `save_to_preset` (tfllm,
            keras-hub BERT or GPT-2, or a Hugging Face BERT / GPT-2 checkout),
            or a keras-hub preset name / handle (`"bert_base_en_uncased"`,
            `"gpt2_base_en"`, `"hf://google-bert/bert-base-uncased"`; needs
            internet the first time).
        kind: `"encoder"`, `"decoder"` or None (either).
        dtype: dtype policy to load into (`"mixed_bfloat16"`, ...); None
            loads floats at Keras' default policy, as keras-hub does.

    Returns:
        `(backbone, tokenizer)`: an `EncoderBackbone` or `DecoderBackbone`
        (BERT and GPT-2 weights converted) and the preset's keras-hub tokenizer.

    Raises:
        BackboneError: the directory or preset is missing, incomplete, of an
            unsupported kind, or not the `kind` asked for.

    Example:

    ```python
    backbone, tokenizer = load_backbone("bert_tiny_en_uncased", kind="encoder")
    ```
    """
    if kind not in (None,) + KINDS:
        raise ValueError(f"`kind` must be one of {KINDS} or None. Received: kind={kind!r}")
    source = os.fspath(path_or_preset)
    local = _is_local(source)
    name = _inspect_directory(source, kind) if local else None
    try:
        backbone = keras_hub.models.Backbone.from_preset(source, dtype=dtype)
        if name in ("tfllm>EncoderBackbone", "tfllm>DecoderBackbone"):
            return backbone, _load_tokenizer(source)
        tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(source)
    except BackboneError:
        raise
    except (OSError, ValueError, KeyError, TypeError, ImportError) as error:
        what = "backbone directory" if local else "preset (unknown name, or not downloadable offline)"
        raise BackboneError(f"{source}: cannot load the {what}: {_first_line(error)}") from error
    found = _kind_of_backbone(backbone)
    if found is None:
        raise BackboneError(f"{source}: holds a {type(backbone).__name__}, not {_DESCRIPTION}")
    _check_kind(source, found, type(backbone).__name__, kind)
    if isinstance(backbone, keras_hub.models.BertBackbone):
        backbone = encoder_from_bert(backbone)
    elif isinstance(backbone, keras_hub.models.GPT2Backbone):
        backbone = decoder_from_gpt2(backbone)
    return backbone, tokenizer

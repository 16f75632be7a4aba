"""Repetition control inside the text-in/text-out export: same text as in-process decoding, no Xla ops."""

import keras
import pytest
import tensorflow as tf

TEXTS = ["Anna: are we still on for tonight?", "Ben: I'll bring the drinks, see you at 8!"]
OPTIONS = (
    {"strategy": "greedy", "no_repeat_ngram_size": 2, "repetition_penalty": 1.5},
    {"strategy": "beam", "num_beams": 3, "no_repeat_ngram_size": 2, "repetition_penalty": 1.2},
)


@pytest.fixture(scope="module")
def model_and_tokenizer():
    from tfllm import text
    from tfllm.models.transformer_seq2seq import TransformerSeq2Seq
    from tfllm.tasks.text_to_text import special_ids

    vocabulary = text.build_wordpiece_vocabulary(TEXTS * 4, vocabulary_size=80, lowercase=False)
    _, start, end = special_ids(vocabulary)
    keras.utils.set_random_seed(3)
    model = TransformerSeq2Seq(
        len(vocabulary), 16, 12, num_encoder_layers=1, num_decoder_layers=1, num_heads=2,
        hidden_dim=16, intermediate_dim=16, start_token_id=start, end_token_id=end,
    )
    model.build()
    return model, text.make_wordpiece_tokenizer(vocabulary, lowercase=False)


def _bigrams(row):
    return [tuple(row[i : i + 2]) for i in range(len(row) - 1)]


@pytest.mark.slow
def test_export_decodes_as_generate_and_never_repeats_a_bigram(model_and_tokenizer, tmp_path):
    from tfllm.serving.export import saved_model_ops
    from tfllm.tasks.text_generator import LoadedTextGenerator, export_text_generator, generate_texts

    model, tokenizer = model_and_tokenizer
    ids = [list(row) for row in tokenizer(tf.constant(TEXTS))]
    greedy, beam = OPTIONS
    # An untrained model repeats itself; the options change that.
    assert model.generate(ids, **greedy) != model.generate(ids)
    for options in OPTIONS:
        for row in model.generate(ids, **options):
            assert len(set(_bigrams(row))) == len(_bigrams(row)), row
    # The export's in-graph loop (not XLA-compiled) gives the text XLA-compiled generate() gives.
    path = export_text_generator(model, tokenizer, str(tmp_path / "export"), **beam)
    assert not [op for op in saved_model_ops(path) if op.startswith("Xla")]
    assert LoadedTextGenerator(path).generate(TEXTS) == generate_texts(model, tokenizer, TEXTS, **beam)

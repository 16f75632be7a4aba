"""LSTMTagger: padding never changes real words' tags, save/load keeps outputs, word dropout only trains."""

import keras
import numpy as np

from tfllm.models import LSTMTagger


def batch(pad_word=0, pad_char=0):
    word_ids = np.array([[4, 9, 3, pad_word, pad_word], [5, 1, 7, 8, 2]], "int32")
    case_ids = np.array([[2, 3, 1, 0, 0], [4, 2, 2, 6, 1]], "int32")
    char_ids = np.random.default_rng(0).integers(2, 30, size=(2, 5, 6)).astype("int32")
    char_ids[:, :, 4:] = pad_char
    char_ids[0, 3:] = pad_char
    return {"word_ids": word_ids, "case_ids": case_ids, "char_ids": char_ids}


def model(**options):
    keras.utils.set_random_seed(0)
    return LSTMTagger(50, 30, num_tags=5, num_cases=7, word_dim=8, char_dim=4, char_filters=6, units=8, **options)


def test_padding_never_changes_real_words(tmp_path):
    tagger = model()
    out = keras.ops.convert_to_numpy(tagger(batch()))
    assert out.shape == (2, 5, 5)
    np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-5)
    padded = batch()
    padded["char_ids"][0, 3:] = 0
    padded["case_ids"][0, 3:] = 5  # junk in padding positions
    changed = keras.ops.convert_to_numpy(tagger(padded))
    np.testing.assert_allclose(changed[0, :3], out[0, :3], rtol=1e-6, atol=1e-6)
    path = str(tmp_path / "tagger.keras")
    tagger.save(path)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(keras.models.load_model(path)(batch())), out)


def test_word_dropout_acts_only_while_training():
    plain, dropped = model(dropout=0.0), model(dropout=0.0, word_dropout=0.9)
    plain(batch()), dropped(batch())
    dropped.set_weights(plain.get_weights())
    out = keras.ops.convert_to_numpy(plain(batch()))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(dropped(batch())), out, rtol=1e-6)
    # Without other dropout, training mode changes the output only through dropped words.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(plain(batch(), training=True)), out, rtol=1e-6)
    assert not np.allclose(keras.ops.convert_to_numpy(dropped(batch(), training=True)), out)
    assert LSTMTagger.from_config(dropped.get_config()).word_dropout == 0.9

import keras
import numpy as np
import pytest

from tfllm.layers.masks import combine_masks, compute_causal_mask, merge_padding_and_attention_mask


def test_causal_mask_values_with_cache_index():
    np.testing.assert_array_equal(
        compute_causal_mask(3, 3)[0], [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    )
    # Decoding token 2 of a 4-slot cache: it sees slots 0..2.
    np.testing.assert_array_equal(compute_causal_mask(1, 4, cache_index=2), [[[1, 1, 1, 0]]])


def test_padding_mask_is_expanded_and_combined_with_attention_mask():
    inputs = np.zeros((1, 3, 2), "float32")
    padding = np.array([[1, 1, 0]])
    attention = np.array([[[1, 0, 1], [1, 1, 1], [0, 1, 1]]])
    merged = merge_padding_and_attention_mask(inputs, padding, attention)
    np.testing.assert_array_equal(merged, [[[1, 0, 0], [1, 1, 0], [0, 1, 0]]])
    assert merge_padding_and_attention_mask(inputs).__class__ is type(None)
    assert merged.dtype == "bool"


def test_implicit_keras_mask_is_used_unless_a_padding_mask_is_given():
    embedded = keras.layers.Embedding(5, 2, mask_zero=True)(np.array([[3, 4, 0]]))
    np.testing.assert_array_equal(merge_padding_and_attention_mask(embedded), [[[1, 1, 0]]])
    np.testing.assert_array_equal(
        merge_padding_and_attention_mask(embedded, padding_mask=np.array([[1, 0, 0]])), [[[1, 0, 0]]]
    )
    assert merge_padding_and_attention_mask(None) is None


def test_bad_mask_ranks_are_rejected():
    with pytest.raises(ValueError, match=r"Received: padding_mask.shape=\(1, 1, 3\)$"):
        merge_padding_and_attention_mask(None, np.ones((1, 1, 3)))
    with pytest.raises(ValueError, match=r"Received: attention_mask.shape=\(1, 3\)$"):
        merge_padding_and_attention_mask(None, None, np.ones((1, 3)))


def test_combine_masks_skips_none():
    assert combine_masks(None, None) is None
    np.testing.assert_array_equal(combine_masks(np.array([1, 0, 1]), None, np.array([1, 1, 0])), [1, 0, 0])

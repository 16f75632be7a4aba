"""Attention-mask helpers shared by every attention layer and block.

All masks are boolean, `True` where attention is allowed, and shaped to
broadcast against attention logits of shape `(batch, query_len, key_len)`.
"""

from keras import ops
from keras.src.backend import get_keras_mask


def merge_padding_and_attention_mask(inputs, padding_mask=None, attention_mask=None):
    """Merges a padding mask, an attention mask and the implicit Keras mask.

    An explicit `padding_mask` takes precedence over the Keras mask attached
    to `inputs` (e.g. by `Embedding(mask_zero=True)`); the result is the
    logical AND of the padding mask and `attention_mask`.

    Args:
        inputs: the sequence being attended to (the keys), `(batch, key_len, dim)`,
            or `None` when its Keras mask does not apply (keys from a cache).
        padding_mask: optional `(batch, key_len)` mask, `True`/1 for real tokens.
        attention_mask: optional `(batch, query_len, key_len)` mask.

    Returns:
        A boolean mask of shape `(batch, 1, key_len)` or
        `(batch, query_len, key_len)`, or `None` when there is nothing to mask.
    """
    mask = padding_mask
    if mask is None and inputs is not None:
        mask = get_keras_mask(inputs)
    if mask is not None:
        if len(mask.shape) != 2:
            raise ValueError(
                "`padding_mask` must have shape (batch, sequence_length). "
                f"Received: padding_mask.shape={tuple(mask.shape)}"
            )
        mask = ops.expand_dims(ops.cast(mask, "bool"), axis=1)  # (batch, 1, key_len)
    if attention_mask is not None:
        if len(attention_mask.shape) != 3:
            raise ValueError(
                "`attention_mask` must have shape (batch, query_length, key_length). "
                f"Received: attention_mask.shape={tuple(attention_mask.shape)}"
            )
        attention_mask = ops.cast(attention_mask, "bool")
        mask = attention_mask if mask is None else ops.logical_and(mask, attention_mask)
    return mask


def compute_causal_mask(query_length, key_length, cache_index=0):
    """Builds a causal mask; query row `i` sits at position `cache_index + i`.

    With a key/value cache the keys span the whole cache (`key_length` is the
    cache length) while the queries are the tokens being decoded now, so query
    row `i` may attend to keys `0 .. cache_index + i`.

    Args:
        query_length: number of query positions (an int or scalar tensor).
        key_length: number of key positions (an int or scalar tensor).
        cache_index: position of the first query (an int or scalar tensor).

    Returns:
        A boolean mask of shape `(1, query_length, key_length)`.
    """
    i = ops.arange(query_length, dtype="int32") + ops.cast(cache_index, "int32")
    j = ops.arange(key_length, dtype="int32")
    return ops.expand_dims(ops.expand_dims(i, 1) >= ops.expand_dims(j, 0), 0)


def combine_masks(*masks):
    """Logical AND of the given boolean masks, skipping `None`s (or `None`)."""
    result = None
    for mask in masks:
        if mask is None:
            continue
        mask = ops.cast(mask, "bool")
        result = mask if result is None else ops.logical_and(result, mask)
    return result

"""Helpers shared by the Transformer blocks."""

from tfllm.layers.multi_head_attention import MultiHeadAttention


def validate_block_args(intermediate_dim, num_heads, dropout, layer_norm_epsilon):
    """Checks the hyper-parameters shared by the encoder and decoder blocks."""
    for name, value in (("intermediate_dim", intermediate_dim), ("num_heads", num_heads)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")
    if not layer_norm_epsilon > 0:
        raise ValueError(
            f"`layer_norm_epsilon` must be positive. Received: layer_norm_epsilon={layer_norm_epsilon!r}"
        )


def head_dim_for(hidden_dim, num_heads):
    """Head size `hidden_dim // num_heads`, as keras_hub computes it."""
    head_dim = hidden_dim // num_heads
    if head_dim == 0:
        raise ValueError(
            f"The hidden size ({hidden_dim}) must be at least `num_heads`. Received: num_heads={num_heads}"
        )
    return head_dim


def clone_initializer(initializer):
    """A separate initializer object per sublayer (Keras initializers must not be shared)."""
    return initializer.__class__.from_config(initializer.get_config())


def copy_sublayer_weights(target, source, names):
    """Copies weights from `source` sublayers into `target` ones.

    Args:
        target: a tfllm block.
        source: the matching keras_hub layer, built on the same shapes.
        names: dict mapping `target` sublayer attributes to `source` ones.
    """
    for mine, theirs in names.items():
        mine, theirs = getattr(target, mine), getattr(source, theirs)
        if isinstance(mine, MultiHeadAttention):
            mine.load_keras_weights(theirs)
        else:
            mine.set_weights(theirs.get_weights())

"""Mixed-precision policy selection."""

import logging

import keras
import tensorflow as tf

logger = logging.getLogger("tfllm.training")

MIXED_PRECISION_MODES = ("auto", "off", "float16", "bfloat16")

_POLICIES = {"off": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}


def set_mixed_precision(mode="auto", strategy=None):
    """Sets the global Keras dtype policy; call it before building the model.

    `"auto"` chooses float16 on GPUs (tensor cores), bfloat16 on TPUs (their
    native format) and full float32 on CPUs, where reduced precision brings no
    speed. Under `mixed_float16`, `model.compile` wraps the optimizer in a
    `keras.optimizers.LossScaleOptimizer`, and `tfllm.training.fit` scales the
    loss through it in its own loop as well. Keep a model's last layer in
    float32 (`dtype="float32"`) so that outputs and the loss stay float32.

    Args:
        mode: one of `"auto"`, `"off"`, `"float16"`, `"bfloat16"`.
        strategy: the strategy in use; a TPUStrategy makes `"auto"` pick bfloat16.

    Returns:
        The policy name: `"float32"`, `"mixed_float16"` or `"mixed_bfloat16"`.

    Example:
    >>> set_mixed_precision("bfloat16")
    'mixed_bfloat16'
    """
    if mode not in MIXED_PRECISION_MODES:
        raise ValueError(
            f"Unknown mixed-precision mode; expected one of "
            f"{', '.join(MIXED_PRECISION_MODES)}. Received: mode={mode!r}"
        )
    if mode == "auto":
        if isinstance(strategy, tf.distribute.TPUStrategy) or tf.config.list_physical_devices("TPU"):
            mode = "bfloat16"
        elif tf.config.list_physical_devices("GPU"):
            mode = "float16"
        else:
            mode = "off"
    policy = _POLICIES[mode]
    keras.config.set_dtype_policy(policy)
    logger.info("Mixed precision: %s", policy)
    return policy

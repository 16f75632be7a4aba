"""Copies of models: outside any distribution strategy for export, or plain ones to train apart."""

import warnings

import keras


def local_copy(model):
    """The same model with the same weights, built outside any `tf.distribute` strategy.

    A model trained under `MirroredStrategy` or `MultiWorkerMirroredStrategy`
    holds distributed variables, and some layers (Keras' LSTM keeps a seed
    generator's state) use them in ways `tf.saved_model.save` refuses to
    export ("ConcreteFunction that uses distributed variables in certain way
    cannot be saved"). A plain copy exports under every strategy; a model
    built without a strategy is returned as it is.

    Call it outside `strategy.scope()`, where new variables are plain ones.

    Args:
        model: a built Keras model whose class is registered for serialization
            (every tfllm model is).

    Returns:
        A built model with equal weights and the original's dtype policy.
    """
    return copy_model(model) if _is_distributed(model) else model


def copy_model(model):
    """A new model with `model`'s config and weights, built in the current strategy's scope (if any)."""
    copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    build_config = model.get_build_config()
    if build_config:
        with warnings.catch_warnings():
            # Keras warns that subclassed models may not rebuild from their
            # input shape, then rebuilds them by calling them; `built` says
            # whether that worked.
            warnings.filterwarnings("ignore", message=".*had a build config")
            copy.build_from_config(build_config)
    else:  # Models that size themselves from their config (the seq2seq models).
        copy.build()
    if not copy.built:
        raise ValueError(f"cannot rebuild {type(model).__name__}: it has no build config")
    copy.set_weights(model.get_weights())
    return copy


def _is_distributed(model):
    import tensorflow as tf

    return any(isinstance(getattr(v, "value", v), tf.distribute.DistributedValues) for v in model.weights)

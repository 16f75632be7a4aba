"""Corpus windows and `tf.data` pipelines for language-model pre-training (causal targets, MLM masks)."""

import math

import keras

# Masked positions each window can hold, as a multiple of the expected count;
# a window draws more than 1.5x the mean only far out in the binomial tail.
MASK_HEADROOM = 1.5


def corpus_windows(documents, tokenizer, sequence_length, objective, val_fraction):
    """`(train, validation)` int32 windows of the corpus (see `make_lm_dataset`).

    Causal windows hold `sequence_length + 1` tokens and overlap by one, so
    every token but the first is a target once; MLM windows hold
    `sequence_length`. The token stream splits at `1 - val_fraction`.

    Raises:
        DataError: the corpus has too few tokens to split.
    """
    from tfllm.data.corpora import join_documents, pack_windows
    from tfllm.data.errors import DataError

    stream = join_documents([tokenizer.encode(d) for d in documents], tokenizer.separator_id)
    if stream.size < 4:
        raise DataError(f"the corpus has {stream.size} tokens; it needs at least 4 to train and validate")
    cut = min(max(2, int(round(stream.size * (1.0 - val_fraction)))), stream.size - 2)
    causal = objective == "causal"
    width, overlap = (sequence_length + 1, 1) if causal else (sequence_length, 0)
    return tuple(
        pack_windows([part], width, pad_id=tokenizer.pad_id, overlap=overlap)
        for part in (stream[:cut], stream[cut:])
    )


@keras.saving.register_keras_serializable(package="tfllm")
def masked_token_loss(y_true, y_pred):
    """Cross-entropy of the targets that are not -1, averaged per sequence: (batch, len) -> (batch,)."""
    from keras import ops

    valid = ops.cast(ops.greater_equal(y_true, 0), "float32")
    labels = ops.maximum(ops.cast(y_true, "int32"), 0)
    losses = ops.sparse_categorical_crossentropy(labels, ops.cast(y_pred, "float32"), from_logits=True)
    return ops.sum(losses * valid, axis=-1) / ops.maximum(ops.sum(valid, axis=-1), 1.0)


def make_lm_dataset(windows, tokenizer, objective, batch_size, *, shuffle=False, seed=0, mask_rate=0.15):
    """Batched `(inputs, targets)` for a language model; targets -1 are ignored by `masked_token_loss`.

    With `shuffle` the dataset is endless: pass after pass over the windows,
    each in a fresh order drawn from `seed`; otherwise one pass in order.

    Causal: inputs `{"token_ids", "padding_mask"}` of a window's first
    `len - 1` tokens, targets the last `len - 1`. MLM: a fresh mask per batch
    (`keras_hub.layers.MaskedLMMaskGenerator`: `mask_rate` of the tokens;
    80% of those become [MASK], 10% a random id, 10% stay), inputs
    `{"token_ids", "segment_ids", "padding_mask", "mask_positions"}`,
    targets the original ids at `mask_positions`.
    """
    import keras_hub
    import tensorflow as tf

    pad = tokenizer.pad_id
    if shuffle:
        # Stateless permutations, one per pass, so that every strategy (which
        # rebuilds the pipeline to split batches) reads the same order.
        table, count = tf.constant(windows), len(windows)
        data = tf.data.Dataset.range(2**62).map(lambda i: tf.gather(
            table, tf.random.experimental.stateless_shuffle(tf.range(count), seed=tf.stack([tf.cast(seed, tf.int64), i]))
        )).unbatch()
    else:
        data = tf.data.Dataset.from_tensor_slices(windows)
    data = data.batch(batch_size)
    if objective == "causal":

        def split(window):
            inputs, targets = window[:, :-1], window[:, 1:]
            targets = tf.where(tf.equal(targets, pad), -1, targets)
            return {"token_ids": inputs, "padding_mask": _padding_mask(inputs, pad)}, targets

        return data.map(split, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    length = windows.shape[1]
    masker = keras_hub.layers.MaskedLMMaskGenerator(
        vocabulary_size=tokenizer.vocabulary_size, mask_selection_rate=mask_rate,
        mask_token_id=tokenizer.mask_id,
        mask_selection_length=max(1, int(math.ceil(length * mask_rate * MASK_HEADROOM))),
        unselectable_token_ids=[pad, tokenizer.mask_id],
    )

    def mask(window):
        masked = masker(window)
        targets = tf.where(masked["mask_weights"] > 0, tf.cast(masked["mask_ids"], tf.int32), -1)
        inputs = {
            "token_ids": tf.cast(masked["token_ids"], tf.int32),
            "segment_ids": tf.zeros_like(window),
            "padding_mask": _padding_mask(window, pad),
            "mask_positions": tf.cast(masked["mask_positions"], tf.int32),
        }
        return inputs, targets

    return data.map(mask, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _padding_mask(token_ids, pad):
    import tensorflow as tf

    # int32, not bool: Keras' fit averages one batch across replicas to build
    # the model under a distribution strategy, which bool tensors fail.
    return tf.cast(tf.not_equal(token_ids, pad), tf.int32)

"""Magnitude pruning during fine-tuning: a polynomial sparsity schedule, a callback with masks.

TensorFlow Model Optimization's pruning wrappers need Keras 2; this is the
same method (Zhu & Gupta 2017, "To prune, or not to prune") for Keras 3
models, with nothing added to the model: the masks live in the callback, are
applied after every optimizer step, and a pruned model is a plain model whose
pruned weights are exactly zero, so it saves, loads and exports unchanged.
"""

import keras
import numpy as np


def check_sparsity(sparsity, name="sparsity"):
    """Returns `sparsity` as a float; raises a one-line ValueError outside (0, 1)."""
    try:
        value = float(sparsity)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 < value < 1.0:
        raise ValueError(f"`{name}` must be strictly between 0 and 1. Received: {name}={sparsity!r}")
    return value


class PolynomialSparsity:
    """Sparsity rising from `initial_sparsity` to `target_sparsity` as `1 - (1 - progress)**power`.

    `sparsity(step) = target + (initial - target) * (1 - progress)**power`
    with `progress = (step - begin_step) / (end_step - begin_step)` clipped to
    [0, 1]: pruning is fast while the network has redundant weights and slows
    as it approaches the target.

    Args:
        target_sparsity: final share of zero weights, in (0, 1).
        begin_step: optimizer step at which pruning starts.
        end_step: step at which `target_sparsity` is reached.
        initial_sparsity: sparsity at `begin_step`, in [0, target).
        power: exponent of the schedule (3 in Zhu & Gupta).
        frequency: prune every this many steps (and at `end_step`).

    Example:
        >>> schedule = PolynomialSparsity(0.8, begin_step=0, end_step=1000)
        >>> schedule(500)
        0.7
    """

    def __init__(self, target_sparsity, begin_step=0, end_step=1000, initial_sparsity=0.0, power=3, frequency=100):
        self.target_sparsity = check_sparsity(target_sparsity, "target_sparsity")
        if not 0.0 <= initial_sparsity < self.target_sparsity:
            raise ValueError(
                f"`initial_sparsity` must be in [0, target_sparsity). Received: initial_sparsity={initial_sparsity!r}"
            )
        if not 0 <= begin_step < end_step:
            raise ValueError(f"Need 0 <= begin_step < end_step. Received: begin_step={begin_step}, end_step={end_step}")
        if frequency < 1 or power <= 0:
            raise ValueError(f"`frequency` >= 1 and `power` > 0. Received: frequency={frequency}, power={power}")
        self.begin_step = int(begin_step)
        self.end_step = int(end_step)
        self.initial_sparsity = float(initial_sparsity)
        self.power = power
        self.frequency = int(frequency)

    def __call__(self, step):
        progress = min(max((step - self.begin_step) / (self.end_step - self.begin_step), 0.0), 1.0)
        remaining = (1.0 - progress) ** self.power
        return self.target_sparsity + (self.initial_sparsity - self.target_sparsity) * remaining

    def should_prune(self, step):
        """Whether masks are recomputed at `step`."""
        if step < self.begin_step:
            return False
        return step >= self.end_step or (step - self.begin_step) % self.frequency == 0

    def get_config(self):
        return {
            "target_sparsity": self.target_sparsity,
            "begin_step": self.begin_step,
            "end_step": self.end_step,
            "initial_sparsity": self.initial_sparsity,
            "power": self.power,
            "frequency": self.frequency,
        }


def prunable_weights(model):
    """The weights magnitude pruning applies to: every trainable kernel or table of rank >= 2.

    Dense and attention kernels, LSTM kernels and embedding tables; biases,
    norms and scalars stay dense (they are few and pruning them hurts most).
    """
    return [weight for weight in model.trainable_weights if len(weight.shape) >= 2]


def magnitude_mask(values, sparsity):
    """A 0/1 float32 mask zeroing the `round(sparsity * size)` smallest-magnitude entries."""
    values = np.abs(np.asarray(values, dtype=np.float32)).ravel()
    count = int(round(sparsity * values.size))
    mask = np.ones(values.size, np.float32)
    if count > 0:
        # argpartition, not a threshold: ties (many exact zeros) still give the exact count.
        mask[np.argpartition(values, count - 1)[:count]] = 0.0
    return mask


def model_sparsity(model, weights=None):
    """Share of exact zeros among the prunable weights (or `weights`)."""
    weights = prunable_weights(model) if weights is None else weights
    zeros = sum(int(np.sum(keras.ops.convert_to_numpy(w) == 0)) for w in weights)
    total = sum(int(np.prod(w.shape)) for w in weights)
    return zeros / max(total, 1)


class MagnitudePruning(keras.callbacks.Callback):
    """Keras callback: prunes the smallest weights on a schedule and keeps them at zero.

    At each step where `schedule.should_prune(step)` holds (step: the
    optimizer's iteration count), each prunable weight's mask is recomputed
    so that `schedule(step)` of its entries (the smallest in magnitude) are
    zero; after every training batch the weights are multiplied by their
    masks, so pruned weights stay zero whatever the optimizer does. Masks
    start from the weights' existing zeros, so a pruned model loaded from a
    `.keras` file keeps its sparsity when fine-tuned again.

    Args:
        schedule: a `PolynomialSparsity` (or any callable step -> sparsity
            with a `should_prune(step)` method).
        weights: optional callable `model -> list of variables` choosing the
            weights to prune (default `prunable_weights`).

    Attributes:
        masks: list of float32 mask variables, one per pruned weight.

    Example:
        >>> pruning = MagnitudePruning(PolynomialSparsity(0.8, end_step=200, frequency=20))
        >>> model.fit(data, epochs=3, callbacks=[pruning])
        >>> strip_pruning(model, pruning)
    """

    def __init__(self, schedule, weights=None):
        super().__init__()
        self.schedule = schedule
        self.select_weights = weights or prunable_weights
        self.pruned_weights = []
        self.masks = []

    def on_train_begin(self, logs=None):
        if not self.masks:
            self.pruned_weights = list(self.select_weights(self.model))
            self.masks = [
                keras.Variable(
                    (keras.ops.convert_to_numpy(weight) != 0).astype("float32"),
                    trainable=False,
                    name=f"{weight.name}_mask",
                )
                for weight in self.pruned_weights
            ]
        self._prune(self._step(), force=True)

    def on_train_batch_end(self, batch, logs=None):
        self._prune(self._step())

    def _step(self):
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def _prune(self, step, force=False):
        if force or self.schedule.should_prune(step):
            sparsity = self.schedule(step)
            for weight, mask in zip(self.pruned_weights, self.masks):
                old = keras.ops.convert_to_numpy(mask)
                values = keras.ops.convert_to_numpy(weight) * old
                # Masks only tighten: what was pruned stays pruned.
                mask.assign(magnitude_mask(values, sparsity).reshape(old.shape) * old)
        self.apply_masks()

    def apply_masks(self):
        """Zeroes every pruned weight where its mask is 0."""
        for weight, mask in zip(self.pruned_weights, self.masks):
            weight.assign(weight * keras.ops.cast(mask, weight.dtype))


def strip_pruning(model, pruning=None):
    """Returns `model` ready for export: masks applied once more, no pruning state left.

    The masks never live in the model, so stripping is only this last
    application; the model saves and exports as an ordinary one.
    """
    if pruning is not None and pruning.masks:
        pruning.apply_masks()
    return model


def prune_once(model, sparsity, weights=None):
    """One-shot magnitude pruning (no fine-tuning) of `model` to `sparsity`; returns the model."""
    sparsity = check_sparsity(sparsity)
    for weight in (weights if weights is not None else prunable_weights(model)):
        values = keras.ops.convert_to_numpy(weight)
        weight.assign(values * magnitude_mask(values, sparsity).reshape(values.shape))
    return model

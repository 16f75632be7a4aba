"""What every model that predicts token ids shares: its `compile()` defaults."""

import keras

from tfllm.metrics.generation import Perplexity


class LanguageModelMixin:
    """`compile()` with a padding-masked cross-entropy and perplexity by default.

    For `keras.Model` subclasses with a `pad_token_id` attribute whose outputs
    are logits over the vocabulary; put it before `keras.Model` in the bases.
    """

    def compile(self, optimizer="adam", loss="auto", metrics="auto", **kwargs):
        """`keras.Model.compile` with masked cross-entropy and perplexity by default."""
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(
                from_logits=True, ignore_class=self.pad_token_id
            )
        if metrics == "auto":
            metrics = [Perplexity(from_logits=True, mask_token_id=self.pad_token_id)]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def compile_from_config(self, config):
        """Restores `compile()` on load (Keras skips custom `compile` methods otherwise)."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

"""A language-model head on a `DecoderBackbone`: tied logits and cached `generate()`."""

import keras
from keras import ops

from tfllm.generation import CompiledDecoders
from tfllm.models.causal_generation import CausalGenerationMixin
from tfllm.models.decoder_backbone import DecoderBackbone
from tfllm.models.language_model import LanguageModelMixin


@keras.saving.register_keras_serializable(package="tfllm")
class CausalLanguageModel(CausalGenerationMixin, LanguageModelMixin, keras.Model):
    """Next-token logits over a `DecoderBackbone`, projected with its token embedding.

    `compile()` defaults to a padding-masked cross-entropy and perplexity;
    `generate()` decodes with the backbone's key/value cache in one
    XLA-compiled loop (`generate_step` is the traceable loop for exports).

    Args:
        backbone: a `DecoderBackbone` (e.g. from `load_backbone(..., kind="decoder")`).
        pad_token_id: padding id (masked in the loss, never generated).
        end_token_id: id that ends a generated sequence, or None.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: int token ids `(batch, length)` (the padding mask is then
            `token_ids != pad_token_id`), or a dict with `token_ids` and
            `padding_mask`.
        training: whether dropout is active.

    Returns:
        float32 logits `(batch, length, vocabulary_size)`.

    Example:

    ```python
    lm = CausalLanguageModel(DecoderBackbone(1000, 2, 4, 128, 512, max_sequence_length=64))
    lm.compile("adam")
    lm.fit(token_ids[:, :-1], token_ids[:, 1:])
    lm.generate([[5, 17, 9]], max_length=20, strategy="top_k", k=5)
    ```
    """

    def __init__(self, backbone, pad_token_id=0, end_token_id=None, **kwargs):
        if not isinstance(backbone, DecoderBackbone):
            raise ValueError(
                f"`backbone` must be a tfllm DecoderBackbone. Received: backbone={type(backbone).__name__}"
            )
        super().__init__(**kwargs)
        self.backbone = backbone
        self.pad_token_id = int(pad_token_id)
        self.end_token_id = None if end_token_id is None else int(end_token_id)
        self.sequence_length = backbone.max_sequence_length
        self._decoders = CompiledDecoders()

    def build(self, input_shape=None):
        # The backbone is a functional model, built when it was made.
        self.built = True

    def _logits(self, hidden):
        # Tied projection: logits are similarities to the token embeddings.
        return ops.cast(self.backbone.token_embedding(hidden, reverse=True), "float32")

    def call(self, inputs, training=None):
        if isinstance(inputs, dict):
            token_ids, padding_mask = inputs["token_ids"], inputs.get("padding_mask")
        else:
            token_ids, padding_mask = inputs, None
        if padding_mask is None:
            padding_mask = ops.not_equal(token_ids, self.pad_token_id)
        hidden = self.backbone(
            {"token_ids": token_ids, "padding_mask": ops.cast(padding_mask, "int32")}, training=training
        )
        return self._logits(hidden)

    def logits_for(self, token_ids, padding_mask):
        """Logits of one full forward pass (the uncached decoding reference)."""
        return self({"token_ids": token_ids, "padding_mask": padding_mask})

    def empty_cache(self, batch_size, length):
        """Zero key/value caches, one `(batch, 2, length, heads, head_dim)` per block."""
        return self.backbone.empty_cache(batch_size, length)

    def call_with_cache(self, token_ids, cache, index):
        """Logits of `token_ids` placed at `index`; returns `(logits, cache)`."""
        hidden, cache = self.backbone.call_with_cache(token_ids, cache, index)
        return self._logits(hidden), cache

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "backbone": keras.saving.serialize_keras_object(self.backbone),
                "pad_token_id": self.pad_token_id,
                "end_token_id": self.end_token_id,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)

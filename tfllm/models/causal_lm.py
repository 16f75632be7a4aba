"""GPT-style decoder-only language model with cached generation."""

import keras
from keras import ops

from tfllm._validation import check_divisible, check_positive_ints, check_rates
from tfllm.generation import (
    CompiledDecoders,
    as_token_lists,
    bucket,
    decode,
    pad_prompts,
    trim,
)
from tfllm.generation.compiled import generation_options
from tfllm.layers import TokenAndPositionEmbedding, TransformerDecoderBlock
from tfllm.models.language_model import LanguageModelMixin


@keras.saving.register_keras_serializable(package="tfllm")
class CausalLM(LanguageModelMixin, keras.Model):
    """Decoder-only Transformer language model (GPT-2 layout) with `generate()`.

    Pre-norm `TransformerDecoderBlock`s without cross-attention over learned
    token and position embeddings; the output projection is tied to the token
    embedding. `compile()` defaults to a padding-masked cross-entropy and
    reports perplexity.

    Args:
        vocabulary_size: number of token ids.
        sequence_length: longest sequence (prompt + generated) the model sees.
        num_layers: number of decoder blocks.
        num_heads: attention heads per block.
        hidden_dim: embedding and model width.
        intermediate_dim: feed-forward width.
        dropout: dropout rate inside the blocks.
        position: "learned" or "sinusoidal" position embeddings.
        pad_token_id: padding id (masked in the loss and perplexity).
        end_token_id: id that ends a generated sequence, or None.

    Call arguments:
        token_ids: int tensor (batch, length).
        padding_mask: optional bool tensor (batch, length); defaults to
            `token_ids != pad_token_id`.
        training: whether dropout is active.

    Returns:
        Logits (batch, length, vocabulary_size), float32.

    Example:

    ```python
    lm = CausalLM(vocabulary_size=1000, sequence_length=64)
    lm.compile("adam")
    lm.fit(token_ids[:, :-1], token_ids[:, 1:])
    lm.generate([[5, 17, 9]], max_length=20)
    ```
    """

    def __init__(
        self,
        vocabulary_size,
        sequence_length,
        num_layers=2,
        num_heads=4,
        hidden_dim=128,
        intermediate_dim=512,
        dropout=0.1,
        position="learned",
        pad_token_id=0,
        end_token_id=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_ints(
            vocabulary_size=vocabulary_size,
            sequence_length=sequence_length,
            num_layers=num_layers,
            num_heads=num_heads,
            hidden_dim=hidden_dim,
            intermediate_dim=intermediate_dim,
        )
        check_divisible(hidden_dim=hidden_dim, num_heads=num_heads)
        check_rates(dropout=dropout)
        self.vocabulary_size = int(vocabulary_size)
        self.sequence_length = int(sequence_length)
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.hidden_dim = int(hidden_dim)
        self.intermediate_dim = int(intermediate_dim)
        self.dropout = float(dropout)
        self.position = position
        self.pad_token_id = int(pad_token_id)
        self.end_token_id = None if end_token_id is None else int(end_token_id)

        self.embedding = TokenAndPositionEmbedding(
            self.vocabulary_size,
            self.sequence_length,
            self.hidden_dim,
            position=position,
            dtype=self.dtype_policy,
            name="embedding",
        )
        self.blocks = [
            TransformerDecoderBlock(
                self.intermediate_dim,
                self.num_heads,
                dropout=self.dropout,
                activation="gelu",
                normalize_first=True,
                dtype=self.dtype_policy,
                name=f"block_{i}",
            )
            for i in range(self.num_layers)
        ]
        self.final_norm = keras.layers.LayerNormalization(
            epsilon=1e-5, dtype=self.dtype_policy, name="final_norm"
        )
        self._decoders = CompiledDecoders()

    def build(self, input_shape=None):
        shape = (None, None)
        self.embedding.build(shape)
        for block in self.blocks:
            block.build((None, None, self.hidden_dim))
        self.final_norm.build((None, None, self.hidden_dim))
        self.built = True

    def _logits(self, x):
        # Tied projection: logits are similarities to the token embeddings.
        return ops.cast(self.embedding.token_embedding(x, reverse=True), "float32")

    def call(self, token_ids, padding_mask=None, training=None):
        if padding_mask is None:
            padding_mask = ops.not_equal(token_ids, self.pad_token_id)
        x = self.embedding(token_ids)
        for block in self.blocks:
            x = block(x, decoder_padding_mask=padding_mask, training=training)
        return self._logits(self.final_norm(x))

    # Cached decoding.

    def empty_cache(self, batch_size, length):
        """Zero key/value caches: a tuple of (batch, 2, length, heads, head_dim) per block."""
        shape = (batch_size, 2, length, self.num_heads, self.hidden_dim // self.num_heads)
        return tuple(ops.zeros(shape, dtype=self.compute_dtype) for _ in self.blocks)

    def call_with_cache(self, token_ids, cache, index):
        """Runs `token_ids` placed at position `index`, reading and updating `cache`.

        Returns:
            (logits (batch, len, vocab), cache).
        """
        x = self.embedding(token_ids, start_index=index)
        updated = []
        for block, layer_cache in zip(self.blocks, cache):
            x, layer_cache = block(
                x, self_attention_cache=layer_cache, self_attention_cache_update_index=index
            )
            updated.append(layer_cache)
        return self._logits(self.final_norm(x)), tuple(updated)

    def generate_step(self, token_ids, lengths, max_length, sampler="greedy", stop_token_ids=(), use_cache=True):
        """Tensor-in, tensor-out decoding of right-padded prompts (traceable).

        Args:
            token_ids: int32 (batch, length) prompts, right padded; `length`
                bounds the output.
            lengths: int32 (batch,) prompt lengths (at least 1).
            max_length: scalar; positions from it on stay padding.
            sampler: `SamplerConfig`, strategy name, dict or keras_hub sampler
                (see `tfllm.generation.decode`).
            stop_token_ids: ids ending a sequence.
            use_cache: False recomputes the whole prefix every step (a
                reference for tests and benchmarks).

        Returns:
            int32 (batch, length): prompts followed by generated tokens.
        """
        token_ids = ops.cast(token_ids, "int32")
        batch_size, length = ops.shape(token_ids)[0], ops.shape(token_ids)[1]
        mask = ops.arange(length, dtype="int32")[None, :] < ops.cast(lengths, "int32")[:, None]
        index = ops.min(lengths)
        if use_cache:
            _, cache = self.call_with_cache(token_ids, self.empty_cache(batch_size, length), 0)

            def next(tokens, cache, index):
                step = ops.slice(tokens, [0, index - 1], [ops.shape(tokens)[0], 1])
                logits, cache = self.call_with_cache(step, cache, index - 1)
                return logits[:, 0, :], cache

        else:
            cache = ()

            def next(tokens, cache, index):
                # Generated tokens may equal the padding id; mask by position.
                known = ops.arange(length, dtype="int32")[None, :] < index
                known = ops.broadcast_to(known, ops.shape(tokens))
                return ops.take(self(tokens, padding_mask=known), index - 1, axis=1), cache

        return decode(
            next,
            token_ids,
            index=index,
            cache=cache,
            mask=mask,
            sampler=sampler,
            stop_token_ids=stop_token_ids,
            pad_token_id=self.pad_token_id,
            max_length=max_length,
            suppress_token_ids=(self.pad_token_id,),
        )

    def generate(
        self,
        token_ids,
        max_length=None,
        *,
        strategy="greedy",
        num_beams=None,
        k=None,
        p=None,
        temperature=None,
        length_penalty=None,
        seed=None,
        stop_token_ids="auto",
        strip_prompt=False,
        use_cache=True,
        jit_compile=True,
    ):
        """Continues each prompt and returns token id lists.

        Args:
            token_ids: prompts: list of id lists, ragged tensor, or dense
                array right padded with `pad_token_id`. Prompts may differ in
                length.
            max_length: total length (prompt + generated), at most
                `sequence_length` (the default).
            strategy: "greedy", "beam", "top_k", "top_p" or "random".
            num_beams, k, p, temperature, length_penalty, seed: see
                `tfllm.generation.SamplerConfig`.
            stop_token_ids: "auto" (the `end_token_id`), None, or ids.
            strip_prompt: return only the generated tokens.
            use_cache: decode with the key/value cache (False recomputes).
            jit_compile: compile the decoding loop with XLA.

        Returns:
            list of lists of ints, without padding or the stop token.
        """
        config, stop_token_ids, max_length = generation_options(
            strategy, dict(num_beams=num_beams, k=k, p=p, temperature=temperature,
                           length_penalty=length_penalty, seed=seed),
            stop_token_ids, self.end_token_id, max_length, self.sequence_length, "sequence_length",
        )
        rows = as_token_lists(token_ids, self.pad_token_id)
        if not rows:
            return []
        for i, row in enumerate(rows):
            if not 0 < len(row) < max_length:
                raise ValueError(
                    f"prompt {i} has {len(row)} tokens; prompts need 1 to max_length - 1 "
                    f"tokens. Received: max_length={max_length}"
                )
        length = bucket(max_length, limit=self.sequence_length)
        tokens, lengths = pad_prompts(rows, length, self.pad_token_id)

        function = self._decoders.decoder(self.generate_step, config, stop_token_ids, use_cache, jit_compile)
        out = function(
            ops.convert_to_tensor(tokens), ops.convert_to_tensor(lengths),
            ops.convert_to_tensor(max_length, "int32"),
        )
        generated = trim(out, lengths, len(rows), stop_token_ids, self.pad_token_id)
        if strip_prompt:
            return generated
        return [prompt + new for prompt, new in zip(rows, generated)]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "sequence_length": self.sequence_length,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "position": self.position,
                "pad_token_id": self.pad_token_id,
                "end_token_id": self.end_token_id,
            }
        )
        return config

"""What every decoder-only language model shares: `generate()` over `call_with_cache`."""

from keras import ops

from tfllm.generation import as_token_lists, bucket, decode, pad_prompts, trim
from tfllm.generation.compiled import generation_options


class CausalGenerationMixin:
    """`generate_step` (traceable, for exports) and `generate` (lists in, lists out).

    The model provides `empty_cache(batch_size, length)`,
    `call_with_cache(token_ids, cache, index) -> (logits, cache)`,
    `logits_for(token_ids, padding_mask)` (a full forward pass), and the
    attributes `sequence_length`, `pad_token_id`, `end_token_id` and
    `_decoders` (`tfllm.generation.CompiledDecoders`).
    """

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
                return ops.take(self.logits_for(tokens, known), index - 1, axis=1), cache

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
            # Padding is never generated, unless it doubles as the stop id (GPT-2 pads with
            # <|endoftext|>).
            suppress_token_ids=() if self.pad_token_id in stop_token_ids else (self.pad_token_id,),
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
        no_repeat_ngram_size=None,
        repetition_penalty=None,
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
            num_beams, k, p, temperature, length_penalty, seed,
                no_repeat_ngram_size, repetition_penalty: see
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
                           length_penalty=length_penalty, seed=seed,
                           no_repeat_ngram_size=no_repeat_ngram_size,
                           repetition_penalty=repetition_penalty),
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

"""What every encoder-decoder model shares: `generate()` over its `generate_step`."""

import numpy as np
from keras import ops

from tfllm.generation import as_token_lists, bucket, decode, pad_prompts, trim
from tfllm.generation.compiled import generation_options
from tfllm.models.language_model import LanguageModelMixin


class Seq2SeqModelMixin(LanguageModelMixin):
    """`generate()` and `compile()` defaults (`LanguageModelMixin`) for encoder-decoder models.

    The model provides `generate_step(encoder_token_ids, decoder_token_ids,
    max_length, sampler, stop_token_ids, use_cache)`, plus the attributes
    `encoder_sequence_length`, `decoder_sequence_length`, `pad_token_id`,
    `start_token_id`, `end_token_id` and `_decoders` (`CompiledDecoders`).
    """

    def _check_generation_ids(self):
        if self.start_token_id is None:
            raise ValueError(
                "generate() needs the id decoding starts from. Build the model with "
                "start_token_id=... Received: start_token_id=None"
            )

    def suppressed_token_ids(self):
        """Ids never generated: padding and the start id."""
        return tuple(i for i in (self.pad_token_id, self.start_token_id) if i is not None)

    def decode_targets(self, next, decoder_token_ids, cache, context, sampler, stop_token_ids, max_length):
        """`decode` after the start token (position 0), never emitting `suppressed_token_ids`.

        `context` holds what `next(tokens, cache, index, context)` only reads
        (the encoded sources), so beam search does not reorder it every step.
        """
        return decode(
            next, decoder_token_ids, index=1, cache=cache, context=context, sampler=sampler,
            stop_token_ids=stop_token_ids, pad_token_id=self.pad_token_id, max_length=max_length,
            suppress_token_ids=self.suppressed_token_ids(),
        )

    def initial_decoder_tokens(self, batch_size, length):
        """(batch, length) int32 decoder inputs: the start id, then padding."""
        start = ops.full((batch_size, 1), self.start_token_id, dtype="int32")
        pad = ops.full((batch_size, length - 1), self.pad_token_id, dtype="int32")
        return ops.concatenate([start, pad], axis=1)

    def generate(
        self,
        encoder_token_ids,
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
        use_cache=True,
        jit_compile=True,
    ):
        """Generates a target sequence for each source sequence.

        Args:
            encoder_token_ids: sources: list of id lists, ragged tensor, or
                dense array right padded with `pad_token_id`; lengths may
                differ. Longer sources are truncated to
                `encoder_sequence_length`.
            max_length: decoder length including the start token, at most
                `decoder_sequence_length` (the default).
            strategy: "greedy", "beam", "top_k", "top_p" or "random".
            num_beams, k, p, temperature, length_penalty, seed,
                no_repeat_ngram_size, repetition_penalty: see
                `tfllm.generation.SamplerConfig`.
            stop_token_ids: "auto" (the `end_token_id`), None, or ids.
            use_cache: decode with key/value caches (False recomputes).
            jit_compile: compile the decoding loop with XLA.

        Returns:
            list of lists of generated ids, without the start id, the stop
            token or padding.
        """
        self._check_generation_ids()
        config, stop_token_ids, max_length = generation_options(
            strategy, dict(num_beams=num_beams, k=k, p=p, temperature=temperature,
                           length_penalty=length_penalty, seed=seed,
                           no_repeat_ngram_size=no_repeat_ngram_size,
                           repetition_penalty=repetition_penalty),
            stop_token_ids, self.end_token_id, max_length, self.decoder_sequence_length,
            "decoder_sequence_length",
        )
        rows = as_token_lists(encoder_token_ids, self.pad_token_id)
        if not rows:
            return []
        rows = [row[: self.encoder_sequence_length] or [self.pad_token_id] for row in rows]
        source_length = bucket(max(map(len, rows)), limit=self.encoder_sequence_length)
        sources, _ = pad_prompts(rows, source_length, self.pad_token_id)
        length = bucket(max_length, limit=self.decoder_sequence_length)
        targets = np.full((len(sources), length), self.pad_token_id, dtype="int32")
        targets[:, 0] = self.start_token_id

        function = self._decoders.decoder(self.generate_step, config, stop_token_ids, use_cache, jit_compile)
        out = function(
            ops.convert_to_tensor(sources), ops.convert_to_tensor(targets),
            ops.convert_to_tensor(max_length, "int32"),
        )
        return trim(out, np.ones(len(sources), "int32"), len(rows), stop_token_ids, self.pad_token_id)

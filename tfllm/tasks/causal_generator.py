"""Causal language models as text-in/text-out SavedModels: tokenize, decode, detokenize in one graph.

The `serving_default` signature maps `text` (prompts, tf.string [None]) to
`output_text` (their continuations, tf.string [None]). The decoding loop is a
`tf.while_loop` outside XLA whose cache updates use `TensorStridedSliceUpdate`
(`tfllm._ops.slice_update`), so the export holds no Xla* op and stock TF
Serving runs it. A WordPiece export needs `import tensorflow_text` to load.
"""

import math

import numpy as np
import tensorflow as tf

from tfllm.generation.compiled import generation_options
from tfllm.generation.samplers import resolve_sampler
from tfllm.serving import signatures as sig
from tfllm.serving.export import export_saved_model
from tfllm.tasks.text_generator import detokenize, ragged_ids


class CausalGenerator(tf.Module):
    """Wraps a causal language model and its tokenizer as `text -> output_text`.

    Args:
        model: a `CausalLanguageModel` (or any model with the
            `generate_step(token_ids, lengths, max_length, sampler,
            stop_token_ids)` of `tfllm.models.CausalLM`).
        tokenizer: a `CorpusTokenizer` (`tfllm.tasks.corpus_tokenizer`).
        max_length: prompt plus generated tokens; prompts keep their last
            `max_length - 1` tokens.
        strategy, k, p, temperature, seed: how to decode (see
            `tfllm.generation.SamplerConfig`); greedy by default.

    Example:

    ```python
    generator = CausalGenerator(model, tokenizer, max_length=64, strategy="top_k", k=5)
    generator(["ROMEO:"])
    ```
    """

    def __init__(self, model, tokenizer, *, max_length, strategy="greedy", k=None, p=None,
                 temperature=None, seed=None):
        super().__init__(name="causal_generator")
        self.model = model
        self.tokenizer = tokenizer
        self.keras_tokenizer = tokenizer.tokenizer
        self.config, _, self.max_length = generation_options(
            strategy, dict(k=k, p=p, temperature=temperature, seed=seed), None, None, max_length,
            max_length, "max_length",
        )
        self._sampler = resolve_sampler(self.config)
        # Random samplers own a seed variable; keep it tracked for saving.
        self.sampler_variables = list(getattr(self._sampler, "variables", []))
        self.generate = tf.function(self._generate, input_signature=[tf.TensorSpec([None], tf.string, name=sig.TEXT)])

    def _generate(self, text):
        pad, length = self.tokenizer.pad_id, self.max_length
        ids = ragged_ids(self.keras_tokenizer, text, pad)
        # The last tokens of a long prompt; an empty prompt starts from the separator.
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        keep = tf.minimum(lengths, length - 1)
        ids = tf.ragged.boolean_mask(ids, tf.ragged.range(lengths) >= (lengths - keep)[:, None])
        empty = tf.equal(keep, 0)
        lengths = tf.maximum(keep, 1)
        batch = tf.shape(text)[0]
        dense = ids.to_tensor(default_value=pad, shape=tf.stack([batch, length]))
        first = tf.where(empty, self.tokenizer.separator_id, dense[:, 0])
        dense = tf.concat([first[:, None], dense[:, 1:]], axis=1)
        out = self.model.generate_step(dense, lengths, length, self._sampler, ())
        # (batch, length): prompt, then generated tokens.
        generated = tf.logical_and(tf.range(length)[None, :] >= lengths[:, None], tf.not_equal(out, pad))
        return {sig.OUTPUT_TEXT: self._detokenize(tf.ragged.boolean_mask(out, generated))}

    def _detokenize(self, ids):
        if self.tokenizer.kind == "char":
            return tf.reshape(self.keras_tokenizer.detokenize(ids), [-1])
        return detokenize(self.keras_tokenizer, ids)

    def __call__(self, texts):
        """Continuations of a list of prompts (eager convenience); returns a list of str."""
        out = self.generate(tf.constant(list(texts), tf.string))[sig.OUTPUT_TEXT]
        return [s.decode("utf-8", errors="replace") for s in out.numpy()]


def export_causal_generator(model, tokenizer, base_path, *, version=None, warmup_texts=None, **generator_kwargs):
    """Exports `CausalGenerator(model, tokenizer, ...)` as the next version under `base_path` (op-checked).

    Returns:
        The path of the new version directory.
    """
    generator = CausalGenerator(model, tokenizer, **generator_kwargs)
    warmup = {sig.TEXT: list(warmup_texts)} if warmup_texts else None
    return export_saved_model(
        generator, base_path, {sig.SERVING_DEFAULT: generator.generate.get_concrete_function()},
        version=version, warmup_inputs=warmup,
    )


def corpus_perplexity(model, tokenizer, documents, sequence_length, *, batch_size=32):
    """Token-level perplexity of a causal model on `documents` (windows as in training).

    Returns:
        `{"tokens", "loss", "perplexity"}`: targets scored, mean negative
        log-likelihood (nats) and its exponential.
    """
    from tfllm.data.corpora import join_documents, pack_windows
    from tfllm.data.errors import DataError

    stream = join_documents([tokenizer.encode(d) for d in documents], tokenizer.separator_id)
    if stream.size < 2:
        raise DataError(f"the text has {stream.size} tokens; perplexity needs at least 2")
    windows = pack_windows([stream], sequence_length + 1, pad_id=tokenizer.pad_id, overlap=1)
    total, count = 0.0, 0
    for start in range(0, len(windows), batch_size):
        window = windows[start : start + batch_size]
        inputs, targets = window[:, :-1], window[:, 1:]
        logits = model({"token_ids": inputs, "padding_mask": inputs != tokenizer.pad_id}, training=False)
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(targets, tf.cast(logits, tf.float32)).numpy()
        valid = targets != tokenizer.pad_id
        total += float(np.sum(nll * valid))
        count += int(np.sum(valid))
    loss = total / count
    return {"tokens": count, "loss": loss, "perplexity": math.exp(min(loss, 50.0))}

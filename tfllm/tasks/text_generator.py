"""Text-in/text-out SavedModels: tokenizer, decoding loop and detokenizer in one graph.

TF Serving answers such an export with text: the `serving_default`
signature maps `text` (tf.string [None]) to `output_text` (tf.string [None]).
The decoding loop is a `tf.while_loop` inside the graph, not compiled with
XLA, so stock servers run it. Loading needs `import tensorflow_text` (the
WordPiece ops); TF Serving links those ops.
"""

import tensorflow as tf

from tfllm.generation.compiled import generation_options
from tfllm.generation.decoding import is_one_of
from tfllm.generation.samplers import resolve_sampler
from tfllm.serving import signatures as sig
from tfllm.serving.export import export_saved_model
from tfllm.text.packers import Seq2SeqPacker


class TextGenerator(tf.Module):
    """Wraps a seq2seq model and its tokenizer as `text -> output_text`.

    Args:
        model: a built encoder-decoder model with `generate_step`
            (`TransformerSeq2Seq`, `LSTMSeq2Seq`).
        tokenizer: a keras_hub tokenizer with `detokenize` (e.g. from
            `tfllm.text.make_wordpiece_tokenizer`); it maps strings to the
            model's ids.
        max_length: decoder length (start id included); default the model's
            `decoder_sequence_length`.
        strategy, num_beams, k, p, temperature, length_penalty, seed,
            no_repeat_ngram_size, repetition_penalty: how to decode (see
            `tfllm.generation.SamplerConfig`); greedy by default.

    Example:

    ```python
    generator = TextGenerator(model, tokenizer, strategy="beam", num_beams=4)
    generator.generate(tf.constant(["Amanda: hi!"]))
    ```
    """

    def __init__(
        self,
        model,
        tokenizer,
        *,
        max_length=None,
        strategy="greedy",
        num_beams=None,
        k=None,
        p=None,
        temperature=None,
        length_penalty=None,
        seed=None,
        no_repeat_ngram_size=None,
        repetition_penalty=None,
    ):
        super().__init__(name="text_generator")
        self.model = model
        self.tokenizer = tokenizer
        self.config, self._stop_token_ids, self.max_length = generation_options(
            strategy,
            dict(num_beams=num_beams, k=k, p=p, temperature=temperature,
                 length_penalty=length_penalty, seed=seed,
                 no_repeat_ngram_size=no_repeat_ngram_size, repetition_penalty=repetition_penalty),
            "auto", model.end_token_id, max_length,
            model.decoder_sequence_length, "decoder_sequence_length",
        )
        self._sampler = resolve_sampler(self.config)
        # Random samplers own a seed variable; keep it tracked for saving.
        self.sampler_variables = list(getattr(self._sampler, "variables", []))
        self.generate = tf.function(
            self._generate,
            input_signature=[tf.TensorSpec([None], tf.string, name=sig.TEXT)],
        )
        self.score = tf.function(
            self._score,
            input_signature=[
                tf.TensorSpec([None], tf.string, name="source"),
                tf.TensorSpec([None], tf.string, name="target"),
            ],
        )

    def _encode(self, text, length=None):
        ids = ragged_ids(self.tokenizer, text, self.model.pad_token_id)
        return ids[:, :length] if length else ids

    def _dense(self, ids):
        # (batch, longest); at least one column so empty inputs still encode.
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        width = tf.reduce_max(tf.concat([lengths, [1]], axis=0))
        shape = tf.stack([ids.nrows(out_type=tf.int32), width])
        return ids.to_tensor(default_value=self.model.pad_token_id, shape=shape)

    def _score(self, source, target):
        """Teacher-forced negative log-likelihood of `target` given `source`.

        Returns a dict with "nll" (float32 [batch], summed over target tokens
        and the end token) and "tokens" (int32 [batch]); perplexity is
        exp(sum(nll) / sum(tokens)). Saved with the export (not a serving
        signature) so `evaluate` can report perplexity from an export alone.
        """
        model = self.model
        # Packed exactly as training batches are (tfllm.data.make_seq2seq_dataset).
        packer = Seq2SeqPacker(
            model.encoder_sequence_length, model.decoder_sequence_length,
            model.start_token_id, model.end_token_id, model.pad_token_id,
        )
        inputs, labels = packer(self._encode(source), self._encode(target))
        logits = model(inputs, training=False)
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, tf.cast(logits, tf.float32))
        weights = tf.cast(tf.not_equal(labels, model.pad_token_id), tf.float32)
        return {
            "nll": tf.reduce_sum(nll * weights, axis=1),
            "tokens": tf.cast(tf.reduce_sum(weights, axis=1), tf.int32),
        }

    def _generate(self, text):
        model = self.model
        sources = self._dense(self._encode(text, model.encoder_sequence_length))
        batch_size = tf.shape(sources)[0]
        targets = model.initial_decoder_tokens(batch_size, self.max_length)
        stops = self._stop_token_ids
        out = model.generate_step(sources, targets, self.max_length, self._sampler, stops)
        out = out[:, 1:]
        keep = tf.logical_not(tf.math.cumsum(tf.cast(is_one_of(out, stops), tf.int32), axis=1) > 0)
        keep = tf.logical_and(keep, tf.logical_not(is_one_of(out, model.suppressed_token_ids())))
        output = detokenize(self.tokenizer, tf.ragged.boolean_mask(out, keep))
        return {sig.OUTPUT_TEXT: output}

    def __call__(self, texts):
        """Generates text for a list of strings (eager convenience); returns a list of str."""
        out = self.generate(tf.constant(list(texts), tf.string))[sig.OUTPUT_TEXT]
        return [s.decode("utf-8") for s in out.numpy()]


def ragged_ids(tokenizer, text, pad_id):
    """`tokenizer(text)` as int32 ragged ids; a dense output loses its trailing `pad_id`s."""
    ids = tokenizer(text)
    if not isinstance(ids, tf.RaggedTensor):
        ids = tf.RaggedTensor.from_tensor(ids, padding=pad_id)
    return tf.cast(ids, tf.int32)


def detokenize(tokenizer, ids):
    """Ragged ids -> tf.string [batch], with WordPiece's spaced punctuation tidied.

    WordPiece splits punctuation into tokens, so a plain detokenization reads
    "I ' m here , Anna ." ; this joins it back to "I'm here, Anna." (case is
    the vocabulary's: a lower-casing one gives "i'm here, anna.").
    """
    text = tf.reshape(tokenizer.detokenize(ids), [-1])
    for pattern, rewrite in _SPACING:
        text = tf.strings.regex_replace(text, pattern, rewrite)
    return tf.strings.strip(text)


# (RE2 pattern, rewrite) pairs, applied in order, undoing WordPiece's spaces
# around punctuation: contractions and possessives, hyphenated words, clock
# times and decimals, then punctuation that ends or opens a phrase (Spanish
# opens questions and exclamations with "¿" and "¡").
_SPACING = (
    (r"(\w) ' (\w)", r"\1'\2"),
    (r"(\w) - (\w)", r"\1-\2"),
    (r"(\d) ([:.,]) (\d)", r"\1\2\3"),
    (r" ([.,!?;:%)\]}])", r"\1"),
    (r"([(\[{$#¿¡]) ", r"\1"),
)


def export_text_generator(
    model,
    tokenizer,
    base_path,
    *,
    version=None,
    warmup_texts=None,
    **generator_kwargs,
):
    """Exports `TextGenerator(model, tokenizer, ...)` to `base_path/<version>/`.

    The export is written atomically, never overwrites a version, and is
    checked with `tfllm.serving.export.check_serving_ops`.

    Args:
        model, tokenizer: see `TextGenerator`.
        base_path: the model's base path, e.g. "saved_models/summarization".
        version: integer version; default the next free one.
        warmup_texts: optional example inputs recorded as TF Serving warmup
            requests.
        **generator_kwargs: `max_length`, `strategy`, `num_beams`, ... as
            for `TextGenerator`.

    Returns:
        The path of the new version directory.
    """
    generator = TextGenerator(model, tokenizer, **generator_kwargs)
    signature = generator.generate.get_concrete_function()
    warmup = {sig.TEXT: list(warmup_texts)} if warmup_texts else None
    return export_saved_model(
        generator,
        base_path,
        {sig.SERVING_DEFAULT: signature},
        version=version,
        warmup_inputs=warmup,
    )


class LoadedTextGenerator:
    """An exported text generator loaded back: `generate(texts)` and `perplexity(...)`.

    Args:
        path: a version directory, or a base path meaning its latest version.

    Raises:
        ExportError: nothing loadable there, or not a text-to-text export.
    """

    def __init__(self, path):
        from tfllm.serving.export import ExportError, load_saved_model

        self.loaded, self.path = load_saved_model(path)
        signature = self.loaded.signatures.get(sig.SERVING_DEFAULT)
        if signature is None or sig.OUTPUT_TEXT not in signature.structured_outputs:
            raise ExportError(f"{self.path}: not a text-to-text export (no {sig.OUTPUT_TEXT!r} output)")
        self.signature = signature

    def generate(self, texts, batch_size=64):
        """Generated strings for `texts`, in order."""
        texts, out = list(texts), []
        for start in range(0, len(texts), batch_size):
            batch = tf.constant(texts[start : start + batch_size], tf.string)
            result = self.signature(**{sig.TEXT: batch})[sig.OUTPUT_TEXT]
            out.extend(s.decode("utf-8") for s in result.numpy())
        return out

    def perplexity(self, sources, targets, batch_size=64):
        """Teacher-forced perplexity of `targets` given `sources` (end token included)."""
        from tfllm.metrics.generation import perplexity

        if not hasattr(self.loaded, "score"):
            raise ValueError(f"{self.path}: this export has no score function")
        sources, targets = list(sources), list(targets)
        total, count = 0.0, 0
        for start in range(0, len(sources), batch_size):
            result = self.loaded.score(
                tf.constant(sources[start : start + batch_size], tf.string),
                tf.constant(targets[start : start + batch_size], tf.string),
            )
            total += float(tf.reduce_sum(result["nll"]))
            count += int(tf.reduce_sum(result["tokens"]))
        return perplexity(total, count)


def generate_texts(model, tokenizer, texts, *, batch_size=64, **generate_kwargs):
    """Generates a string per input text with `model.generate` (XLA, bucketed).

    Matches what the export returns for the same decoding options.
    """
    import tensorflow as tf

    texts, outputs = [str(t) for t in texts], []
    suppressed = set(model.suppressed_token_ids())
    for start in range(0, len(texts), batch_size):
        ids = tokenizer(tf.constant(texts[start : start + batch_size]))
        # keras_hub tokenizers return Python lists when called eagerly.
        ids = ids.to_list() if hasattr(ids, "to_list") else ids
        rows = [list(row)[: model.encoder_sequence_length] for row in ids]
        generated = model.generate(rows, **generate_kwargs)
        generated = [[t for t in row if t not in suppressed] for row in generated]
        lengths = [len(row) for row in generated]
        flat = tf.constant([t for row in generated for t in row], tf.int32)
        ragged = tf.RaggedTensor.from_row_lengths(flat, tf.constant(lengths, tf.int64))
        outputs.extend(s.decode("utf-8") for s in detokenize(tokenizer, ragged).numpy())
    return outputs


def model_perplexity(model, tokenizer, sources, targets, *, batch_size=64):
    """Teacher-forced perplexity of `targets` given `sources` (end token included)."""
    from tfllm.data import make_seq2seq_dataset
    from tfllm.metrics.generation import Perplexity

    data = make_seq2seq_dataset(
        list(sources), list(targets), tokenizer=tokenizer, batch_size=batch_size,
        max_source_length=model.encoder_sequence_length,
        max_target_length=model.decoder_sequence_length, shuffle=False, cache=False,
    )
    metric = Perplexity(from_logits=True, mask_token_id=model.pad_token_id)
    for x, y in data:
        metric.update_state(y, model(x, training=False))
    return float(metric.result())

"""What a trained encoder-decoder attends to: its cross-attention on one text, as an alignment picture.

`cross_attention` decodes one source greedily, then runs the decoder once
more on the generated tokens (teacher forcing) to collect each decoder
block's cross-attention probabilities; `plot_cross_attention` draws them,
source tokens across and generated tokens down, one panel per block (heads
averaged) or per block and head. The Transformer has one panel per decoder
block, the LSTM baseline one (its single attention).
"""

import dataclasses

import numpy as np


@dataclasses.dataclass
class CrossAttention:
    """The cross-attention of one generated translation (or summary, reply).

    Attributes:
        text: the source text.
        output_text: the generated text (detokenized).
        source_tokens: the source's WordPiece tokens (columns).
        output_tokens: the generated tokens, "[END]" last when decoding
            stopped there (rows: row `i` is the decoder step that produced
            `output_tokens[i]`).
        weights: float32 (layers, heads, len(output_tokens), len(source_tokens));
            each row sums to 1 over the source.
    """

    text: str
    output_text: str
    source_tokens: list
    output_tokens: list
    weights: np.ndarray


def cross_attention(model, tokenizer, vocabulary, text, max_length=None):
    """Greedy-decodes `text` and returns the `CrossAttention` of the tokens it generated.

    Args:
        model: a `TransformerSeq2Seq` or `LSTMSeq2Seq` (anything with
            `cross_attention_scores`).
        tokenizer, vocabulary: the run's (`tfllm.tasks.text_to_text.load_run`).
        text: one source text.
        max_length: decoder length including the start token (default: the model's).
    """
    import tensorflow as tf

    from tfllm.tasks.text_generator import detokenize

    ids = tokenizer(tf.constant([str(text)]))
    ids = ids.to_list() if hasattr(ids, "to_list") else ids
    source = [int(i) for i in list(ids[0])[: model.encoder_sequence_length]] or [model.pad_token_id]
    max_length = max_length or model.decoder_sequence_length
    suppressed = set(model.suppressed_token_ids())
    # One sentence: compiling the decoding loop with XLA would cost more than it saves.
    generated = model.generate([source], max_length=max_length, jit_compile=False)[0]
    generated = [t for t in generated if t not in suppressed]
    # The step after the last generated token predicted the end token, unless the length ran out.
    stopped = len(generated) < max_length - 1
    decoder = [model.start_token_id, *generated][: len(generated) + (1 if stopped else 0)] or [model.start_token_id]
    scores = model.cross_attention_scores(
        tf.constant([source], tf.int32), tf.constant([decoder], tf.int32)
    )
    # (layers, heads, output length, source length)
    weights = np.stack([np.asarray(layer, "float32")[0] for layer in scores])
    output_ids = [*generated, model.end_token_id] if stopped else generated
    ragged = tf.RaggedTensor.from_row_lengths(tf.constant(generated, tf.int32), [len(generated)])
    return CrossAttention(
        text=str(text),
        output_text=detokenize(tokenizer, ragged).numpy()[0].decode("utf-8"),
        source_tokens=[vocabulary[i] for i in source],
        output_tokens=[vocabulary[i] for i in output_ids][: weights.shape[2]],
        weights=weights,
    )


def plot_cross_attention(attention, path, *, per_head=False, title=None):
    """Writes the alignment picture of a `CrossAttention` to the PNG `path`; returns `path`.

    One panel per layer with its heads averaged, or (`per_head`) a row of
    panels per layer, one per head. Darker cells are larger weights (0 to 1).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from tfllm._files import save_figure_atomically

    layers, heads, rows, columns = attention.weights.shape
    panels = attention.weights if per_head else attention.weights.mean(axis=1, keepdims=True)
    cell = 0.32
    width = max(3.0, 1.2 + cell * columns)
    height = max(2.5, 1.2 + cell * rows)
    figure, axes = plt.subplots(
        layers, panels.shape[1], figsize=(width * panels.shape[1], height * layers), squeeze=False
    )
    for layer in range(layers):
        for head in range(panels.shape[1]):
            axis = axes[layer][head]
            image = axis.imshow(panels[layer, head], cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
            axis.set_xticks(range(columns), attention.source_tokens, rotation=90, fontsize=8)
            axis.set_yticks(range(rows), attention.output_tokens, fontsize=8)
            which = f"head {head + 1}" if per_head else f"mean of {heads} head{'s' if heads > 1 else ''}"
            axis.set_title(f"layer {layer + 1}, {which}", fontsize=9)
    figure.colorbar(image, ax=axes, shrink=0.8)
    figure.suptitle(title or f"{attention.text}\n-> {attention.output_text}", fontsize=9)
    save_figure_atomically(figure, path)
    plt.close(figure)
    return path

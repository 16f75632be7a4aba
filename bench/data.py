"""Data pipeline benchmark on IMDB train: bucketing padding and tokenizer throughput.

Prints ONE JSON line:
- padding_ratio: tokens fed (real + padding) with make_dataset's length
  bucketing / tokens fed when every batch is padded to max_length
  (the reference's fixed-length pad_sequences). Goal: <= 0.6.
- tokenize_speedup: texts/s of the in-graph WordPiece tokenizer in a tf.data
  pipeline / texts/s of NLTK-style Python word tokenization
  (`tfllm.text.word_tokenize`), on the same texts in the same run.
Plus the raw figures behind both.

Usage: TFLLM_DATA_DIR=../shared/data python bench/data.py [--max-length 512]

With --max-length 256 about 44% of IMDB reviews are truncated, so even zero
padding cannot go below real/fixed = 0.81; `padding_floor` reports that bound.
"""

import argparse
import json
import logging
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tfllm.data import (  # noqa: E402
    LabelVocabulary,
    auto_bucket_boundaries,
    load_dataset,
    make_dataset,
    sequence_lengths,
)
from tfllm.text import build_wordpiece_vocabulary, make_wordpiece_tokenizer, word_tokenize  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--vocab-texts", type=int, default=2000, help="texts to learn WordPiece on")
    parser.add_argument("--speed-texts", type=int, default=5000, help="texts to time tokenizers on")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)

    data_dir = os.environ.get("TFLLM_DATA_DIR", os.path.join(ROOT, "..", "shared", "data"))
    frame = load_dataset("imdb", "train", data_dir=data_dir)
    texts = frame.text.tolist()
    labels = LabelVocabulary.from_labels(frame.label).encode(frame.label)
    rng = np.random.default_rng(0)

    start = time.perf_counter()
    vocab_sample = [texts[i] for i in rng.permutation(len(texts))[: args.vocab_texts]]
    vocabulary = build_wordpiece_vocabulary(vocab_sample, 8000)
    vocab_seconds = time.perf_counter() - start
    tokenizer = make_wordpiece_tokenizer(vocabulary)

    # Padding: one full epoch of the bucketed training pipeline.
    start = time.perf_counter()
    dataset = make_dataset(
        texts, labels, tokenizer=tokenizer, batch_size=args.batch_size, max_length=args.max_length
    )
    fed = batches = 0
    shapes = set()
    for ids, _ in dataset:
        fed += int(ids.shape[0]) * int(ids.shape[1])
        batches += 1
        shapes.add(int(ids.shape[1]))
    epoch_seconds = time.perf_counter() - start
    lengths = sequence_lengths(texts, tokenizer)
    clipped = np.minimum(lengths, args.max_length)
    fixed = len(texts) * args.max_length
    # Also against padding each (shuffled) batch to its own longest text.
    order = rng.permutation(len(texts))
    batch_longest = sum(
        len(chunk) * int(clipped[chunk].max())
        for chunk in np.array_split(order, int(np.ceil(len(texts) / args.batch_size)))
    )

    # Throughput on the same texts: in-graph WordPiece in tf.data vs Python.
    speed_texts = [texts[i] for i in order[: args.speed_texts]]
    pipeline = (
        tf.data.Dataset.from_tensor_slices(tf.constant(speed_texts))
        .batch(256)
        .map(tokenizer, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    for _ in pipeline:  # trace and warm up
        pass
    start = time.perf_counter()
    graph_tokens = sum(int(batch.flat_values.shape[0]) for batch in pipeline)
    graph_rate = len(speed_texts) / (time.perf_counter() - start)
    word_tokenize("warm up.")
    start = time.perf_counter()
    python_tokens = sum(len(word_tokenize(text)) for text in speed_texts)
    python_rate = len(speed_texts) / (time.perf_counter() - start)

    result = {
        "padding_ratio": round(fed / fixed, 4),
        "tokenize_speedup": round(graph_rate / python_rate, 2),
        "padding_ratio_vs_batch_longest": round(fed / batch_longest, 4),
        "padding_floor": round(float(clipped.sum()) / fixed, 4),
        "texts": len(texts),
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "bucket_lengths": auto_bucket_boundaries(lengths, args.max_length),
        "distinct_batch_shapes": len(shapes),
        "batches": batches,
        "real_tokens": int(clipped.sum()),
        "tokens_fed_bucketed": fed,
        "tokens_fed_fixed_max_length": fixed,
        "tokens_fed_batch_longest": int(batch_longest),
        "truncated_texts": int(np.sum(lengths > args.max_length)),
        "median_wordpieces": int(np.median(lengths)),
        "in_graph_texts_per_s": round(graph_rate, 1),
        "python_nltk_texts_per_s": round(python_rate, 1),
        "speed_texts": len(speed_texts),
        "wordpiece_tokens": graph_tokens,
        "nltk_word_tokens": python_tokens,
        "vocabulary_size": len(vocabulary),
        "vocabulary_build_s": round(vocab_seconds, 1),
        "first_epoch_s": round(epoch_seconds, 1),
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

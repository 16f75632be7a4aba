"""tfllm.data: loading text tables and public data sets into bucketed tf.data pipelines."""

from tfllm.data.buckets import auto_bucket_boundaries
from tfllm.data.datasets import load_dataset, load_sample
from tfllm.data.errors import DataError
from tfllm.data.labels import LabelVocabulary
from tfllm.data.pipeline import make_dataset, sequence_lengths
from tfllm.data.readers import (
    read_dailydialog,
    read_imdb,
    read_samsum,
    read_sst2,
    read_translation_pairs,
)
from tfllm.data.seq2seq import make_seq2seq_dataset
from tfllm.data.tables import load_table, train_val_split

__all__ = [
    "DataError",
    "LabelVocabulary",
    "auto_bucket_boundaries",
    "load_dataset",
    "load_sample",
    "load_table",
    "make_dataset",
    "make_seq2seq_dataset",
    "read_dailydialog",
    "read_imdb",
    "read_samsum",
    "read_sst2",
    "read_translation_pairs",
    "sequence_lengths",
    "train_val_split",
]

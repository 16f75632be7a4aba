"""Evaluation metrics: classification figures and text-generation scores."""

from tfllm.metrics.classification import accuracy
from tfllm.metrics.classification import classification_report
from tfllm.metrics.classification import confusion_matrix
from tfllm.metrics.classification import precision_recall_f1
from tfllm.metrics.generation import Perplexity
from tfllm.metrics.generation import bleu
from tfllm.metrics.generation import distinct_n
from tfllm.metrics.generation import lead3_rouge
from tfllm.metrics.generation import perplexity
from tfllm.metrics.generation import response_scores
from tfllm.metrics.generation import rouge

__all__ = [
    "Perplexity",
    "accuracy",
    "bleu",
    "classification_report",
    "confusion_matrix",
    "distinct_n",
    "lead3_rouge",
    "perplexity",
    "precision_recall_f1",
    "response_scores",
    "rouge",
]

"""Model compression: int8/int4 quantization, magnitude pruning, distillation, and their reports."""

from tfllm.compression.distillation import DistillationLoss, distillation_loss, distillation_targets, teacher_probabilities
from tfllm.compression.pruning import MagnitudePruning, PolynomialSparsity, model_sparsity, prune_once, strip_pruning
from tfllm.compression.quantize import quantize_model
from tfllm.compression.report import compression_report
from tfllm.compression.runs import METHODS, compress_run, distill_run, load_run

__all__ = [
    "METHODS",
    "DistillationLoss",
    "MagnitudePruning",
    "PolynomialSparsity",
    "compress_run",
    "compression_report",
    "distill_run",
    "distillation_loss",
    "distillation_targets",
    "load_run",
    "model_sparsity",
    "prune_once",
    "quantize_model",
    "strip_pruning",
    "teacher_probabilities",
]

"""Training: strategy selection, data sharding, mixed precision, fit, run directories, optimizers."""

from tfllm.training.backup import TrainingBackup
from tfllm.training.configure import configure_from_args
from tfllm.training.local_copy import copy_model, local_copy
from tfllm.training.loop import fit
from tfllm.training.optimizers import SparseAdam
from tfllm.training.precision import MIXED_PRECISION_MODES, set_mixed_precision
from tfllm.training.runs import RunDir, plot_history, prepare_run_dir, run_callbacks, save_history
from tfllm.training.strategy import (
    STRATEGIES,
    distribute_dataset,
    even_batches,
    get_strategy,
    global_batch_size,
    is_chief,
    is_multi_worker,
    scale_learning_rate,
    simulate_devices,
    worker_id,
)
from tfllm.training.word_vectors import train_word_vectors

__all__ = [
    "MIXED_PRECISION_MODES",
    "STRATEGIES",
    "RunDir",
    "SparseAdam",
    "TrainingBackup",
    "configure_from_args",
    "copy_model",
    "distribute_dataset",
    "even_batches",
    "fit",
    "get_strategy",
    "global_batch_size",
    "is_chief",
    "is_multi_worker",
    "local_copy",
    "plot_history",
    "prepare_run_dir",
    "run_callbacks",
    "save_history",
    "scale_learning_rate",
    "set_mixed_precision",
    "simulate_devices",
    "train_word_vectors",
    "worker_id",
]

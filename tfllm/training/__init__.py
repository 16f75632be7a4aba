"""Distributed training: strategy selection, data sharding, mixed precision, fit."""

from tfllm.training.arguments import add_training_arguments, configure_from_args
from tfllm.training.backup import TrainingBackup
from tfllm.training.loop import fit
from tfllm.training.precision import MIXED_PRECISION_MODES, set_mixed_precision
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

__all__ = [
    "MIXED_PRECISION_MODES",
    "STRATEGIES",
    "TrainingBackup",
    "add_training_arguments",
    "configure_from_args",
    "distribute_dataset",
    "even_batches",
    "fit",
    "get_strategy",
    "global_batch_size",
    "is_chief",
    "is_multi_worker",
    "scale_learning_rate",
    "set_mixed_precision",
    "simulate_devices",
    "worker_id",
]

"""tfllm.training."""

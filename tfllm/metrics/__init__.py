"""tfllm.metrics."""

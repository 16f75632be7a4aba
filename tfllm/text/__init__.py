"""tfllm.text."""

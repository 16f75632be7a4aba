"""tfllm: Keras 3 layers, apps and TF Serving exports for language models."""

__version__ = "0.1.0"

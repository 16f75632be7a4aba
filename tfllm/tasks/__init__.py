"""Tasks: one pipeline per kind of task, from data to a string-in SavedModel.

- `classification`: a labelled text table -> labels and probabilities
  (`ClassificationTask`, `ClassificationConfig`, `ClassifierExport`).
- `text_to_text`: (source, target) pairs -> generated text
  (`TextToTextTask`, `TextToTextConfig`, `TextGenerator`).
- `language_modeling`: an unlabelled corpus -> a pre-trained backbone
  (`LanguageModelTask`, `LanguageModelConfig`); causal backbones export as
  text in, generated text out (`causal_generator.CausalGenerator`).

Each reads and splits its data, builds and trains its model under any
`tf.distribute` strategy, evaluates, exports, loads an export back and
predicts. Apps (`apps/*.py`) declare a task; `tfllm.cli` gives them a
command line. Modules here are imported on demand (they import TensorFlow).
"""

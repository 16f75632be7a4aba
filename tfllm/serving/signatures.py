"""Signature names and input/output keys, defined once for exports, server and client."""

# Signature names.
SERVING_DEFAULT = "serving_default"

# Method names TF Serving dispatches on.
PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"

# Inputs.
TEXT = "text"  # tf.string [None]: raw text, tokenized inside the graph.
QUESTION = "question"  # tf.string [None]: extractive question answering, with CONTEXT.
CONTEXT = "context"  # tf.string [None]: the paragraph the answer is taken from.

# Classifier outputs.
PROBABILITIES = "probabilities"  # float32 [None, num_classes]
LABEL = "label"  # tf.string [None]
LABEL_ID = "label_id"  # int64 [None]

# Question-answering outputs: the answer span of each context.
ANSWER = "answer"  # tf.string [None]: context[start:end]
SCORE = "score"  # float32 [None]: the span's probability (start x end softmax in its window)
START = "start"  # int64 [None]: character offset of the answer in the context
END = "end"  # int64 [None]: character offset just past the answer

# Entity outputs (named-entity recognition): per text, its entities padded to the
# batch's most; `entity_count` says how many of each row are real.
ENTITY_TEXT = "entity_text"  # tf.string [None, max_entities] ("" padding)
ENTITY_TYPE = "entity_type"  # tf.string [None, max_entities] ("" padding)
ENTITY_START = "entity_start"  # int64 [None, max_entities]: character offset (-1 padding)
ENTITY_END = "entity_end"  # int64 [None, max_entities]: character offset, exclusive (-1 padding)
ENTITY_SCORE = "entity_score"  # float32 [None, max_entities]: mean tag probability (0 padding)
ENTITY_COUNT = "entity_count"  # int64 [None]

# Generation outputs.
OUTPUT_TEXT = "output_text"  # tf.string [None]

CLASSIFIER_OUTPUTS = (PROBABILITIES, LABEL, LABEL_ID)
GENERATOR_OUTPUTS = (OUTPUT_TEXT,)
QUESTION_ANSWERING_INPUTS = (QUESTION, CONTEXT)
QUESTION_ANSWERING_OUTPUTS = (ANSWER, SCORE, START, END)
ENTITY_OUTPUTS = (ENTITY_TEXT, ENTITY_TYPE, ENTITY_START, ENTITY_END, ENTITY_SCORE, ENTITY_COUNT)

"""Signature names and input/output keys, defined once for exports, server and client."""

# Signature names.
SERVING_DEFAULT = "serving_default"

# Method names TF Serving dispatches on.
PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"

# Inputs.
TEXT = "text"  # tf.string [None]: raw text, tokenized inside the graph.

# Classifier outputs.
PROBABILITIES = "probabilities"  # float32 [None, num_classes]
LABEL = "label"  # tf.string [None]
LABEL_ID = "label_id"  # int64 [None]

# Generation outputs.
OUTPUT_TEXT = "output_text"  # tf.string [None]

CLASSIFIER_OUTPUTS = (PROBABILITIES, LABEL, LABEL_ID)
GENERATOR_OUTPUTS = (OUTPUT_TEXT,)

"""The probe model the serving tests export: the demo classifier plus one signature per method."""

import tensorflow as tf

from tfllm.serving import signatures as sig
from tfllm.serving.demo import SENTENCES, TextClassifier, build_vocabulary
from tfllm.serving.export import export_saved_model

# Small enough that a test can exceed it cheaply.
MAX_MESSAGE_SIZE = 64 * 1024

# Extra output of the test export: the batch size the signature ran with, so
# tests can see server-side batching merge requests.
BATCH_SIZE = "batch_size"
GENERATE = "generate"
CLASSIFY = "classify"
REGRESS = "regress"


class ProbeModel(tf.Module):
    """The demo classifier plus signatures for every method the server dispatches."""

    def __init__(self, seed):
        super().__init__()
        self.classifier = TextClassifier(build_vocabulary(SENTENCES), seed=seed)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=sig.TEXT)])
    def serve(self, text):
        outputs = dict(self.classifier.serve(text))
        n = tf.shape(text, out_type=tf.int64)[0]
        outputs[BATCH_SIZE] = tf.fill(tf.shape(text), n)  # (batch,)
        return outputs

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=sig.TEXT)])
    def generate(self, text):
        return {sig.OUTPUT_TEXT: tf.strings.join(["echo: ", tf.strings.upper(text)])}

    def _parse(self, serialized):
        features = tf.io.parse_example(
            serialized, {sig.TEXT: tf.io.FixedLenFeature([], tf.string)}
        )
        return self.classifier.serve(features[sig.TEXT])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify(self, inputs):
        out = self._parse(inputs)
        probabilities = out[sig.PROBABILITIES]
        classes = tf.tile(self.classifier.label_table[tf.newaxis], [tf.shape(inputs)[0], 1])
        return {"classes": classes, "scores": probabilities}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def regress(self, inputs):
        return {"outputs": self._parse(inputs)[sig.PROBABILITIES][:, 1]}


def export_probe(base_path, seed, version=None):
    model = ProbeModel(seed)
    return export_saved_model(
        model,
        str(base_path),
        {
            sig.SERVING_DEFAULT: model.serve,
            GENERATE: model.generate,
            CLASSIFY: model.classify,
            REGRESS: model.regress,
        },
        version=version,
        warmup_inputs={sig.SERVING_DEFAULT: {sig.TEXT: ["a great film", "a boring story"]},
                       GENERATE: {sig.TEXT: ["hello"]}},
        method_names={CLASSIFY: sig.CLASSIFY_METHOD, REGRESS: sig.REGRESS_METHOD},
    )

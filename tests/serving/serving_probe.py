"""The probe model the serving tests export (the demo classifier plus one signature per
method), and helpers for tests that load a server while its versions change."""

import collections
import threading
import time

import grpc
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


def wait_for(condition, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


class Hammer:
    """Threads sending one Predict `request` to `stub` over and over, while in the `with` block.

    `seen` counts the answers per model version; `errors` lists every failure
    as "CODE: details".
    """

    def __init__(self, stub, request, threads=4):
        self.seen, self.errors = collections.Counter(), []
        self._stub, self._request, self._stop = stub, request, threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self):
        for _ in range(5000):  # Bounded even if the test never stops it.
            if self._stop.is_set():
                return
            try:
                self.seen[self._stub.Predict(self._request, timeout=30).model_spec.version.value] += 1
            except grpc.RpcError as e:
                self.errors.append(f"{e.code().name}: {e.details()}")

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join()

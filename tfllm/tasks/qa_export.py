"""The question-answering export: featurizer + span model as one SavedModel taking two strings.

`QuestionAnsweringExport` is a `tf.Module` whose `serving_default` takes
`question` and `context` (tf.string `[None]`, one question per context) and
returns `answer` (the span's text), `score` (its probability), `start` and
`end` (character offsets, `context[start:end] == answer`): tokenization with
offsets, windows, the model and the best span across windows in one graph.
An empty question or context, or the two inputs of different lengths, fails
the request with INVALID_ARGUMENT naming the input. `load_qa_export` reads
one back.
"""

import json

import tensorflow as tf

from tfllm.serving import signatures
from tfllm.tasks.span_features import best_spans

TASK = "question_answering"


def _non_empty(texts, name):
    """An assertion that no string of input `name` is empty or blank; its message names the input."""
    blank = tf.equal(tf.strings.length(tf.strings.strip(texts)), 0)
    first = tf.argmax(tf.cast(blank, tf.int32), output_type=tf.int32)
    return tf.debugging.Assert(tf.logical_not(tf.reduce_any(blank)),
                               [f"input {name} holds an empty string, at index", first], summarize=1)


class QuestionAnsweringExport(tf.Module):
    """`SpanFeaturizer` + `SpanPredictor` + best-span search, exportable with raw strings as input.

    Args:
        featurizer: the `SpanFeaturizer` the model was trained with.
        model: the trained span model (BERT inputs -> `(windows, length, 2)` logits).
        max_answer_length: the most tokens an answer spans.
        metadata: optional JSON-ready dict, readable after loading as `loaded.metadata`.
    """

    def __init__(self, featurizer, model, max_answer_length=30, metadata=None):
        super().__init__(name="question_answering_export")
        self.featurizer = featurizer
        self.model = model
        self.max_answer_length = int(max_answer_length)
        self.metadata = tf.Variable(json.dumps({"task": TASK, **(metadata or {})}, sort_keys=True),
                                    dtype=tf.string, trainable=False, name="metadata")
        self._serve = tf.function(self._answer, input_signature=[
            tf.TensorSpec([None], tf.string, name=signatures.QUESTION),
            tf.TensorSpec([None], tf.string, name=signatures.CONTEXT),
        ])

    def _answer(self, question, context):
        same = tf.debugging.Assert(
            tf.equal(tf.size(question), tf.size(context)),
            [f"inputs {signatures.QUESTION} and {signatures.CONTEXT} must hold as many strings; got",
             tf.size(question), tf.size(context)],
        )
        checks = [same, _non_empty(question, signatures.QUESTION), _non_empty(context, signatures.CONTEXT)]
        with tf.control_dependencies(checks):
            question, context = tf.identity(question), tf.identity(context)
        windows = self.featurizer.windows(question, context)
        inputs = {name: windows[name] for name in ("token_ids", "segment_ids", "padding_mask")}
        logits = self.model(inputs, training=False)
        return best_spans(logits, windows, context, self.max_answer_length)

    def __call__(self, question, context):
        """Runs the serving computation eagerly on two lists of strings."""
        return self._serve(tf.convert_to_tensor(question, tf.string), tf.convert_to_tensor(context, tf.string))

    def signatures(self):
        """`{serving_default: ...}`, ready for `export_saved_model`."""
        return {signatures.SERVING_DEFAULT: self._serve.get_concrete_function()}


def load_qa_export(model_dir):
    """Loads an exported question-answering model: `(serving signature, metadata, path)`.

    Raises:
        ExportError: no SavedModel at `model_dir`, or not a tfllm question-answering export.
    """
    from tfllm.serving.export import ExportError, load_saved_model

    loaded, path = load_saved_model(model_dir)
    metadata = json.loads(loaded.metadata.numpy().decode("utf-8")) if hasattr(loaded, "metadata") else {}
    if metadata.get("task") != TASK or signatures.SERVING_DEFAULT not in loaded.signatures:
        raise ExportError(f"{path}: this SavedModel is not a tfllm question-answering export")
    signature = loaded.signatures[signatures.SERVING_DEFAULT]
    signature._tfllm_owner = loaded  # noqa: SLF001  (keeps the loaded object alive)
    return signature, metadata, path


def answer_questions(predictor, questions, contexts, batch_size=64):
    """Runs a `QuestionAnsweringExport` or a loaded signature; one dict per question.

    Each dict holds `answer` (str), `score` (float), `start` and `end` (int).
    """
    is_signature = hasattr(predictor, "structured_input_signature")
    records = []
    for first in range(0, len(questions), batch_size):
        question = tf.constant(list(questions[first:first + batch_size]), tf.string)
        context = tf.constant(list(contexts[first:first + batch_size]), tf.string)
        if is_signature:
            outputs = predictor(**{signatures.QUESTION: question, signatures.CONTEXT: context})
        else:
            outputs = predictor(question, context)
        for answer, score, start, end in zip(*(outputs[key].numpy() for key in signatures.QUESTION_ANSWERING_OUTPUTS)):
            records.append({signatures.ANSWER: answer.decode("utf-8"), signatures.SCORE: round(float(score), 6),
                            signatures.START: int(start), signatures.END: int(end)})
    return records

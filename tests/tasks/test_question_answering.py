"""The question-answering task from scratch: learned vocabulary, window targets, each model kind under a
2-device strategy, exported and answering in a fresh process."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfllm.data.squad import SquadQuestion
from tfllm.tasks.qa_export import answer_questions
from tfllm.tasks.question_answering import (MODEL_KINDS, QuestionAnsweringConfig, QuestionAnsweringTask,
                                            load_run_export, window_targets)
from tfllm.tasks.span_features import SpanFeaturizer

VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "lighthouse", "is", "red", "and", "white", ".", "what",
              "colour", "?", "ön", "a", "b", "c"]
QUESTIONS = ["What colour is the lighthouse?", "Who guards the eggs?"]
CONTEXTS = ["The old lighthouse of the harbor is painted red and white.",
            "In many species of glass frogs the male guards the eggs for several weeks. " * 4]  # several windows


def test_window_targets_point_at_the_answer_tokens_or_at_cls():
    context = "a b c a b c the lighthouse is red and white ."
    question = SquadQuestion("q", "T", "what colour ?", context, (("red and white", context.index("red")),))
    featurizer = SpanFeaturizer(VOCABULARY, max_seq_length=12, doc_stride=3, max_query_length=3)
    windows = {k: v.numpy() for k, v in featurizer.windows(tf.constant([question.question]),
                                                            tf.constant([context])).items()}
    targets = window_targets(windows, [question])
    for row, (start, end) in enumerate(targets):
        tokens = [VOCABULARY[i] for i in windows["token_ids"][row]]
        if start:
            assert tokens[start:end + 1] == ["red", "and", "white"]
        else:  # the window does not hold the whole answer
            held = {VOCABULARY[i] for i, s in zip(windows["token_ids"][row], windows["segment_ids"][row]) if s}
            assert not {"red", "white"} <= held or end == 0
    assert (targets[:, 0] > 0).any() and (targets[:, 0] == 0).any()


@pytest.mark.slow
@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_each_kind_trains_under_a_two_device_strategy_and_its_export_answers_in_a_fresh_process(
        kind, mirrored_strategy, tmp_path):
    task = QuestionAnsweringTask(name="qa", config=QuestionAnsweringConfig(), demo_config=None)
    config = task.make_config(
        QuestionAnsweringConfig(), model=kind, vocabulary_size=200, num_layers=1, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_seq_length=48, doc_stride=16, max_query_length=12, epochs=1, batch_size=8,
        val_fraction=0.2, verbose=0, run_dir=str(tmp_path / "run"), export_dir=str(tmp_path / "export"),
    )
    result = task.train(config, mirrored_strategy, log=lambda message: None)
    assert result["batch_size"] == 16 and result["model"] == kind
    assert np.isfinite(result["best_val_loss"]) and 0 <= result["val_f1"] <= 100
    assert len(result["export"].featurizer.tokenize(tf.constant(["the lighthouse"]))[0][0]) >= 2
    expected = answer_questions(result["export"], QUESTIONS, CONTEXTS)
    assert expected == answer_questions(load_run_export(tmp_path / "run"), QUESTIONS, CONTEXTS)
    script = ("import json, sys\n"
              "from tfllm.tasks.qa_export import answer_questions, load_qa_export\n"
              "records = answer_questions(load_qa_export(sys.argv[1])[0], *json.loads(sys.argv[2]))\n"
              "print(json.dumps([load_qa_export(sys.argv[1])[1]['model'], records]))\n")
    done = subprocess.run([sys.executable, "-c", script, result["export_path"], json.dumps([QUESTIONS, CONTEXTS])],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    model, records = json.loads(done.stdout.strip().splitlines()[-1])
    assert model == kind
    for record, context in zip(records, CONTEXTS):
        assert context[record["start"]:record["end"]] == record["answer"]
    assert [r["answer"] for r in records] == [r["answer"] for r in expected]
    np.testing.assert_allclose([r["score"] for r in records], [r["score"] for r in expected], atol=1e-5)

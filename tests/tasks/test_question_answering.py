"""The question-answering task from scratch: learned vocabulary, window targets, a 2-device strategy."""

import numpy as np
import pytest
import tensorflow as tf

from tfllm.data.squad import SquadQuestion
from tfllm.tasks.question_answering import QuestionAnsweringConfig, QuestionAnsweringTask, window_targets
from tfllm.tasks.span_features import SpanFeaturizer

VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "lighthouse", "is", "red", "and", "white", ".", "what",
              "colour", "?", "ön", "a", "b", "c"]


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
def test_trains_from_scratch_under_a_two_device_strategy(mirrored_strategy, tmp_path):
    task = QuestionAnsweringTask(name="qa", config=QuestionAnsweringConfig(), demo_config=None)
    config = task.make_config(
        QuestionAnsweringConfig(), vocabulary_size=200, num_layers=1, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_seq_length=48, doc_stride=16, max_query_length=12, epochs=1, batch_size=8,
        val_fraction=0.2, export=False, verbose=0, run_dir=str(tmp_path / "run"),
    )
    result = task.train(config, mirrored_strategy, log=lambda message: None)
    assert result["batch_size"] == 16 and result["export_path"] is None
    assert np.isfinite(result["best_val_loss"]) and 0 <= result["val_f1"] <= 100
    assert len(result["export"].featurizer.tokenize(tf.constant(["the lighthouse"]))[0][0]) >= 2

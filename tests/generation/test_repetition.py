"""Repetition control: n-gram blocking and the repetition penalty, checked by hand in every strategy."""

import numpy as np
import pytest
import tensorflow as tf

from tfllm.generation import SamplerConfig, decode, pad_prompts, resolve_sampler, sampler_config
from tfllm.generation.repetition import block_repeated_ngrams, penalize_repetitions

END = 1
# test_decoding's table: from 2, greedy takes 3 (0.6), then 3 again (0.36)
# over 5 (0.34) and the end (0.3).
TABLE = np.array(
    [
        [0, 0, 0, 0, 0, 1],
        [1, 0, 0, 0, 0, 0],
        [0, 0, 0, 0.6, 0.4, 0],
        [0, 0.3, 0, 0.36, 0, 0.34],
        [0, 0, 0, 0, 0, 1.0],
        [0, 1.0, 0, 0, 0, 0],
    ]
)


def bigram(table):
    """`next` whose logits depend only on the previous token: log(table[prev])."""
    logits = tf.math.log(tf.constant(table, tf.float32) + 1e-12)

    def next(tokens, cache, index):
        return tf.gather(logits, tf.gather(tokens, index - 1, axis=1)), cache

    return next


def run(strategy="greedy", length=5, **options):
    tokens, _ = pad_prompts([[2]], length)
    out = decode(bigram(TABLE), tokens, index=1, sampler=sampler_config(strategy, **options), stop_token_ids=(END,))
    return np.asarray(out)[:1].tolist()

STRATEGIES = (
    ("greedy", {}),
    ("beam", {"num_beams": 3}),
    ("top_k", {"k": 3, "seed": 1}),
    ("top_p", {"p": 0.9, "seed": 1}),
    ("random", {"seed": 1}),
)


def loop_table(vocab=7):
    """Bigram table whose greedy path cycles 2 -> 3 -> 4 -> 2 ...; other tokens stay possible."""
    table = np.full((vocab, vocab), 0.02)
    table[:, 0] = 0.0
    for a, b in ((2, 3), (3, 4), (4, 2), (5, 6), (6, 5)):
        table[a, b] = 0.8
    return table / table.sum(axis=1, keepdims=True)


def ngrams(row, n):
    return [tuple(row[i : i + n]) for i in range(len(row) - n + 1)]


def test_no_repeat_ngram_size_changes_the_greedy_path_as_computed_by_hand():
    # Greedy: 2 3 3 3 3. Bigram (3, 3) may occur once, so the second time at 3
    # the best allowed token is 5 (0.34), then the end.
    assert run("greedy", length=6) == [[2, 3, 3, 3, 3, 3]]
    assert run("greedy", length=6, no_repeat_ngram_size=2) == [[2, 3, 3, 5, 1, 0]]
    # Unigrams: 3 may not follow 3 at all.
    assert run("greedy", length=6, no_repeat_ngram_size=1) == [[2, 3, 5, 1, 0, 0]]


@pytest.mark.parametrize("strategy,options", STRATEGIES)
def test_no_strategy_repeats_an_ngram(strategy, options):
    tokens, _ = pad_prompts([[2], [5], [2, 3]], 16)
    mask = np.zeros_like(tokens, bool)
    mask[:, 0], mask[2, 1] = True, True
    plain = np.asarray(decode(bigram(loop_table()), tokens, index=1, mask=mask,
                              sampler=sampler_config(strategy, **options)))
    assert any(len(set(ngrams(list(row), 3))) < 14 for row in plain)  # Without the option it repeats.
    for n in (2, 3):
        config = sampler_config(strategy, no_repeat_ngram_size=n, **options)
        out = np.asarray(decode(bigram(loop_table()), tokens, index=1, mask=mask, sampler=config))
        assert out[2, :2].tolist() == [2, 3]  # The prompt is kept.
        for row in out.tolist():
            grams = ngrams(row, n)
            assert len(grams) == len(set(grams)), (strategy, n, row)


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits():
    logits = tf.constant([[2.0, 1.5, -1.0, -1.2, 0.5]])
    tokens = tf.constant([[0, 2, 4, 4]])  # Position 3 is not generated yet.
    out = penalize_repetitions(logits, tokens, 2, 2.0).numpy()
    np.testing.assert_allclose(out, [[1.0, 1.5, -2.0, -1.2, 0.5]])
    assert out.argmax() == 1  # Token 0 led before the penalty.


def test_repetition_penalty_changes_the_argmax_as_computed_by_hand():
    # At 3: log 0.36 = -1.022 beats log 0.34 = -1.079. Token 3 was generated,
    # so a penalty p multiplies its logit: 1.05 keeps 3 (-1.073), 1.1 picks 5 (-1.124).
    assert run("greedy", length=4, repetition_penalty=1.05) == [[2, 3, 3, 3]]
    assert run("greedy", length=4, repetition_penalty=1.1) == [[2, 3, 5, 1]]
    assert run("beam", num_beams=1, length=4, repetition_penalty=1.1) == [[2, 3, 5, 1]]


def test_block_repeated_ngrams_bans_what_followed_each_earlier_prefix():
    tokens = tf.constant([[1, 2, 3, 1, 2, 4, 1, 0]])
    logits = tf.zeros((1, 6))
    # The prefix before index 7 is (1,); earlier it was followed by 2, twice.
    banned = block_repeated_ngrams(logits, tokens, 7, 2).numpy()[0] < -1e8
    assert banned.tolist() == [False, False, True, False, False, False]
    banned = block_repeated_ngrams(logits, tokens, 6, 3).numpy()[0] < -1e8
    assert banned.tolist() == [False, False, False, False, False, False]  # (2, 4) never occurred before.
    banned = block_repeated_ngrams(logits, tokens, 5, 3).numpy()[0] < -1e8
    assert banned.tolist() == [False, False, False, True, False, False]  # (1, 2) was followed by 3.


def test_options_compile_with_xla_and_match_eager_decoding():
    next = bigram(loop_table())
    tokens, _ = pad_prompts([[2], [5]], 12)
    for strategy, options in STRATEGIES[:2]:
        config = sampler_config(strategy, no_repeat_ngram_size=2, repetition_penalty=1.3, **options)
        sampler = resolve_sampler(config)
        fn = tf.function(lambda t: decode(next, t, index=1, sampler=sampler, stop_token_ids=(END,)),
                         jit_compile=True)
        eager = decode(next, tokens, index=1, sampler=config, stop_token_ids=(END,))
        assert np.asarray(fn(tokens)).tolist() == np.asarray(eager).tolist()


def test_bad_repetition_options_name_the_value():
    with pytest.raises(ValueError, match="no_repeat_ngram_size=-1"):
        SamplerConfig(no_repeat_ngram_size=-1)
    with pytest.raises(ValueError, match="repetition_penalty=0"):
        sampler_config("greedy", repetition_penalty=0)

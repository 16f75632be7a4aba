"""Decoding loops over a synthetic bigram `next` function, checked by hand."""

import numpy as np
import pytest
import tensorflow as tf

from tfllm.generation import SamplerConfig, bucket, decode, pad_prompts, sampler_config, strip_after_stop, trim

PAD, END = 0, 1
VOCAB = 6


def bigram(table):
    """`next` whose logits depend only on the previous token: log(table[prev])."""
    logits = tf.math.log(tf.constant(table, tf.float32) + 1e-12)

    def next(tokens, cache, index):
        previous = tf.gather(tokens, index - 1, axis=1)
        return tf.gather(logits, previous), cache

    return next


# From token 2: "3" is likelier (0.6) than "4" (0.4), but after 3 every
# continuation is uncertain while after 4 token 5 is certain. Greedy takes 3;
# beam search (width 2) finds 2 -> 4 -> 5, whose probability 0.4 beats 0.6 * 0.36.
TABLE = np.array(
    [
        [0, 0, 0, 0, 0, 1],  # 0 (pad)
        [1, 0, 0, 0, 0, 0],  # 1 (end) -> pad
        [0, 0, 0, 0.6, 0.4, 0],  # 2
        [0, 0.3, 0, 0.36, 0, 0.34],  # 3
        [0, 0, 0, 0, 0, 1.0],  # 4
        [0, 1.0, 0, 0, 0, 0],  # 5 -> end
    ]
)


def run(strategy="greedy", prompt=((2,),), length=5, **kwargs):
    tokens, lengths = pad_prompts([list(p) for p in prompt], length)
    mask = np.arange(length)[None, :] < lengths[:, None]
    out = decode(
        bigram(TABLE),
        tokens,
        index=int(lengths.min()),
        mask=mask,
        sampler=sampler_config(strategy, **kwargs),
        stop_token_ids=(END,),
    )
    return np.asarray(out)[: len(prompt)].tolist()


def test_greedy_matches_hand_computed_path():
    # 2 -> 3 (0.6) -> 3 (0.36) -> 3 -> 3.
    assert run("greedy") == [[2, 3, 3, 3, 3]]


def test_beam_search_finds_the_likelier_sequence_and_stops():
    assert run("beam", num_beams=2, length_penalty=0.0) == [[2, 4, 5, 1, 0]]


def test_beam_width_one_equals_greedy():
    assert run("beam", num_beams=1) == run("greedy")


def test_top_k_one_and_tiny_top_p_equal_greedy():
    assert run("top_k", k=1, seed=3) == run("greedy")
    assert run("top_p", p=1e-6, seed=3) == run("greedy")


def test_stop_token_pads_the_rest_and_only_that_row():
    # From 4 the path is 4 -> 5 -> end; the row from 2 keeps going.
    out = run("greedy", prompt=((4,), (2,)), length=6)
    assert out == [[4, 5, 1, 0, 0, 0], [2, 3, 3, 3, 3, 3]]


def test_max_length_limits_generation_inside_a_longer_bucket():
    tokens, _ = pad_prompts([[2]], 8)
    out = decode(bigram(TABLE), tokens, index=1, max_length=3)
    assert np.asarray(out).tolist() == [[2, 3, 3, 0, 0, 0, 0, 0]]


def test_prompts_of_different_lengths_equal_one_at_a_time():
    prompts = ((2, 4), (3,), (2, 3, 5))
    together = run("greedy", prompt=prompts, length=7)
    alone = [run("greedy", prompt=(p,), length=7)[0] for p in prompts]
    assert together == alone
    beams_together = run("beam", prompt=prompts, length=7, num_beams=3)
    beams_alone = [run("beam", prompt=(p,), length=7, num_beams=3)[0] for p in prompts]
    assert beams_together == beams_alone


def test_temperature_sharpens_sampling():
    # At a very low temperature random sampling is greedy.
    assert run("random", temperature=1e-3, seed=1) == run("greedy")


def test_random_sampling_is_seeded_and_follows_the_distribution():
    table = np.full((VOCAB, VOCAB), 1.0 / VOCAB)
    table[:, 2] += 0.5
    table /= table.sum(axis=1, keepdims=True)  # token 2: (1/6 + 1/2) / 1.5 = 4/9
    tokens, _ = pad_prompts([[3]] * 64, 33)
    draw = lambda seed: np.asarray(
        decode(bigram(table), tokens, index=1, sampler=SamplerConfig("random", seed=seed))
    )
    first = draw(7)
    share = (first[:, 1:] == 2).mean()
    assert 0.40 < share < 0.49
    assert (draw(7) == first).all()


def test_decode_traces_into_an_xla_function():
    next = bigram(TABLE)
    sampler = sampler_config("greedy")
    fn = tf.function(lambda t: decode(next, t, index=1, sampler=sampler, stop_token_ids=(END,)), jit_compile=True)
    tokens, _ = pad_prompts([[2], [4]], 5)
    assert np.asarray(fn(tokens)).tolist() == [[2, 3, 3, 3, 3], [4, 5, 1, 0, 0]]


def test_bad_sampler_arguments_name_the_value():
    with pytest.raises(ValueError, match="strategy=.nucleus"):
        sampler_config("nucleus")
    with pytest.raises(ValueError, match="k=0"):
        sampler_config("top_k", k=0)
    with pytest.raises(ValueError, match="temperature=0"):
        sampler_config("greedy", temperature=0)


def test_context_reaches_next_per_example_and_is_never_reordered():
    # Example 0 follows TABLE; example 1 follows it with tokens 3 and 4 swapped,
    # told apart only by its context row. Beam search must keep each example's
    # beams on its own row of the context.
    swapped = TABLE[:, [0, 1, 2, 4, 3, 5]][[0, 1, 2, 4, 3, 5]]
    tables = tf.math.log(tf.constant(np.stack([TABLE, swapped]), tf.float32) + 1e-12)
    seen = []

    def next(tokens, cache, index, context):
        seen.append(int(context.shape[0]))
        previous = tf.gather(tokens, index - 1, axis=1)
        return tf.gather_nd(tf.gather(tables, context), previous[:, None], batch_dims=1), cache

    tokens, _ = pad_prompts([[2], [2]], 5)
    for sampler, expected in ((sampler_config("beam", num_beams=2, length_penalty=0.0),
                               [[2, 4, 5, 1, 0], [2, 3, 5, 1, 0]]),
                              (sampler_config("greedy"), [[2, 3, 3, 3, 3], [2, 4, 4, 4, 4]])):
        out = decode(next, tokens, index=1, context=tf.constant([0, 1]), sampler=sampler, stop_token_ids=(END,))
        assert np.asarray(out).tolist() == expected
    assert seen[0] == 4 and seen[-1] == 2  # Beam search saw the context repeated per beam.


def test_config_objects_keep_their_fields_when_options_are_unset():
    unset = dict(num_beams=None, k=None, p=None, temperature=None, length_penalty=None, seed=None)
    beam = SamplerConfig("beam", num_beams=4, temperature=0.7)
    assert sampler_config(beam, **unset) == beam
    assert sampler_config({"strategy": "top_k", "k": 5}, **unset) == SamplerConfig("top_k", k=5)
    assert sampler_config(beam, **{**unset, "num_beams": 2}).num_beams == 2


def test_buckets_and_trim():
    assert [bucket(n) for n in (1, 8, 9, 33)] == [8, 8, 16, 64]
    assert bucket(100, limit=40) == 40
    tokens, lengths = pad_prompts([[5, 6], [7]], 4)
    assert tokens.shape == (2, 4) and lengths.tolist() == [2, 1]
    tokens, lengths = pad_prompts([[5, 6], [7], [8]], 4)
    assert tokens.shape == (4, 4) and tokens[3].tolist() == [5, 6, 0, 0]
    out = np.array([[5, 6, 9, 1, 0], [7, 2, 3, 0, 0]])
    assert trim(out, [2, 1], 2, stop_token_ids=(1,)) == [[9], [2, 3]]
    assert np.asarray(strip_after_stop(out, out * 0, (9,))).tolist() == [[5, 6, 9, 0, 0], [7, 2, 3, 0, 0]]

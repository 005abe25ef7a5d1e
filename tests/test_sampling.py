"""Tests for seqgen.sampling: the sampling rules, validated once in SamplingOptions."""

import math

import numpy as np
import pytest

from seqgen.errors import SeqgenError
from seqgen.sampling import Candidates, SamplingOptions, Steps, draw, rank, sample_index, sample_indices

# ---------------------------------------------------------------------------
# sample_index
# ---------------------------------------------------------------------------

PROBS = np.array([0.05, 0.5, 0.3, 0.15, 0.0])


def draw_many(probs, count=20000, seed=0, **options) -> np.ndarray:
    """Frequencies of `count` draws, in one batched call."""
    batch = np.repeat(np.asarray(probs, float)[None, :], count, axis=0)
    chosen = sample_indices(batch, rng=np.random.default_rng(seed), **options)
    return np.bincount(chosen, minlength=len(probs)) / count


def test_greedy_is_argmax_with_ties_to_the_lowest_index():
    rng = np.random.default_rng(0)
    assert sample_index(PROBS, 0, rng) == 1
    assert sample_index([0.2, 0.4, 0.4], 0, rng) == 1
    for seed in range(5):
        probs = np.random.default_rng(seed).dirichlet(np.ones(30))
        assert sample_index(probs, 0.0, rng) == int(np.argmax(probs))


def test_top_k_one_and_tiny_top_p_are_argmax():
    for seed in range(20):
        rng = np.random.default_rng(seed)
        probs = rng.dirichlet(np.ones(12))
        assert sample_index(probs, 1.0, rng, top_k=1) == int(np.argmax(probs))
        assert sample_index(probs, 2.5, rng, top_p=1e-9) == int(np.argmax(probs))


def test_temperature_one_samples_the_distribution():
    frequencies = draw_many(PROBS, temperature=1.0)
    np.testing.assert_allclose(frequencies, PROBS, atol=0.015)
    assert frequencies[4] == 0  # zero probability is never drawn


def test_temperature_sharpens_and_flattens():
    cold = draw_many(PROBS, temperature=0.3)
    hot = draw_many(PROBS, temperature=3.0)
    assert cold[1] > 0.8  # close to greedy
    expected_hot = PROBS[:4] ** (1 / 3) / (PROBS[:4] ** (1 / 3)).sum()
    np.testing.assert_allclose(hot[:4], expected_hot, atol=0.015)
    assert hot[4] == 0

    def entropy(p):
        p = p[p > 0]
        return -(p * np.log(p)).sum()

    assert entropy(cold) < entropy(PROBS[:4]) < entropy(hot)


def test_top_k_and_top_p_restrict_the_candidates():
    top_two = draw_many(PROBS, temperature=1.0, top_k=2)
    assert set(np.flatnonzero(top_two)) == {1, 2}
    np.testing.assert_allclose(top_two[[1, 2]], [0.5 / 0.8, 0.3 / 0.8], atol=0.015)
    # 0.5 < 0.7, 0.5 + 0.3 reaches it: the nucleus is {1, 2}.
    assert set(np.flatnonzero(draw_many(PROBS, temperature=1.0, top_p=0.7))) == {1, 2}
    assert set(np.flatnonzero(draw_many(PROBS, temperature=1.0, top_p=0.5))) == {1}
    # top_k above V keeps everything that has probability.
    assert set(np.flatnonzero(draw_many(PROBS, temperature=1.0, top_k=99))) == {0, 1, 2, 3}


def test_repetition_penalty_lowers_repeats():
    plain = draw_many(PROBS, temperature=1.0)
    batch_recent = np.zeros((20000, len(PROBS)), dtype=bool)
    batch_recent[:, 1] = True
    penalised = draw_many(PROBS, temperature=1.0, repetition_penalty=2.0, recent=batch_recent)
    assert penalised[1] < plain[1] - 0.1
    # Dividing p=0.5 by 2 and renormalising: 0.25 / 0.75.
    assert penalised[1] == pytest.approx(0.25 / 0.75, abs=0.015)
    # Greedy decoding with a penalty steps off a repeated argmax.
    rng = np.random.default_rng(0)
    assert sample_index([0.5, 0.4, 0.1], 0, rng, repetition_penalty=2.0, recent=[0, 0]) == 1
    assert sample_index([0.5, 0.4, 0.1], 0, rng, repetition_penalty=1.0, recent=[0]) == 0


def test_sample_index_matches_the_batched_variant():
    probs = np.random.default_rng(3).dirichlet(np.ones(40))
    for seed in range(10):
        single = sample_index(probs, 0.8, np.random.default_rng(seed), top_k=10, top_p=0.9)
        batched = sample_indices(probs[None], 0.8, np.random.default_rng(seed), top_k=10, top_p=0.9)
        assert single == int(batched[0])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"temperature": -0.5}, "Temperature must be >= 0"),
        ({"temperature": math.nan}, "Temperature must be >= 0"),
        ({"temperature": math.inf}, "Temperature must be >= 0"),
        ({"temperature": 1.0, "top_p": 0.0}, "top_p must be in (0, 1]"),
        ({"temperature": 1.0, "top_p": 1.5}, "top_p must be in (0, 1]"),
        ({"temperature": 1.0, "top_p": math.nan}, "top_p must be in (0, 1]"),
        ({"temperature": 1.0, "top_k": 0}, "top_k must be an integer >= 1"),
        ({"temperature": 1.0, "top_k": 2.5}, "top_k must be an integer >= 1"),
        ({"temperature": 1.0, "repetition_penalty": 0.5}, "repetition_penalty must be a finite number >= 1"),
        ({"temperature": 1.0, "repetition_penalty": math.nan}, "repetition_penalty must be a finite number >= 1"),
    ],
)
def test_sample_index_validates_options(options, message):
    with pytest.raises(SeqgenError) as error:
        sample_index(PROBS, rng=np.random.default_rng(0), **options)
    assert message in str(error.value)


def test_sample_index_rejects_broken_probabilities_and_rngs():
    with pytest.raises(SeqgenError, match="invalid probabilities"):
        sample_index([0.5, math.nan, 0.5], 1.0, np.random.default_rng(0))
    with pytest.raises(SeqgenError, match="invalid probabilities"):
        sample_index([0.0, 0.0], 1.0, np.random.default_rng(0))
    with pytest.raises(SeqgenError, match="numpy.random.Generator"):
        sample_index(PROBS, 1.0, 42)




def test_sampling_options_validate_once_and_draw_trusts_them():
    with pytest.raises(SeqgenError, match="Temperature must be >= 0"):
        SamplingOptions(temperature=-1)
    with pytest.raises(SeqgenError, match="top_p must be in"):
        SamplingOptions.for_kind("music", top_p=2.0)
    options = SamplingOptions.for_kind("lyrics", top_k=2)
    assert options == SamplingOptions(temperature=0.8, top_k=2) and options.to_json()["top_k"] == 2
    assert SamplingOptions.for_kind("music") == SamplingOptions(temperature=1.0)
    rng = np.random.default_rng(0)
    batch = np.repeat(PROBS[None, :], 5000, axis=0)
    chosen = draw(batch, options, rng)
    assert set(np.unique(chosen)) == {1, 2}  # top-2 of PROBS
    # The same rules through the plain-argument function give the same draws.
    np.testing.assert_array_equal(chosen, sample_indices(batch, 0.8, np.random.default_rng(0), top_k=2))


# Draws of the sampling rules before `rank` was split out of `draw`: the same seeds must keep giving them.
GOLDEN_CASES = [dict(temperature=0), dict(temperature=1.0), dict(temperature=0.7, top_k=5), dict(temperature=1.3, top_p=0.8),
                dict(temperature=0.9, top_k=12, top_p=0.9, repetition_penalty=1.5), dict(temperature=1e-6),
                dict(temperature=0, repetition_penalty=2.0)]
GOLDEN_DRAWS = [
    [0, 0, 27, 11, 28, 8, 20, 0, 0, 1, 12, 4, 0, 18, 21, 19, 20, 22, 9, 11, 0, 28, 15, 23],
    [3, 14, 7, 11, 28, 1, 20, 3, 28, 22, 10, 9, 19, 18, 21, 26, 8, 13, 19, 4, 29, 28, 20, 15],
    [0, 2, 27, 11, 28, 7, 20, 0, 4, 24, 12, 4, 3, 18, 21, 1, 9, 22, 9, 11, 4, 28, 15, 23],
    [3, 11, 7, 11, 28, 15, 20, 3, 22, 22, 10, 9, 15, 18, 21, 23, 8, 13, 15, 6, 23, 28, 20, 15],
    [3, 7, 27, 11, 28, 11, 20, 1, 15, 6, 0, 9, 9, 18, 21, 1, 1, 24, 9, 11, 12, 28, 2, 15],
    [3, 14, 27, 11, 28, 8, 20, 3, 28, 1, 12, 4, 19, 18, 21, 19, 20, 22, 9, 11, 29, 28, 15, 23],
    [1, 1, 27, 11, 28, 8, 20, 0, 2, 1, 12, 4, 0, 18, 21, 19, 20, 22, 9, 11, 0, 28, 15, 23],
]


@pytest.mark.parametrize(("case", "expected"), list(zip(GOLDEN_CASES, GOLDEN_DRAWS)), ids=[str(case) for case in GOLDEN_CASES])
def test_draws_stay_what_they_were_for_the_same_seed(case, expected):
    options, rng, data, drawn = SamplingOptions(**case), np.random.default_rng(11), np.random.default_rng(5), []
    for _ in range(4):
        probs = data.dirichlet(np.full(30, 0.3), size=6)
        probs[:, 3] = 0.0
        probs[:3] = np.floor(probs[:3] * 4) / 4 + 0.01  # ties
        recent = data.random((6, 30)) < 0.2
        drawn.extend(draw(probs, options, rng, recent).tolist())
    assert drawn == expected


NAMES = ["a", "b", "c", "d", "e"]


def test_the_explanation_is_the_distribution_the_token_is_drawn_from():
    options = SamplingOptions(temperature=0.5, top_k=3)
    ranked = rank(PROBS[None], options)
    places = ranked.pick(np.random.default_rng(0))
    chosen = ranked.order[0, places]
    (explained,) = ranked.explain(3, NAMES, places)
    # Temperature 0.5 squares the probabilities; top-3 keeps b, c, d; they sum to 1.
    kept = PROBS[[1, 2, 3]] ** 2
    assert [token for token, _ in explained["candidates"]] == ["b", "c", "d"]
    np.testing.assert_allclose([p for _, p in explained["candidates"]], kept / kept.sum())
    np.testing.assert_allclose([p for _, p in explained["before_temperature"]], [0.5, 0.3, 0.15])
    assert explained["chosen"] == NAMES[chosen[0]] and explained["chosen"] in dict(explained["candidates"])
    assert explained["probability"] == dict(explained["candidates"])[explained["chosen"]]
    assert explained["rank"] == [token for token, _ in explained["candidates"]].index(explained["chosen"]) + 1
    # Draws from the explained distribution follow its probabilities.
    batch = rank(np.repeat(PROBS[None], 20000, axis=0), options)
    frequencies = np.bincount(batch.draw(np.random.default_rng(1)), minlength=5) / 20000
    np.testing.assert_allclose(frequencies[[1, 2, 3]], kept / kept.sum(), atol=0.015)


def test_explanations_leave_out_filtered_tokens_and_show_the_penalty():
    # top-p 0.7 keeps b and c; greedy keeps only the argmax.
    (nucleus,) = rank(PROBS[None], SamplingOptions(temperature=1.0, top_p=0.7)).explain(4, NAMES)
    assert [token for token, _ in nucleus["candidates"]] == ["b", "c"] and "chosen" not in nucleus
    assert len(nucleus["before_temperature"]) == 4
    greedy = rank(PROBS[None], SamplingOptions(temperature=0, repetition_penalty=2.0), recent=[[1]])
    (explained,) = greedy.explain(3, NAMES, greedy.pick(np.random.default_rng(0)))
    assert explained["candidates"] == [["c", 1.0]] and explained["chosen"] == "c" and explained["rank"] == 1
    # b's 0.5 halved to 0.25 and renormalised over 0.75: c is now the most likely before temperature.
    np.testing.assert_allclose([p for _, p in explained["before_temperature"]], [0.3 / 0.75, 0.25 / 0.75, 0.15 / 0.75])


def test_steps_explained_together_equal_steps_explained_one_by_one():
    data, options = np.random.default_rng(2), SamplingOptions(temperature=0.6, top_p=0.9, repetition_penalty=1.2)
    rankings = [rank(data.dirichlet(np.ones(5), size=3), options, recent=data.random((3, 5)) < 0.3) for _ in range(4)]
    places = [ranked.pick(data) for ranked in rankings]
    together = Candidates.of_steps(rankings, places, 3)
    assert together.ids.shape == (3, 4, 3)
    for variation in range(3):
        one_by_one = [ranked.explain(3, NAMES, picked)[variation] for ranked, picked in zip(rankings, places)]
        assert together.row(variation).to_dicts(NAMES) == one_by_one


def test_steps_read_as_the_list_of_dicts_they_keep_as_arrays():
    import pickle

    data, options = np.random.default_rng(3), SamplingOptions(temperature=0.8, top_k=3)
    rankings = [rank(data.dirichlet(np.ones(5), size=1), options) for _ in range(6)]
    places = [ranked.pick(data) for ranked in rankings]
    expected = [ranked.explain(2, NAMES, picked)[0] for ranked, picked in zip(rankings, places)]
    steps = Steps(Candidates.of_steps(rankings, places, 2).row(0), NAMES)
    assert len(steps) == 6 and list(steps) == expected and steps == expected and expected == steps
    assert steps[0] == expected[0] and steps[-1] == expected[-1]
    assert isinstance(steps[2:4], Steps) and steps[2:4] == expected[2:4] and steps[:0] == []
    with pytest.raises(IndexError):
        steps[6]
    assert pickle.loads(pickle.dumps(steps)) == expected
    assert steps != expected[:5] and steps != "abcdef"


def test_the_copy_guard_rules_tokens_out_and_never_empties_a_row():
    from seqgen.sampling import SamplingOptions, rank

    probs = np.array([[0.5, 0.3, 0.2], [0.6, 0.3, 0.1]])
    blocked = np.array([[True, False, False], [True, True, True]])
    ranked = rank(probs, SamplingOptions(temperature=0), blocked=blocked)
    assert ranked.order[0, 0] == 1  # the likeliest token is ruled out: argmax falls to the next
    assert ranked.order[1, 0] == 0  # nothing left: the row keeps every token
    weights = rank(probs, SamplingOptions(), blocked=blocked).weights
    assert weights[0, 2] == 0 and weights[0, :2].all() and weights[1].all()
    with pytest.raises(SeqgenError, match="max_copy must be 0"):
        SamplingOptions(max_copy=1)


@pytest.mark.parametrize("mode", ["stateful", "window"])
def test_with_the_copy_guard_a_generation_never_replays_that_much_of_its_corpus(music_bundle, mode):
    from seqgen.quality import longest_copied_ngram

    sampler, primer = music_bundle.sampler, music_bundle.seeds[0]
    greedy = sampler.generate(primer, 60, temperature=0, mode=mode)  # the tiny model replays bits of its looping tune
    assert longest_copied_ngram(greedy.ids[0], music_bundle.corpus_ids) >= 4
    for variations in (1, 3):
        guarded = sampler.generate(primer, 60, temperature=0, max_copy=3, variations=variations, mode=mode)
        assert all(longest_copied_ngram(ids, music_bundle.corpus_ids) <= 2 for ids in guarded.ids)

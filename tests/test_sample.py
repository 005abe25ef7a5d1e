"""Tests for seqgen.sample: window and stateful generation against Keras, the generation loop.

Two tiny bundles are trained once per module (presets ``debug``, ids/sequence,
and ``debug-last``, scaled/last) on a repetitive synthetic melody; the
reference-sized ``seed`` architecture is checked with random weights.
"""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest

from seqgen.errors import SeqgenError
from seqgen.sample import MAX_LENGTH, GenerationResult, Sampler
from seqgen.sampling import SamplingOptions
from seqgen.vocab import Vocab

MELODY = ["C4", "E4", "G4", "C5", "G4", "E4", "D4", "F4", "A4", "D5", "A4", "F4", "4.7.11", "B3"]


def synthetic_tokens(count: int = 400) -> list[str]:
    """A repetitive melody with a small drift so every window is not identical."""
    tokens = []
    for index, token in enumerate(itertools.islice(itertools.cycle(MELODY), count)):
        tokens.append("G3" if index % 29 == 0 else token)
    return tokens


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """{"debug": Bundle, "debug-last": Bundle}, trained for one epoch each."""
    from seqgen.bundle import load_bundle
    from seqgen.corpus import Corpus
    from seqgen.train import TrainConfig, train

    root = tmp_path_factory.mktemp("sample-bundles")
    corpus = Corpus("toy", "music", "seed", 1, synthetic_tokens())
    loaded = {}
    for preset, window in (("debug", 8), ("debug-last", 10)):
        train(corpus, root / preset, TrainConfig(kind="music", preset=preset, epochs=1, min_count=1, window=window))
        loaded[preset] = load_bundle(root / preset)
    return loaded


def fake_bundle(kind: str, preset: str, tokens, window: int, lowercase: bool = False, seeds=None):
    """A Bundle-like object around a freshly built (random) preset model."""
    from seqgen.models import build_model, get_preset, saved_layers

    vocab = Vocab(tuple(tokens))
    spec = get_preset(kind, preset)
    config = {
        "kind": kind, "preset": preset, "window": window, "vocab_size": len(vocab),
        "input_mode": spec.input_mode, "target_mode": spec.target_mode, "lowercase": lowercase,
    }
    model = build_model(kind, preset, len(vocab), window)
    return SimpleNamespace(folder=None, config=config, vocab=vocab, model=model, layers=saved_layers(model), seeds=seeds or [])


def model_inputs(bundle, windows: np.ndarray) -> np.ndarray:
    """What model.predict takes for token-id windows `(batch, window)`."""
    if bundle.config["input_mode"] == "scaled":
        return (windows.astype(np.float32) / np.float32(len(bundle.vocab)))[..., None]
    return windows.astype(np.int32)


def predict_last(bundle, windows: np.ndarray) -> np.ndarray:
    """The reference: model.predict, at the last position for "sequence" presets."""
    output = bundle.model.predict(model_inputs(bundle, windows), verbose=0)
    return output[:, -1, :] if output.ndim == 3 else output


def random_windows(bundle, count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(len(bundle.vocab), size=(count, bundle.config["window"]))


# ---------------------------------------------------------------------------
# Window mode and stateful mode against Keras
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["debug", "debug-last"])
def test_window_mode_equals_model_predict(bundles, preset):
    bundle = bundles[preset]
    windows = random_windows(bundle, 4)
    expected = predict_last(bundle, windows)
    sampler = Sampler(bundle, mode="window")
    np.testing.assert_allclose(sampler.window_probabilities(windows), expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(sampler.window_probabilities(windows, engine="keras"), expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(Sampler(bundle, dtype=np.float64).window_probabilities(windows), expected, atol=1e-5, rtol=0)


def test_window_mode_equals_predict_on_the_seed_architecture():
    bundle = fake_bundle("music", "seed", [f"t{index:03d}" for index in range(228)], window=40)
    windows = random_windows(bundle, 2, seed=1)
    expected = predict_last(bundle, windows)
    probabilities = Sampler(bundle).window_probabilities(windows)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5, rtol=0)
    # And the stateful primer of a full window gives the same first prediction.
    _, primed = Sampler(bundle, mode="stateful").prime(windows[0])
    np.testing.assert_allclose(primed[0], expected[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind, preset", [("music", "seed"), ("lyrics", "embed")])
def test_stateful_steps_of_a_class_equal_each_row_stepped_alone(kind, preset):
    """Rows stepped together (products in column slices, see seqgen.numpy_lstm) give each row's own probabilities."""
    bundle = fake_bundle(kind, preset, [f"t{index:03d}" for index in range(60)], window=40)
    sampler = Sampler(bundle, mode="stateful")
    ids = random_windows(bundle, 8, seed=3)
    together, _ = sampler.prime(ids[0, :5], batch=8)
    alone = [sampler.prime(ids[0, :5])[0] for _ in range(8)]
    for position in range(5, 12):
        expected = [sampler.step(state, [ids[row, position]])[0] for row, state in enumerate(alone)]
        probabilities = sampler.step(together, ids[:, position])
        np.testing.assert_allclose(probabilities, np.stack(expected), atol=1e-6, rtol=0)


def test_stateful_mode_equals_the_full_sequence_output(bundles):
    bundle = bundles["debug"]
    window = bundle.config["window"]
    ids = random_windows(bundle, 1, seed=2)[0]
    full = bundle.model.predict(ids[None].astype(np.int32), verbose=0)[0]  # (window, V)
    sampler = Sampler(bundle)
    assert sampler.mode == "stateful"
    # Primed with the whole window: the model's output at the last position.
    _, primed = sampler.prime(ids)
    np.testing.assert_allclose(primed[0], full[-1], atol=1e-5, rtol=0)
    # One token at a time: every position, one cell step each.
    state, probabilities = sampler.prime(ids[:1], batch=2)
    np.testing.assert_allclose(probabilities[1], full[0], atol=1e-5, rtol=0)
    for position in range(1, window):
        probabilities = sampler.step(state, [ids[position], ids[position]])
        np.testing.assert_allclose(probabilities, np.stack([full[position]] * 2), atol=1e-5, rtol=0)


def test_greedy_window_generation_reproduces_the_reference_loop(bundles):
    bundle = bundles["debug-last"]
    window = bundle.config["window"]
    primer = bundle.seeds[0]
    current = np.array(bundle.vocab.encode(primer))
    reference = []
    for _ in range(12):  # the reference: predict the window, argmax, slide
        probabilities = predict_last(bundle, current[None])
        index = int(np.argmax(probabilities[0]))
        reference.append(index)
        current = np.append(current[1:], index)
    result = Sampler(bundle).generate(primer, 12, temperature=0)
    assert result.mode == "window"
    assert len(primer) == window
    assert result.ids == [reference]
    assert result.tokens == [bundle.vocab.decode(reference)]


def test_default_modes_follow_the_target_mode(bundles):
    assert Sampler(bundles["debug"]).mode == "stateful"
    assert Sampler(bundles["debug-last"]).mode == "window"
    assert Sampler(bundles["debug-last"], mode="stateful").mode == "stateful"
    result = Sampler(bundles["debug"]).generate(["C4", "E4"], 3, mode="window", rng_seed=0)
    assert result.mode == "window"


# ---------------------------------------------------------------------------
# generate
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["window", "stateful"])
def test_generation_is_reproducible_with_a_seed(bundles, mode):
    sampler = Sampler(bundles["debug"], mode=mode)
    primer = bundles["debug"].seeds[0]
    first = sampler.generate(primer, 40, temperature=1.5, rng_seed=7)
    again = sampler.generate(primer, 40, temperature=1.5, rng_seed=7)
    other = sampler.generate(primer, 40, temperature=1.5, rng_seed=8)
    assert first.tokens == again.tokens
    assert first.tokens != other.tokens


def test_variations_come_in_one_batch(bundles):
    sampler = Sampler(bundles["debug"])
    seen = []
    result = sampler.generate(["C4", "E4", "G4"], 9, temperature=1.5, variations=3, rng_seed=1,
                              on_token=lambda variation, step, token: seen.append((variation, step, token)))
    assert isinstance(result, GenerationResult)
    assert len(result.tokens) == 3 and all(len(row) == 9 for row in result.tokens)
    assert len({tuple(row) for row in result.tokens}) > 1
    assert all(token in bundles["debug"].vocab for row in result.tokens for token in row)
    assert seen == [(variation, step, result.tokens[variation][step]) for step in range(9) for variation in range(3)]
    assert set(result.timings) >= {"total_ms", "per_token_ms", "prime_ms"}
    # Greedy variations are identical and match the single greedy run.
    greedy = sampler.generate(["C4", "E4", "G4"], 6, temperature=0, variations=2)
    assert greedy.tokens[0] == greedy.tokens[1] == sampler.generate(["C4", "E4", "G4"], 6, temperature=0).tokens[0]


def test_unknown_primer_tokens_are_dropped_and_reported(bundles):
    sampler = Sampler(bundles["debug"])
    result = sampler.generate(["C4", "XX", "E4", "YY", "XX"], 4, rng_seed=0)
    assert result.primer == ["C4", "E4"]
    assert result.dropped == {"XX": 2, "YY": 1}
    assert len(result.tokens[0]) == 4
    # A string primer for a music bundle is split on whitespace.
    text = sampler.generate("C4 E4 Q9", 2, rng_seed=0)
    assert text.primer == ["C4", "E4"] and text.dropped == {"Q9": 1}


@pytest.mark.parametrize("preset", ["debug", "debug-last"])
@pytest.mark.parametrize("mode", ["window", "stateful"])
def test_a_short_primer_works(bundles, preset, mode):
    result = Sampler(bundles[preset], mode=mode).generate(["E4"], 5, temperature=1.0, rng_seed=3)
    assert result.primer == ["E4"] and len(result.tokens[0]) == 5


def test_window_mode_pads_a_short_primer_with_its_first_token(bundles):
    bundle = bundles["debug-last"]
    window = bundle.config["window"]
    sampler = Sampler(bundle)
    primer = ["E4", "G4", "C5"]
    padded = np.array([bundle.vocab.encode(["E4"])[0]] * (window - 3) + bundle.vocab.encode(primer))
    expected = int(np.argmax(predict_last(bundle, padded[None])[0]))
    assert sampler.generate(primer, 1, temperature=0).ids == [[expected]]


def test_a_long_primer_keeps_its_last_window(bundles):
    bundle = bundles["debug"]
    window = bundle.config["window"]
    primer = synthetic_tokens(window + 5)
    result = Sampler(bundle).generate(primer, 2, rng_seed=0)
    assert result.primer == primer[-window:]


def test_repetition_penalty_runs_in_generation(bundles):
    sampler = Sampler(bundles["debug"])
    plain = sampler.generate(["C4"], 60, temperature=0)
    penalised = sampler.generate(["C4"], 60, temperature=0, repetition_penalty=50.0)
    window = bundles["debug"].config["window"]

    def repeats(row):  # tokens that already occur in the previous `window` tokens
        return sum(row[index] in row[max(0, index - window):index] for index in range(len(row)))

    assert repeats(penalised.tokens[0]) < repeats(plain.tokens[0])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"primer_tokens": ["XX", "YY"], "length": 5}, "The primer is empty"),
        ({"primer_tokens": [], "length": 5}, "The primer is empty"),
        ({"primer_tokens": ["C4"], "length": 5, "temperature": -1}, "Temperature must be >= 0"),
        ({"primer_tokens": ["C4"], "length": 5, "temperature": math.nan}, "Temperature must be >= 0"),
        ({"primer_tokens": ["C4"], "length": 5, "top_p": 1.2}, "top_p must be in (0, 1]"),
        ({"primer_tokens": ["C4"], "length": 5, "top_p": 0}, "top_p must be in (0, 1]"),
        ({"primer_tokens": ["C4"], "length": 5, "top_k": 0}, "top_k must be an integer >= 1"),
        ({"primer_tokens": ["C4"], "length": 5, "repetition_penalty": 0.9}, "repetition_penalty"),
        ({"primer_tokens": ["C4"], "length": 0}, "length must be between 1 and"),
        ({"primer_tokens": ["C4"], "length": MAX_LENGTH + 1}, "length must be between 1 and 2000"),
        ({"primer_tokens": ["C4"], "length": 5, "variations": 0}, "variations must be between 1 and"),
        ({"primer_tokens": ["C4"], "length": 5, "mode": "beam"}, "Unknown generation mode 'beam'"),
    ],
)
def test_generate_rejects_bad_input(bundles, arguments, message):
    with pytest.raises(SeqgenError) as error:
        Sampler(bundles["debug"]).generate(**arguments)
    assert message in str(error.value)


def test_an_unknown_primer_is_answered_with_tokens_the_model_knows(bundles):
    bundle = bundles["debug"]
    with pytest.raises(SeqgenError) as error:
        Sampler(bundle).generate(["XX"], 5)
    known = " ".join(bundle.seeds[0][:5])
    assert "dropped as unknown: 'XX'" in str(error.value) and f"(such as {known})" in str(error.value)


def test_the_length_cap_is_configurable(bundles, monkeypatch):
    with pytest.raises(SeqgenError, match="length must be between 1 and 5 tokens"):
        Sampler(bundles["debug"], max_length=5).generate(["C4"], 6)
    monkeypatch.setenv("SEQGEN_MAX_LENGTH", "3")
    sampler = Sampler(bundles["debug"])
    assert len(sampler.generate(["C4"], 3, rng_seed=0).tokens[0]) == 3
    with pytest.raises(SeqgenError, match="SEQGEN_MAX_LENGTH"):
        sampler.generate(["C4"], 4)
    monkeypatch.setenv("SEQGEN_MAX_LENGTH", "lots")
    with pytest.raises(SeqgenError, match="SEQGEN_MAX_LENGTH must be a positive integer"):
        Sampler(bundles["debug"])


def test_sampler_rejects_unknown_modes_and_engines(bundles):
    with pytest.raises(SeqgenError, match="Unknown generation mode"):
        Sampler(bundles["debug"], mode="greedy")
    with pytest.raises(SeqgenError, match="Unknown engine"):
        Sampler(bundles["debug"], engine="torch")


def test_sampling_options_or_their_fields_not_both(bundles):
    sampler = Sampler(bundles["debug"])
    greedy = sampler.generate(["C4"], 5, SamplingOptions(temperature=0))
    assert greedy.sampling == SamplingOptions(temperature=0)
    assert greedy.tokens == sampler.generate(["C4"], 5, temperature=0).tokens
    with pytest.raises(SeqgenError, match=r"Give the sampling options or their fields \(top_k\), not both"):
        sampler.generate(["C4"], 5, SamplingOptions(temperature=0), top_k=3)


def test_each_kind_has_its_default_temperature(bundles, lyrics_bundle):
    assert Sampler(bundles["debug"]).generate(["C4"], 2, rng_seed=0).sampling == SamplingOptions(temperature=1.0)
    assert Sampler(lyrics_bundle).generate("la", 2, rng_seed=0).sampling == SamplingOptions(temperature=0.8)


def test_a_loaded_bundle_keeps_one_sampler(bundles):
    bundle = bundles["debug"]
    assert bundle.sampler is bundle.sampler
    assert bundle.sampler.mode == "stateful" and bundle.sampler.bundle is bundle


@pytest.fixture(scope="module")
def lyrics_bundle():
    characters = sorted(set("abcdefghijklmnopqrstuvwy '\n,."))  # no "z"
    return fake_bundle("lyrics", "debug", characters, window=12, lowercase=True)


def test_lyrics_generation_takes_text(lyrics_bundle):
    sampler = Sampler(lyrics_bundle)
    result = sampler.generate("Let dance for the rest of the night HERE", 20, temperature=0.8, rng_seed=0, variations=2)
    assert result.primer == list("for the rest of the night here"[-12:])
    assert result.dropped == {}
    assert all(len(row) == 20 and all(char in lyrics_bundle.vocab for char in row) for row in result.tokens)
    # Character lists are lower-cased too when the model is.
    assert sampler.generate(["H", "I", "Z"], 2, rng_seed=0).dropped == {"Z": 1}


# -- stopping at a piece's end -------------------------------------------------------------


def scripted_sampler(ends_after: dict[int, int], vocab=("BOS_None", "a", "b", "EOS_None")):
    """A stateful sampler whose row r draws 'a' until its ``ends_after[r]``-th token, which is the end token
    (rows not named never end); counts its steps."""
    bundle = fake_bundle("music", "debug", vocab, window=4)
    sampler = Sampler(bundle)
    size, end, a = len(vocab), vocab.index("EOS_None"), vocab.index("a")
    sampler.calls = 0

    def probabilities(step_number: int, rows: int) -> np.ndarray:
        probs = np.zeros((rows, size))
        for row in range(rows):
            probs[row, end if ends_after.get(row) == step_number + 1 else a] = 1.0
        return probs

    def prime(ids, batch):
        state, _, hidden = Sampler._prime(sampler, ids, batch)
        return state, probabilities(0, batch), hidden

    def step(state, ids):
        sampler.calls += 1
        return probabilities(sampler.calls, len(ids))

    sampler._prime, sampler.step = prime, step
    return sampler


def test_a_variation_ends_at_the_stop_token_and_the_others_go_on():
    sampler = scripted_sampler({0: 3})
    seen = []
    result = sampler.generate(["BOS_None"], 10, variations=2, rng_seed=0, temperature=0, stop_token="EOS_None",
                              on_token=lambda row, step, token: seen.append((row, token)), explain=2)
    assert result.ended == [True, False]
    assert result.tokens == [["a", "a"], ["a"] * 10]  # the end token itself is not a note
    assert [len(steps) for steps in result.steps] == [2, 10]
    assert seen.count((0, "EOS_None")) == 1 and len([row for row, _ in seen if row == 0]) == 3  # nothing after the end


def test_generation_stops_once_every_variation_has_ended():
    sampler = scripted_sampler({0: 2, 1: 3})
    result = sampler.generate(["BOS_None"], 50, variations=2, rng_seed=0, temperature=0, stop_token="EOS_None")
    assert result.ended == [True, True] and result.tokens == [["a"], ["a", "a"]]
    assert sampler.calls == 2  # not 50 steps: the run stopped when the last variation ended


def test_without_a_stop_token_nothing_ends_and_an_unknown_one_is_refused():
    sampler = scripted_sampler({0: 2})
    result = sampler.generate(["BOS_None"], 5, rng_seed=0, temperature=0)
    assert result.ended is None and result.tokens[0][1] == "EOS_None" and len(result.tokens[0]) == 5
    with pytest.raises(SeqgenError, match="never learned the token 'END'"):
        sampler.generate(["BOS_None"], 5, stop_token="END")


def test_an_events_model_never_writes_out_of_remi_order():
    """Whatever the model prefers, an events sampler draws only tokens that may come next (seqgen.events.Grammar)."""
    from seqgen import events

    vocab = ["BOS_None", "EOS_None", "Bar_None", "TimeSig_4/4", "Position_0", "Position_8", "Pitch_60", "Pitch_64",
             "Duration_1.0.8", "Duration_2.0.8"]
    bundle = fake_bundle("music", "debug", vocab, window=4)
    bundle.config["tokenizer"] = "events"
    result = Sampler(bundle).generate(["BOS_None"], 60, variations=4, rng_seed=0, temperature=1.5)
    grammar = events.Grammar(vocab)
    for row in result.ids:
        state = grammar.state_after([0])
        for token in row:
            assert grammar.allowed(state)[token], (state, vocab[token])
            state = grammar.advance(state, token)

"""Tests for seqgen.insight and the sampler's explanations: what each step offered, and the LSTM's cells.

The explanation must be the very distribution each token was drawn from, and
asking for it must not change a single token; hidden states must equal a Keras
sub-model's output.  The shared debug bundles (tests/conftest.py) and two
shipped models are used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seqgen import insight
from seqgen.errors import SeqgenError
from seqgen.sampling import SamplingOptions

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
VERSE = "let dance for the rest of the night here\nwe dance until the morning light\nhold me near and hold me tight\n"


# --- explanations ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["stateful", "window"])
@pytest.mark.parametrize("sampling", [SamplingOptions(temperature=1.0), SamplingOptions(temperature=0.7, top_k=4, repetition_penalty=1.3),
                                      SamplingOptions(temperature=0)], ids=["plain", "rules", "greedy"])
def test_explaining_changes_no_token(music_bundle, mode, sampling):
    primer = music_bundle.seeds[0]
    plain = music_bundle.sampler.generate(primer, 70, sampling, variations=3, rng_seed=5, mode=mode)  # 70: two runs of steps
    explained = music_bundle.sampler.generate(primer, 70, sampling, variations=3, rng_seed=5, mode=mode, explain=4, record="lstm_1")
    assert explained.tokens == plain.tokens and plain.steps is None
    assert [[step["chosen"] for step in steps] for steps in explained.steps] == explained.tokens
    for steps in explained.steps:
        for step in steps:
            probabilities = [p for _, p in step["candidates"]]
            assert probabilities == sorted(probabilities, reverse=True) and len(step["before_temperature"]) == 4
            if sampling.top_k == 4 or sampling.temperature == 0:  # every kept token is listed
                assert sum(probabilities) == pytest.approx(1.0)
                assert step["chosen"] in dict(step["candidates"])
            if step["chosen"] in dict(step["candidates"]):
                assert dict(step["candidates"])[step["chosen"]] == step["probability"]


def test_recorded_hidden_states_are_the_stacks_over_primer_and_generation(lyrics_bundle):
    sampler = lyrics_bundle.sampler
    result = sampler.generate("let dance", 25, rng_seed=2, variations=2, mode="stateful", record="lstm_1")
    assert result.hidden.shape == (2, len(result.primer) + 25, sampler.stack.lstms[0].units)
    for row, tokens in enumerate(result.tokens):
        outputs, _ = sampler.stack.hidden(np.array([lyrics_bundle.vocab.encode(result.primer + tokens)]))
        np.testing.assert_allclose(result.hidden[row], outputs[0][0], atol=1e-6)
    # Window mode restarts every step from zeros: it records nothing.
    assert sampler.generate("let dance", 5, rng_seed=2, mode="window", record="lstm_1").hidden is None
    with pytest.raises(SeqgenError, match="no LSTM layer 'lstm_2'; it has lstm_1"):
        sampler.generate("let", 5, record="lstm_2", mode="stateful")
    with pytest.raises(SeqgenError, match="explain must be a positive number"):
        sampler.generate("let", 5, explain=0)


def test_lyrics_steps_and_hidden_states_are_cut_with_the_text(lyrics_bundle):
    from seqgen.generate import complete_lyrics, to_json

    output = complete_lyrics(lyrics_bundle, "let dan", length=200, lines=1, rng_seed=4, explain=3, record="lstm_1", mode="stateful")
    text = output.texts[0]
    assert "".join(step["chosen"] for step in output.steps[0]) == text
    assert len(output.hidden[0]) == len(output.seed) + len(text)
    assert to_json(output)["steps"] == output.steps[0]


# --- features and ranking ---------------------------------------------------------------------


def test_lyrics_features():
    found = insight.features("lyrics", list("ab c\nde"))
    assert found["line_position"].tolist() == [1, 2, 3, 4, 0, 1, 2]
    assert found["in_word"].tolist() == [1, 1, 0, 1, 0, 1, 1]
    assert found["after_vowel"].tolist() == [1, 0, 0, 0, 0, 0, 1]


def test_music_features():
    timed = insight.features("music", ["C4_4", "R_2", "C4.E4.G4_2", "A4_8", "G4_4"], "timed")
    np.testing.assert_array_equal(timed["pitch_height"], [60, np.nan, (60 + 64 + 67) / 3, 69, 67])
    assert timed["bar_position"].tolist() == [0, 4, 6, 8, 0]  # sixteenths into a 4/4 bar
    seed = insight.features("music", ["C4", "4.7.11", "B-3"], "seed")
    assert list(seed) == ["pitch_height"] and seed["pitch_height"].tolist() == [60, (64 + 67 + 71) / 3, 58]


def test_rank_cells_finds_the_cell_that_counts_the_line():
    text = list(VERSE * 3)
    found = insight.features("lyrics", text)
    rng = np.random.default_rng(0)
    values = rng.uniform(-1, 1, size=(len(text), 6))
    values[:, 4] = -found["line_position"] / 40  # falls along each line
    values[:, 1] = found["after_vowel"] * 0.8 - 0.4 + rng.normal(0, 0.4, len(text))
    cells = insight.rank_cells(values, found, per_feature=2)
    assert cells[0]["unit"] == 4 and cells[0]["feature"] == "line_position" and cells[0]["correlation"] < -0.9
    assert {"unit": 1, "feature": "after_vowel"}.items() <= cells[1].items() and cells[1]["label"] == "after a vowel"
    assert [abs(cell["correlation"]) for cell in cells] == sorted((abs(cell["correlation"]) for cell in cells), reverse=True)
    # A constant feature correlates with nothing (no NaN).
    assert insight.correlations(values, np.ones(len(text))).tolist() == [0.0] * 6


# --- activations against Keras --------------------------------------------------------------


def keras_layer_output(bundle, layer: str, ids: list[int]) -> np.ndarray:
    """The Keras sub-model from the input to ``layer``, on one window: `(steps, units)` or `(units,)`."""
    import keras

    sub_model = keras.Model(bundle.model.inputs, bundle.model.get_layer(layer).output)
    if bundle.config["input_mode"] == "scaled":
        inputs = (np.array([ids], dtype=np.float32) / np.float32(len(bundle.vocab)))[..., None]
    else:
        inputs = np.array([ids], dtype=np.int32)
    return sub_model.predict(inputs, verbose=0)[0]


def test_activations_equal_a_keras_sub_model(lyrics_bundle):
    window = lyrics_bundle.config["window"]
    result = insight.activations(lyrics_bundle, VERSE[:window])
    assert result.layer == "lstm_1" and result.values.shape == (window, result.units)
    expected = keras_layer_output(lyrics_bundle, "lstm_1", lyrics_bundle.vocab.encode(result.tokens))
    np.testing.assert_allclose(result.values, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["songs-poems-embed", "mozart-seed"])
def test_activations_of_shipped_models_equal_keras_sub_models(name):
    from seqgen.bundle import load_bundle

    bundle = load_bundle(CHECKPOINTS / name)
    window = bundle.config["window"]
    primer = VERSE[:window] if bundle.config["kind"] == "lyrics" else bundle.seeds[0]
    for layer in ("lstm_1", "lstm_2"):
        result = insight.activations(bundle, primer, layer)
        expected = keras_layer_output(bundle, layer, bundle.vocab.encode(result.tokens))
        if expected.ndim == 1:  # a "last" preset's top LSTM returns its final step only
            expected, result.values = expected[None], result.values[-1:]
        assert np.abs(result.values).max() <= 1
        np.testing.assert_allclose(result.values[-len(expected):], expected, atol=1e-5, rtol=0)


def test_activations_report_and_refuse(lyrics_bundle, timed_bundle):
    result = insight.activations(lyrics_bundle, "let dance €€")
    assert result.dropped == {"€": 2} and result.tokens == list("let dance ")
    assert {cell["feature"] for cell in result.cells} == {"line_position", "in_word", "after_vowel"}
    music = insight.activations(timed_bundle, insight.sequence(timed_bundle, rng_seed=3))
    assert music.tokens == timed_bundle.seeds[np.random.default_rng(3).integers(len(timed_bundle.seeds))]
    assert {cell["feature"] for cell in music.cells} == {"pitch_height", "bar_position"}
    with pytest.raises(SeqgenError, match="none of the tokens are in the model's vocabulary"):
        insight.activations(lyrics_bundle, "€€")
    with pytest.raises(SeqgenError, match="Give a lyrics model some text"):
        insight.sequence(lyrics_bundle)
    with pytest.raises(SeqgenError, match="at most 2000 tokens"):
        insight.activations(lyrics_bundle, "la " * 700)


# --- generation by hand ----------------------------------------------------------------------


@pytest.mark.parametrize("sampling", [SamplingOptions(temperature=0.9, top_p=0.9, repetition_penalty=1.4), SamplingOptions(temperature=0)],
                         ids=["rules", "greedy"])
def test_a_session_where_the_model_picks_every_token_is_stateful_generation(lyrics_bundle, sampling):
    from seqgen import steps

    session = steps.start(lyrics_bundle, "let dance", sampling, rng_seed=8)
    first = session
    for _ in range(20):
        session = steps.advance(lyrics_bundle, session)
    expected = lyrics_bundle.sampler.generate("let dance", 20, sampling, rng_seed=8, mode="stateful", explain=steps.CANDIDATES)
    assert session.picked == expected.tokens[0] and session.by_model == [True] * 20
    assert first.picked == [] and first.offered == {key: value for key, value in expected.steps[0][0].items()
                                                    if key in ("candidates", "before_temperature")}


def test_a_person_can_pick_any_token_and_the_state_follows(lyrics_bundle, monkeypatch):
    from seqgen import steps

    session = steps.start(lyrics_bundle, "let dance €", SamplingOptions(temperature=0), rng_seed=1)
    assert session.dropped == {"€": 1} and session.primer == list("let dance ")[-8:]  # the window: 8 characters
    unlikely = session.offered["before_temperature"][-1][0]
    picked = steps.advance(lyrics_bundle, session, unlikely)
    picked = steps.advance(lyrics_bundle, picked, "w")
    assert picked.picked == [unlikely, "w"] and picked.by_model == [False, False] and session.picked == []
    # The state after the picks is the network's state after reading them.
    _, probs = lyrics_bundle.sampler.prime(picked.context)
    np.testing.assert_allclose(picked.probs, probs, atol=1e-6)
    with pytest.raises(SeqgenError, match="'€' is not a token of this model"):
        steps.advance(lyrics_bundle, picked, "€")
    with pytest.raises(SeqgenError, match="The seed is empty"):
        steps.start(lyrics_bundle, "€€")
    monkeypatch.setattr(steps, "MAX_STEPS", 2)
    with pytest.raises(SeqgenError, match="This generation has 2 tokens, the most one session takes: start again."):
        steps.advance(lyrics_bundle, picked)


def test_a_generation_gives_its_activations_recorded_or_computed(timed_bundle, tmp_path):
    from seqgen.generate import generate_melody

    recorded = generate_melody(timed_bundle, tmp_path / "a", length=20, rng_seed=3, render_audio=False, record="top", mode="stateful")
    plain = generate_melody(timed_bundle, tmp_path / "b", length=20, rng_seed=3, render_audio=False, mode="stateful")
    assert plain.hidden is None and recorded.melodies[0].tokens == plain.melodies[0].tokens
    (from_record, primer_length), (computed, same_length) = insight.of_generation(timed_bundle, recorded), insight.of_generation(timed_bundle, plain)
    assert from_record.tokens == computed.tokens == recorded.primer + recorded.melodies[0].tokens
    assert primer_length == same_length == len(recorded.primer) and from_record.layer == computed.layer == "lstm_1"
    np.testing.assert_allclose(from_record.values, computed.values, atol=1e-6)


def test_the_events_timeline_puts_each_note_where_miditok_plays_it():
    """Onsets, lengths and pitches per token agree with the notes the events decoder gives, bar lines and a change
    of metre included; bar_position is in sixteenths from the bar line."""
    from seqgen import events, insight

    tokens = ["Position_8", "Pitch_60", "Duration_1.0.8", "Bar_None", "TimeSig_3/4", "Position_0", "Pitch_62", "Duration_2.0.8",
              "Position_16", "Pitch_64", "Duration_1.0.8", "Bar_None", "TimeSig_3/4", "Position_4", "Pitch_65", "Duration_0.4.8"]
    onsets, durations, pitches = insight.timeline(tokens, "events")
    notes = [(float(onset), float(length), found[0]) for onset, length, found in zip(onsets, durations, pitches) if found]
    assert notes == [(note.start, note.duration, note.pitch) for note in events.decode(tokens).notes]
    assert insight.features("music", tokens, "events")["bar_position"][14] == 2.0  # an eighth after the bar line


def test_step_by_hand_offers_an_events_model_only_tokens_that_may_come_next(events_bundle_dir):
    """Stepping by hand an events model: every candidate keeps REMI's order, as the sampler's draws do."""
    from seqgen import steps
    from seqgen.bundle import load_bundle

    bundle = load_bundle(events_bundle_dir)
    session = steps.start(bundle, ["BOS_None"], rng_seed=1, candidates=5)
    grammar = bundle.sampler.grammar
    for _ in range(12):
        allowed = grammar.allowed(grammar.state_after(session.context))
        offered = [token for token, probability in session.offered["candidates"] if probability > 0]
        assert offered and all(allowed[bundle.vocab.encode([token])[0]] for token in offered), (session.picked, offered)
        session = steps.advance(bundle, session)

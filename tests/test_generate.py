"""Tests for seqgen.generate: melodies in two phases (MIDI and audio; then score and quality) and lyric completion.

They use the session's shared debug bundles (tests/conftest.py): a ``seed`` and a
``timed`` melody bundle on repetitive melodies, and a character-level lyrics
bundle on a short repetitive lyric.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from seqgen.errors import SeqgenError
from seqgen.generate import DEFAULT_SEED_LINE, complete_lyrics, cut_text, describe_melodies, dumps, generate_melody

LENGTH = 16  # tokens per generated melody
SECONDS_PER_SEED_TOKEN = 0.5  # one quarter note at 120 bpm


@pytest.fixture(scope="module")
def bundles(music_bundle, timed_bundle, lyrics_bundle, music_corpus, timed_corpus, lyrics_corpus):
    """{"seed": Bundle, "timed": Bundle, "lyrics": Bundle} plus the corpora they were trained on (shared, read-only)."""
    return {"seed": music_bundle, "timed": timed_bundle, "lyrics": lyrics_bundle,
            "corpora": {"seed": music_corpus, "timed": timed_corpus, "lyrics": lyrics_corpus}}


@pytest.fixture(scope="module")
def first_phase(bundles, tmp_path_factory):
    """Two seed-tokenizer melodies after the first phase, and a snapshot of what it left (before the second phase)."""
    folder = tmp_path_factory.mktemp("seed-melodies")
    output = generate_melody(bundles["seed"], folder, length=LENGTH, rng_seed=7, variations=2, temperature=1.0)
    snapshot = {
        "files": sorted(path.name for path in folder.iterdir()),
        "params": [json.loads(melody.params.read_text(encoding="utf-8")) for melody in output.melodies],
        "described": [(melody.quality, melody.piano_roll, melody.musicxml, melody.svg) for melody in output.melodies],
        "timings": dict(output.timings),
    }
    return output, snapshot


@pytest.fixture(scope="module")
def seed_output(bundles, first_phase):
    """The same two melodies with every output (the second phase run: quality, piano roll, sheet music)."""
    return describe_melodies(bundles["seed"], first_phase[0])


@pytest.fixture(scope="module")
def timed_output(bundles, tmp_path_factory):
    folder = tmp_path_factory.mktemp("timed-melodies")
    return generate_melody(bundles["timed"], folder, length=24, rng_seed=3, variations=3)


def quick(bundle, folder: Path, **options):
    """A melody without audio (the sampler and the MIDI only)."""
    options = {"length": LENGTH, "render_audio": False, **options}
    return generate_melody(bundle, folder, **options)


def as_heard(tokens: list[str]) -> list[str]:
    """Timed tokens as a MIDI file can keep them: rests are the gaps between notes.

    A gap before the first note or after the last one is not written, and
    consecutive rests are one gap (capped at a whole note, like the tokenizer).
    """
    from seqgen.music import MAX_STEPS, REST

    kept: list[str] = []
    pending = 0
    for token in tokens:
        head, _, steps = token.rpartition("_")
        if head == REST:
            pending += int(steps)
            continue
        if pending and kept:
            kept.append(f"{REST}_{min(pending, MAX_STEPS)}")
        pending = 0
        kept.append(token)
    return kept


# --- the corpus statistics the quality report uses -------------------------------------------


def test_bundles_hold_the_corpus_statistics(bundles):
    from seqgen.quality import pitch_class_histogram

    for name in ("seed", "timed"):
        bundle, corpus = bundles[name], bundles["corpora"][name]
        assert bundle.stats["pitch_class_histogram"] == pytest.approx(pitch_class_histogram(corpus.tokens))
        assert bundle.vocab.decode(bundle.corpus_ids) == corpus.tokens  # min_count 1 keeps every token
    assert bundles["lyrics"].vocab.decode(bundles["lyrics"].corpus_ids) == bundles["corpora"]["lyrics"].tokens
    assert {"let", "dance", "night", "here"} <= set(bundles["lyrics"].stats["words"])


# --- melodies ---------------------------------------------------------------------------------


def test_the_first_phase_writes_midi_audio_and_params_but_no_score(first_phase):
    import soundfile

    output, snapshot = first_phase
    assert snapshot["files"] == [f"melody-{number}{suffix}" for number in (1, 2) for suffix in (".json", ".mid", ".wav")]
    for melody, params, described in zip(output.melodies, snapshot["params"], snapshot["described"]):
        assert melody.midi.read_bytes()[:4] == b"MThd"
        info = soundfile.info(str(melody.wav))  # what the browser plays: a 16-bit mono WAV at 22.05 kHz
        assert (info.format, info.subtype, info.channels, info.samplerate) == ("WAV", "PCM_16", 1, 22050)
        assert params["tokens"] == melody.tokens and params["renderer"] == melody.renderer
        assert "quality" not in params
        assert described == ({}, [], None, [])
    assert {"prime_ms", "total_ms", "per_token_ms", "audio_ms"} <= set(snapshot["timings"])
    assert "describe_ms" not in snapshot["timings"]


def test_generate_melody_writes_every_file_per_variation(seed_output):
    assert len(seed_output.melodies) == 2
    for number, melody in enumerate(seed_output.melodies, start=1):
        assert len(melody.tokens) == LENGTH
        for path, suffix in ((melody.midi, ".mid"), (melody.wav, ".wav"), (melody.musicxml, ".musicxml"), (melody.params, ".json")):
            assert path is not None and path.name == f"melody-{number}{suffix}"
            assert path.is_file() and path.stat().st_size > 0
        assert "<score-partwise" in melody.musicxml.read_text(encoding="utf-8")
        assert melody.svg and all("<svg" in page for page in melody.svg)
        assert json.loads(melody.params.read_text(encoding="utf-8"))["quality"] == melody.quality
    assert seed_output.melodies[0].tokens != seed_output.melodies[1].tokens
    assert {"prime_ms", "total_ms", "per_token_ms", "audio_ms", "describe_ms"} <= set(seed_output.timings)


def test_the_second_phase_adds_piano_roll_notes(seed_output):
    from seqgen.score import piano_roll_notes

    for melody in seed_output.melodies:
        assert melody.piano_roll == piano_roll_notes(melody.tokens, "seed")
        assert len(melody.piano_roll) >= LENGTH  # one bar per note, one per pitch of a chord


def test_the_second_phase_without_engraving_and_with_the_wrong_bundle(bundles, tmp_path):
    from seqgen.score import piano_roll_notes

    output = describe_melodies(bundles["timed"], quick(bundles["timed"], tmp_path, rng_seed=5), engrave=False)
    melody = output.melodies[0]
    assert melody.quality["tokens"] == LENGTH and melody.piano_roll == piano_roll_notes(melody.tokens, "timed")
    assert melody.musicxml is None and melody.svg == []
    with pytest.raises(SeqgenError, match="describe them with their own model"):
        describe_melodies(bundles["seed"], output)


def test_seed_melody_midi_round_trips_to_the_same_tokens(bundles, seed_output):
    from seqgen.music import tokenize_file

    tokenizer = bundles["seed"].config["tokenizer"]
    assert tokenizer == "seed"
    for melody in seed_output.melodies:
        assert tokenize_file(melody.midi, tokenizer) == melody.tokens


def test_timed_melody_midi_round_trips_to_the_same_tokens(bundles, timed_output):
    from seqgen.music import tokenize_file

    tokenizer = bundles["timed"].config["tokenizer"]
    assert tokenizer == "timed"
    for melody in timed_output.melodies:
        assert all(token.rpartition("_")[2].isdigit() for token in melody.tokens)
        assert tokenize_file(melody.midi, tokenizer) == as_heard(melody.tokens)
    # Where the melody has no leading, trailing or back-to-back rests, the tokens come back exactly.
    assert as_heard(["C4_4", "R_2", "E4.G4_2", "C4.E4.G4_8"]) == ["C4_4", "R_2", "E4.G4_2", "C4.E4.G4_8"]


def test_a_timed_melody_of_rests_only_is_written_without_audio(bundles, tmp_path):
    # A one-token timed melody is sometimes a rest; find a seed that draws one.
    for rng_seed in range(200):
        if quick(bundles["timed"], tmp_path / "probe", length=1, temperature=3.0, rng_seed=rng_seed).melodies[0].tokens[0].startswith("R_"):
            break
    else:
        pytest.fail("no rest drawn in 200 tries")
    output = generate_melody(bundles["timed"], tmp_path / "rests", length=1, temperature=3.0, rng_seed=rng_seed)
    melody = describe_melodies(bundles["timed"], output).melodies[0]
    assert melody.midi.is_file() and melody.params.is_file() and melody.musicxml.is_file()
    assert melody.wav is None and melody.renderer is None
    assert "has no notes (only rests or bar lines)" in melody.renderer_note
    assert json.loads(melody.params.read_text(encoding="utf-8"))["tokens"] == melody.tokens


def test_the_wav_lasts_as_long_as_the_melody_and_is_not_silent(seed_output):
    import soundfile

    for melody in seed_output.melodies:
        data, rate = soundfile.read(str(melody.wav), dtype="float64", always_2d=True)
        seconds = data.shape[0] / rate
        expected = LENGTH * SECONDS_PER_SEED_TOKEN
        # The last note's release and a short tail follow the last note-off.
        assert expected <= seconds <= expected + 3.0, seconds
        assert float(np.sqrt(np.mean(data**2))) > 0.01
        # The music is spread over the whole melody, not one blip at the start.
        half = data.shape[0] // 2
        assert float(np.sqrt(np.mean(data[half:] ** 2))) > 0.005


def test_the_renderer_is_recorded(seed_output):
    from seqgen.audio import find_soundfont, fluidsynth_available

    for melody in seed_output.melodies:
        assert melody.renderer in ("fluidsynth", "builtin")
        assert json.loads(melody.params.read_text(encoding="utf-8"))["renderer"] == melody.renderer
        if fluidsynth_available() and find_soundfont() is not None:
            assert melody.renderer == "fluidsynth", melody.renderer_note
            assert melody.renderer_note is None
        else:
            assert melody.renderer_note


def test_a_melody_past_the_audio_limit_gets_midi_only_and_a_note(bundles, tmp_path, monkeypatch):
    # 16 seed tokens last 8 s at 120 bpm.
    melody = generate_melody(bundles["seed"], tmp_path / "capped", length=LENGTH, rng_seed=2, max_audio_seconds=3).melodies[0]
    assert melody.midi.is_file() and melody.wav is None and melody.renderer is None
    assert "lasts 8 s, longer than the 3 s audio limit" in melody.renderer_note and "MIDI" in melody.renderer_note
    assert not list((tmp_path / "capped").glob("*.wav"))
    assert json.loads(melody.params.read_text(encoding="utf-8"))["renderer_note"] == melody.renderer_note
    monkeypatch.setenv("SEQGEN_MAX_AUDIO_SECONDS", "3")
    from_env = generate_melody(bundles["seed"], tmp_path / "env", length=LENGTH, rng_seed=2).melodies[0]
    assert from_env.wav is None and "SEQGEN_MAX_AUDIO_SECONDS" in from_env.renderer_note
    assert generate_melody(bundles["seed"], tmp_path / "wider", length=LENGTH, rng_seed=2, max_audio_seconds=60).melodies[0].wav
    monkeypatch.setenv("SEQGEN_MAX_AUDIO_SECONDS", "three minutes")
    with pytest.raises(SeqgenError, match="SEQGEN_MAX_AUDIO_SECONDS must be a number of seconds"):
        generate_melody(bundles["seed"], tmp_path / "bad", length=LENGTH)


def test_params_json_records_the_settings(bundles, seed_output):
    for number, melody in enumerate(seed_output.melodies, start=1):
        params = json.loads(melody.params.read_text(encoding="utf-8"))
        assert params["rng_seed"] == 7
        assert params["temperature"] == 1.0
        assert params["bundle"] == bundles["seed"].folder.name
        assert params["tokens"] == melody.tokens
        assert params["variation"] == number
        assert params["length"] == LENGTH
        assert params["tokenizer"] == "seed"
        assert params["preset"] == "debug"
        assert params["tempo_bpm"] == 120.0
        assert params["primer"] == seed_output.primer
        assert params["quality"] == melody.quality


def test_quality_report_is_complete(bundles, seed_output):
    from seqgen.quality import key_consistency, longest_copied_ngram, pitch_range

    bundle = bundles["seed"]
    for melody in seed_output.melodies:
        quality = melody.quality
        assert set(quality) == {"tokens", "repetition_rate", "distinct_ratio", "key_consistency", "pitch_range",
                                "pitch_class_distance", "longest_copied_ngram"}
        assert quality["key_consistency"] == key_consistency(melody.tokens) and quality["pitch_range"] == pitch_range(melody.tokens)
        assert quality["tokens"] == LENGTH
        assert quality["pitch_class_distance"] is not None and 0.0 <= quality["pitch_class_distance"] <= 1.0
        assert quality["longest_copied_ngram"] is not None
        # Every token comes from the corpus, so at least one is "copied".
        assert 1 <= quality["longest_copied_ngram"] <= LENGTH
        assert quality["longest_copied_ngram"] == longest_copied_ngram(bundle.vocab.encode(melody.tokens), bundle.corpus_ids)
        assert 0.0 <= quality["repetition_rate"] <= 1.0 and 0.0 < quality["distinct_ratio"] <= 1.0


def test_json_summary_is_serialisable(seed_output):
    summary = json.loads(dumps(seed_output))
    assert summary["tokens"] == [melody.tokens for melody in seed_output.melodies]
    assert len(summary["files"]) == 2 and set(summary["files"][0]) == {"midi", "wav", "musicxml", "params"}


def test_the_same_rng_seed_gives_the_same_tokens(bundles, tmp_path):
    first = quick(bundles["seed"], tmp_path / "a", rng_seed=11)
    second = quick(bundles["seed"], tmp_path / "b", rng_seed=11)
    other = quick(bundles["seed"], tmp_path / "c", rng_seed=12)
    assert first.primer == second.primer
    assert first.melodies[0].tokens == second.melodies[0].tokens
    assert (other.primer, other.melodies[0].tokens) != (first.primer, first.melodies[0].tokens)
    assert first.melodies[0].wav is None and first.melodies[0].musicxml is None  # as asked



def test_a_drawn_rng_seed_is_recorded_and_makes_the_same_melody_again(bundles, tmp_path):
    drawn = quick(bundles["seed"], tmp_path / "drawn", rng_seed=None)
    seed = drawn.settings["rng_seed"]
    params = json.loads(drawn.melodies[0].params.read_text(encoding="utf-8"))
    assert isinstance(seed, int) and params["rng_seed"] == seed
    again = quick(bundles["seed"], tmp_path / "again", rng_seed=seed)
    assert (again.primer, again.melodies[0].tokens) == (drawn.primer, drawn.melodies[0].tokens)


def test_a_drawn_lyrics_seed_is_recorded_and_makes_the_same_verse_again(bundles):
    drawn = complete_lyrics(bundles["lyrics"], length=60, temperature=1.5)
    assert isinstance(drawn.settings["rng_seed"], int)
    again = complete_lyrics(bundles["lyrics"], length=60, temperature=1.5, rng_seed=drawn.settings["rng_seed"])
    assert again.texts == drawn.texts

def test_a_midi_primer_is_tokenized_with_the_bundle_tokenizer(bundles, tmp_path):
    from seqgen.music import write_midi

    primer_tokens = ["C4", "E4", "G4", "0.4.7", "B-4"]
    primer = write_midi(primer_tokens, tmp_path / "primer.mid", "seed")
    output = quick(bundles["seed"], tmp_path / "out", primer=primer, rng_seed=0)
    assert output.primer == primer_tokens
    assert output.dropped == {}
    assert output.settings["primer"] == primer_tokens
    # A path given as a string works as well.
    assert quick(bundles["seed"], tmp_path / "out2", primer=str(primer), rng_seed=0).melodies[0].tokens == output.melodies[0].tokens


def test_a_primer_that_is_not_a_score_names_the_file(bundles, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("C4 E4 G4\n", encoding="utf-8")
    with pytest.raises(SeqgenError, match="notes.txt"):
        quick(bundles["seed"], tmp_path / "out", primer=notes)
    broken = tmp_path / "broken.mid"
    broken.write_bytes(b"this is not MIDI")
    with pytest.raises(SeqgenError, match="broken.mid"):
        quick(bundles["seed"], tmp_path / "out", primer=broken)
    with pytest.raises(SeqgenError, match="missing.mid not found"):
        quick(bundles["seed"], tmp_path / "out", primer=tmp_path / "missing.mid")


def test_primer_tokens_outside_the_vocabulary_are_dropped_and_reported(bundles, tmp_path):
    output = quick(bundles["seed"], tmp_path, primer=["C4", "A0", "E4", "A0", "5.9"], rng_seed=0)
    assert output.primer == ["C4", "E4"]
    assert output.dropped == {"A0": 2, "5.9": 1}
    assert json.loads(dumps(output))["dropped"] == {"A0": 2, "5.9": 1}
    with pytest.raises(SeqgenError, match="none of its tokens is in the model's vocabulary"):
        quick(bundles["seed"], tmp_path, primer=["A0"])


def test_melody_options_are_checked(bundles, tmp_path):
    with pytest.raises(SeqgenError, match="Temperature must be >= 0"):
        quick(bundles["seed"], tmp_path, temperature=-1.0)
    with pytest.raises(SeqgenError, match="Tempo must be between 20 and 400"):
        quick(bundles["seed"], tmp_path, tempo_bpm=0)
    with pytest.raises(SeqgenError, match="instrument must be 0–127"):
        quick(bundles["seed"], tmp_path, instrument_program=128)
    with pytest.raises(SeqgenError, match="length must be between 1 and"):
        quick(bundles["seed"], tmp_path, length=0)


def test_the_wrong_bundle_kind_is_refused(bundles, tmp_path):
    with pytest.raises(SeqgenError, match="is a lyrics model; pick a music bundle"):
        generate_melody(bundles["lyrics"], tmp_path)
    with pytest.raises(SeqgenError, match="is a music model; pick a lyrics bundle"):
        complete_lyrics(bundles["seed"])
    assert not list(tmp_path.iterdir())  # nothing written


# --- lyrics -----------------------------------------------------------------------------------


def test_lyrics_complete_the_default_seed_line(bundles):
    output = complete_lyrics(bundles["lyrics"], length=120, rng_seed=0)
    assert output.seed == DEFAULT_SEED_LINE
    assert output.dropped == {}
    assert len(output.texts) == 1
    # The texts are the continuation only: exactly `length` new characters, seed excluded.
    assert len(output.texts[0]) == 120
    assert not output.texts[0].startswith(DEFAULT_SEED_LINE)
    assert set(output.texts[0]) <= set(bundles["lyrics"].vocab.tokens)
    quality = output.quality[0]
    assert set(quality) == {"words", "known_word_share", "distinct_2", "repeated_lines", "max_line_repeats", "invented_words"}
    assert quality["known_word_share"] is None or 0.0 <= quality["known_word_share"] <= 1.0
    assert output.settings["rng_seed"] == 0 and output.settings["length"] == 120
    assert json.loads(dumps(output))["text"] == output.texts[0]
    again = complete_lyrics(bundles["lyrics"], length=120, rng_seed=0)
    assert again.texts == output.texts


def test_lines_cuts_the_text(bundles):
    full = complete_lyrics(bundles["lyrics"], length=300, rng_seed=5, temperature=1.0, variations=4)
    for lines in (1, 2, 3):
        cut = complete_lyrics(bundles["lyrics"], length=300, rng_seed=5, temperature=1.0, variations=4, lines=lines)
        for text, whole in zip(cut.texts, full.texts):
            assert len(text.split("\n")) <= lines
            assert whole.startswith(text)
            if whole.count("\n") >= lines:
                assert text == "\n".join(whole.split("\n")[:lines])
    assert any(whole.count("\n") >= 3 for whole in full.texts), "the test needs line breaks to cut at"


def test_stop_at_verse_end_cuts_at_a_blank_line(bundles):
    options = dict(length=400, rng_seed=1, temperature=1.0, variations=8)
    full = complete_lyrics(bundles["lyrics"], **options)
    cut = complete_lyrics(bundles["lyrics"], stop_at_verse_end=True, **options)
    for text, whole in zip(cut.texts, full.texts):
        assert "\n\n" not in text
        assert text == (whole[:whole.index("\n\n")] if "\n\n" in whole else whole)
    assert any("\n\n" in whole for whole in full.texts), "the test needs a blank line to stop at"


def test_cut_text_rules():
    text = "one\ntwo\n\nthree\nfour"
    assert cut_text(text, None, False) == text
    assert cut_text(text, 1, False) == "one"
    assert cut_text(text, 2, False) == "one\ntwo"
    assert cut_text(text, 10, False) == text
    assert cut_text(text, None, True) == "one\ntwo"
    assert cut_text(text, 1, True) == "one"
    assert cut_text("no blank line", None, True) == "no blank line"


def test_unknown_seed_characters_are_dropped_and_reported(bundles):
    output = complete_lyrics(bundles["lyrics"], "Let dance \u20ac for \U0001F642 the rest", length=20, rng_seed=0)
    assert output.dropped == {"\u20ac": 1, "\U0001F642": 1}
    assert output.seed == "let dance  for  the rest"
    assert len(output.texts[0]) == 20
    assert json.loads(dumps(output))["dropped"] == {"\u20ac": 1, "\U0001F642": 1}


@pytest.mark.parametrize(
    "seed, message",
    [
        ("", "The seed line is empty"),
        ("   \n\t", "The seed line is empty"),
        ("\U0001F642\u20ac", "No character of the seed line is in the model's vocabulary"),
    ],
)
def test_an_empty_seed_is_refused(bundles, seed, message):
    with pytest.raises(SeqgenError, match=message):
        complete_lyrics(bundles["lyrics"], seed, length=10)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"temperature": -0.5}, "Temperature must be >= 0"),
        ({"temperature": math.nan}, "Temperature must be >= 0"),
        ({"temperature": math.inf}, "Temperature must be >= 0"),
        ({"top_p": 0.0}, r"top_p must be in \(0, 1\]"),
        ({"top_p": 1.5}, r"top_p must be in \(0, 1\]"),
        ({"top_p": math.nan}, r"top_p must be in \(0, 1\]"),
        ({"length": 0}, "length must be between 1 and"),
        ({"length": 100_000}, "length must be between 1 and"),
        ({"lines": 0}, "Lines must be at least 1"),
        ({"variations": 0}, "variations must be between 1 and"),
    ],
)
def test_lyrics_options_are_checked(bundles, options, message):
    with pytest.raises(SeqgenError, match=message):
        complete_lyrics(bundles["lyrics"], **options)


def test_the_length_cap_is_the_samplers(bundles):
    from seqgen.sample import MAX_LENGTH

    with pytest.raises(SeqgenError, match=f"between 1 and {MAX_LENGTH}"):
        complete_lyrics(bundles["lyrics"], length=MAX_LENGTH + 1)
    assert len(complete_lyrics(bundles["lyrics"], length=1, rng_seed=0).texts[0]) == 1

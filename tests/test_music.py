"""Tests for seqgen.music: the seed and timed tokenizers and token -> MIDI."""

import numpy as np
import pytest
from conftest import (
    MULTITRACK_TIMED,
    build_part,
    build_score,
    music21_dir,
    read_midi_timing,
    write_multitrack_midi,
    write_score_midi,
)

from seqgen import music
from seqgen.errors import SeqgenError


def reference_seed_tokens(path):
    """The reference project's extraction, written out as it read: parts by instrument, recurse()."""
    from music21 import chord, converter, instrument, note

    score = converter.parse(str(path))
    tokens = []
    for part in instrument.partitionByInstrument(score).parts:
        for element in part.recurse():
            if isinstance(element, note.Note):
                tokens.append(str(element.pitch))
            elif isinstance(element, chord.Chord):
                tokens.append(".".join(str(n) for n in element.normalOrder))
    return tokens


@pytest.fixture(scope="module")
def bach_midi(tmp_path_factory):
    """A Bach chorale (bwv1.6, four voices) exported to MIDI by music21."""
    from music21 import converter

    path = tmp_path_factory.mktemp("bach") / "bwv1.6.mid"
    score = converter.parse(str(music21_dir() / "corpus" / "bach" / "bwv1.6.mxl"))
    return write_score_midi(score, path)


def two_instrument_score():
    from music21 import instrument

    violin = build_part([("C4", 0, 1), ("D4", 1, 1)], instrument.Violin())
    cello = build_part([("C3", 0, 1), ("D3", 1, 1)], instrument.Violoncello())
    return build_score(violin, cello)


# --- seed tokenizer ------------------------------------------------------------------


def test_seed_tokens_part_after_part_not_time_sorted(tmp_path):
    score = two_instrument_score()
    assert music.tokenize_score(score, "seed") == ["C4", "D4", "C3", "D3"]
    path = write_score_midi(score, tmp_path / "duo.mid")
    # The time-sorted flat score would interleave the parts: C3 C4 D3 D4.
    assert music.tokenize_file(path, "seed") == ["C4", "D4", "C3", "D3"]
    assert music.tokenize_file(path, "seed") == reference_seed_tokens(path)


def test_seed_tokens_same_instrument_parts_merge_as_partition_by_instrument_does(tmp_path):
    from music21 import instrument

    score = build_score(
        build_part([("C4", 0, 1), ("D4", 1, 1)], instrument.Piano()),
        build_part([("C3", 0, 1), ("D3", 1, 1)], instrument.Piano()),
    )
    path = write_score_midi(score, tmp_path / "piano-hands.mid")
    tokens = music.tokenize_file(path, "seed")
    assert sorted(tokens) == ["C3", "C4", "D3", "D4"]
    assert tokens == reference_seed_tokens(path)


@pytest.mark.parametrize("name", ["test02.mid", "test05.mid", "test09.mid", "test14.mid", "test17.mid"])
def test_seed_tokens_match_the_reference_extraction(name):
    path = music21_dir() / "midi" / "testPrimitive" / name
    assert music.tokenize_file(path, "seed") == reference_seed_tokens(path)


def test_seed_tokens_of_a_bach_chorale_match_the_reference(bach_midi):
    tokens = music.tokenize_file(bach_midi, "seed")
    assert len(tokens) > 100
    assert tokens == reference_seed_tokens(bach_midi)


def test_seed_chord_tokens_are_normal_order():
    score = build_part([(["A4"], 0, 1), (["C4", "E4", "G4"], 1, 1), (["G3", "B-3", "E-4"], 2, 1), (["E4", "C5", "G5"], 3, 1), ("B-4", 4, 1)])
    assert music.tokenize_score(score, "seed") == ["9", "0.4.7", "3.7.10", "0.4.7", "B-4"]


def test_seed_opus_with_several_tunes(tmp_path):
    abc = tmp_path / "two-tunes.abc"
    abc.write_text("X:1\nT:One\nM:4/4\nL:1/4\nK:C\nCDEF|\n\nX:2\nT:Two\nM:4/4\nL:1/4\nK:C\nGABc|\n", encoding="utf-8")
    assert music.tokenize_file(abc, "seed") == ["C4", "D4", "E4", "F4", "G4", "A4", "B4", "C5"]


def test_seed_round_trip_through_midi(bach_midi, tmp_path):
    tokens = music.tokenize_file(bach_midi, "seed")
    written = music.write_midi(tokens, tmp_path / "again.mid", "seed")
    assert music.tokenize_file(written, "seed") == tokens


def test_seed_round_trip_keeps_chords_and_single_pitch_chords(tmp_path):
    tokens = ["C4", "9", "0.4.7", "B-3", "11.3.5", "F#5", "2.6", "C#2"]
    path = music.write_midi(tokens, tmp_path / "chords.mid", "seed")
    assert music.tokenize_file(path, "seed") == tokens


def test_seed_stream_one_quarter_apart_100_tokens_last_50_seconds(tmp_path):
    tokens = ["C4", "D4", "9", "0.4.7", "B-4"] * 20
    path = music.write_midi(tokens, tmp_path / "seed.mid", "seed", tempo_bpm=120)
    timing = read_midi_timing(path)
    assert timing["onsets"] == [float(beat) for beat in range(100)]  # offsets 0, 1, 2, ...
    assert timing["quarters"] == pytest.approx(100)
    assert timing["seconds"] == pytest.approx(50.0)
    slower = read_midi_timing(music.write_midi(tokens, tmp_path / "slow.mid", "seed", tempo_bpm=60))
    assert slower["seconds"] == pytest.approx(100.0)


def test_tokens_to_stream_offsets_and_instrument():
    from music21 import instrument

    part = music.tokens_to_stream(["C4", "0.4.7", "E4"], "seed", instrument_program=40)
    assert [float(element.offset) for element in part.notes] == [0.0, 1.0, 2.0]
    assert isinstance(part.getInstrument(), instrument.Violin)


# --- timed tokenizer ------------------------------------------------------------------


def test_timed_keeps_rests_register_and_caps_durations():
    part = build_part([
        ("C4", 0, 1),
        (None, 1, 2),
        (["C4", "E4", "G4"], 3, 1),
        ("E4", 4, 6),  # 24 sixteenths, capped at 16
        ("F4", 10, 0.25),
        (None, 10.25, 5.75),  # a 23-sixteenth gap, capped
        ("G5", 16, 0.5),
    ])
    assert music.tokenize_score(part, "timed") == ["C4_4", "R_8", "C4.E4.G4_4", "E4_16", "F4_1", "R_16", "G5_2"]


def test_timed_quantizes_to_sixteenths():
    part = build_part([
        ("C4", 0, 0.3),  # 1.2 sixteenths -> 1
        ("E4", 0.05, 1.0),  # starts on grid step 0 too: joins C4 as one chord
        ("G4", 1.0, 0.26),  # -> 1 sixteenth, then a rest to the next onset
        ("A4", 2.0, 0.01),  # shorter than a sixteenth -> 1
        ("B4", 2.5, 1),
    ])
    assert music.tokenize_score(part, "timed") == ["C4.E4_4", "G4_1", "R_3", "A4_1", "R_1", "B4_4"]


def test_timed_spells_as_midi_and_merges_ties():
    from music21 import note, tie

    part = build_part([("D-4", 0, 1), ("C#4", 1, 1), ("A#3", 2, 1)])
    first, second = note.Note("E4", quarterLength=2), note.Note("E4", quarterLength=2)
    first.tie, second.tie = tie.Tie("start"), tie.Tie("stop")
    part.insert(3, first)
    part.insert(5, second)
    assert music.tokenize_score(part, "timed") == ["C#4_4", "C#4_4", "B-3_4", "E4_16"]


def test_timed_skips_drums_and_ignores_tempo_changes(tmp_path):
    path = write_multitrack_midi(tmp_path / "multi.mid")
    assert music.tokenize_file(path, "timed") == MULTITRACK_TIMED
    seed = music.tokenize_file(path, "seed")
    assert seed[:5] == ["C4", "E4", "G4", "C5", "B4"]
    assert set(seed[5:]) == {"7.0"}  # the chord, split at the barline into tied halves
    assert not any(token.startswith(("C2", "F#2")) for token in seed)  # bass drum (36) / hi-hat (42) are not pitches


def test_timed_round_trip_keeps_tokens_and_onsets(tmp_path):
    events = [("C4", 0, 1), ("E4", 1, 0.5), ("G4", 1.75, 0.25), (["C4", "E4", "G4"], 2, 1), (None, 3, 1),
              ("D5", 4, 0.75), ("B3", 5.25, 2), (["F3", "A3", "C4"], 8, 4)]
    path = write_score_midi(build_score(build_part(events)), tmp_path / "grid.mid")
    tokens = music.tokenize_file(path, "timed")
    assert tokens == ["C4_4", "E4_2", "R_1", "G4_1", "C4.E4.G4_4", "R_4", "D5_3", "R_2", "B3_8", "R_3", "F3.A3.C4_16"]
    again = music.write_midi(tokens, tmp_path / "again.mid", "timed")
    assert music.tokenize_file(again, "timed") == tokens
    expected_onsets = sorted({float(offset) for pitches, offset, _ in events if pitches is not None})
    assert read_midi_timing(again)["onsets"] == expected_onsets


def test_timed_round_trip_bach(bach_midi, tmp_path):
    tokens = music.tokenize_file(bach_midi, "timed")
    assert len(tokens) > 50
    again = music.write_midi(tokens, tmp_path / "again.mid", "timed")
    assert music.tokenize_file(again, "timed") == tokens


@pytest.mark.parametrize("name", ["test02.mid", "test07.mid", "test14.mid"])
def test_round_trip_music21_test_files(name, tmp_path):
    path = music21_dir() / "midi" / "testPrimitive" / name
    for tokenizer in music.TOKENIZERS:
        tokens = music.tokenize_file(path, tokenizer)
        again = music.write_midi(tokens, tmp_path / f"{tokenizer}.mid", tokenizer)
        assert music.tokenize_file(again, tokenizer) == tokens, tokenizer


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["", "H4", "X", "C4_4", "R", "C4.E4", "4x"])
def test_bad_seed_tokens(token, tmp_path):
    with pytest.raises(SeqgenError, match="is not a seed"):
        music.write_midi(["C4", token], tmp_path / "bad.mid", "seed")


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("C4", "is not a timed token"),
        ("", "is not a timed token"),
        ("_4", "is not a timed token"),
        ("C4_x", "is not a timed token"),
        ("C4_-1", "is not a timed token"),
        ("C4_0", "is not a timed token"),
        ("R_0", "is not a timed token"),
        ("H4_4", "holds an invalid pitch name"),
        ("C4.H4_2", "holds an invalid pitch name"),
    ],
)
def test_bad_timed_tokens(token, message, tmp_path):
    with pytest.raises(SeqgenError, match=message) as error:
        music.write_midi(["C4_4", token], tmp_path / "bad.mid", "timed")
    assert repr(token) in str(error.value)


def test_unknown_tokenizer():
    with pytest.raises(SeqgenError, match=r"Unknown tokenizer 'words'; choose one of: seed, timed"):
        music.check_tokenizer("words")
    with pytest.raises(SeqgenError, match="Unknown tokenizer"):
        music.tokens_to_stream(["C4"], "words")


def test_empty_and_corrupt_files_name_the_file(tmp_path):
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    with pytest.raises(SeqgenError, match=r"empty.mid: the file is empty \(0 bytes\)"):
        music.tokenize_file(empty, "seed")
    corrupt = tmp_path / "corrupt.mid"
    corrupt.write_bytes(b"MThd\x00\x00\x00\x06garbage" * 3)
    with pytest.raises(SeqgenError, match="corrupt.mid: music21 could not read it as a score"):
        music.tokenize_file(corrupt, "timed")


def test_tokens_are_displayed_with_flats_and_sharps():
    shown = [music.display_token(token) for token in ("B-4", "C#4.E4_2", "B-2.E-3.F4_4", "R_2", "4.7.11", "E--3", "F##5")]
    assert shown == ["B♭4", "C♯4.E4_2", "B♭2.E♭3.F4_4", "R_2", "4.7.11", "E♭♭3", "F♯♯5"]


def test_how_long_tokens_last():
    assert music.duration_quarters(["C4", "4.7.11", "D4"], "seed") == 3.0
    assert music.duration_quarters(["C4_4", "R_2", "E4.G4_8"], "timed") == 3.5
    with pytest.raises(SeqgenError, match="not a timed token"):
        music.duration_quarters(["C4"], "timed")


@pytest.mark.parametrize("tokenizer, tokens", [("seed", ["C4", "E-4", "4.7", "G#5"]), ("timed", ["C4_2", "R_1", "E4.G4_4", "B-3_1"])])
def test_midi_notes_are_the_midi_files_notes(tokenizer, tokens, tmp_path):
    """What the renderer plays without a file is what the written MIDI file holds."""
    from seqgen.music import midi_notes, write_midi
    from seqgen.synth import read_midi_notes

    path = write_midi(tokens, tmp_path / "m.mid", tokenizer, tempo_bpm=96, instrument_program=40)
    expected = sorted(read_midi_notes(path), key=lambda note: (note.start, note.pitch))
    got = sorted(midi_notes(tokens, tokenizer, tempo_bpm=96, instrument_program=40), key=lambda note: (note.start, note.pitch))
    assert [(n.pitch, n.velocity, n.channel, n.program) for n in got] == [(n.pitch, n.velocity, n.channel, n.program) for n in expected]
    np.testing.assert_allclose([(n.start, n.end) for n in got], [(n.start, n.end) for n in expected], atol=1e-9)

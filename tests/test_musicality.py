"""Tests for seqgen.musicality: polyphony, pitch-class entropy, groove, empty beats and endings, from notes."""

from __future__ import annotations

import math

import pytest
import symusic

from seqgen.errors import SeqgenError
from seqgen.music import write_midi
from seqgen.musicality import (LABELS, bar_length, empty_beat_rate, ends_on_tonic, groove_consistency, musicality, musicality_of,
                               notes_from_midi, notes_of, pitch_class_entropy, polyphony, table_lines)

C_MAJOR = (0, 2, 4, 5, 7, 9, 11)


def quarters(*pitches) -> list[tuple[float, float, int]]:
    """One quarter note per pitch, one after another from time 0."""
    return [(float(index), 1.0, pitch) for index, pitch in enumerate(pitches)]


def events_bar(*onsets, signature: str = "4/4") -> list[str]:
    """One bar of events tokens; each onset is ``(position in 32nds, [(pitch, duration token), ...])``."""
    tokens = ["Bar_None", f"TimeSig_{signature}"]
    for position, notes in onsets:
        tokens.append(f"Position_{position}")
        for pitch, duration in notes:
            tokens += [f"Pitch_{pitch}", duration]
    return tokens


QUARTER, HALF = "Duration_1.0.8", "Duration_2.0.8"


# --- polyphony --------------------------------------------------------------------------------


def test_a_four_voice_chord_progression_sounds_four_notes_at_each_onset():
    progression = [(0, 60), (0, 64), (0, 67), (0, 48), (1, 60), (1, 65), (1, 69), (1, 53), (2, 59), (2, 62), (2, 67), (2, 43)]
    assert polyphony([(start, 1.0, pitch) for start, pitch in progression]) == 4.0


def test_polyphony_counts_held_notes_at_each_onset_not_time_steps():
    # A bass held for two bars under a melody of quarter notes: two notes sound at every onset.
    assert polyphony([(0.0, 8.0, 36), *quarters(60, 62, 64, 65, 67, 69, 71, 72)]) == 2.0
    # A three-note chord held four beats, then one note: (3 + 1) / 2 at the onsets; MusPy's time steps give 2.6.
    assert polyphony([(0.0, 4.0, 60), (0.0, 4.0, 64), (0.0, 4.0, 67), (4.0, 1.0, 72)]) == 2.0


def test_polyphony_counts_every_voice_of_a_unison_and_none_without_notes():
    assert polyphony([(0.0, 1.0, 60), (0.0, 1.0, 60), (0.0, 1.0, 67)]) == 3.0
    assert polyphony([]) is None


# --- pitch-class entropy ----------------------------------------------------------------------


def test_pitch_class_entropy_of_one_two_and_twelve_pitch_classes():
    assert pitch_class_entropy(quarters(48, 60, 72, 84)) == 0.0  # octaves share one pitch class
    assert pitch_class_entropy(quarters(*range(60, 72))) == pytest.approx(math.log2(12))
    # Each note counts once, however long: a whole note of C and a 32nd of D weigh the same.
    assert pitch_class_entropy([(0.0, 4.0, 60), (4.0, 0.125, 62)]) == pytest.approx(1.0)
    assert pitch_class_entropy(quarters(60, 60, 60, 62)) == pytest.approx(-(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)))
    assert pitch_class_entropy([]) is None


# --- groove consistency -----------------------------------------------------------------------


def test_two_identical_bars_are_perfectly_consistent():
    bar = [(0.0, 1.5, 60), (1.5, 0.5, 62), (2.0, 2.0, 64)]
    assert groove_consistency(bar + [(start + 4, length, pitch) for start, length, pitch in bar]) == 1.0


def test_groove_consistency_is_one_minus_the_share_of_grid_steps_that_differ():
    # Bar 1: onsets on every beat; bar 2: on beat 1 only.  3 of the 32 steps of a bar differ.
    assert groove_consistency([*quarters(60, 62, 64, 65), (4.0, 4.0, 67)]) == pytest.approx(1 - 3 / 32)
    # Six quarter notes: in 3/4 two identical bars, in 4/4 a bar of four onsets then one of two.
    six = quarters(60, 62, 64, 65, 67, 69)
    assert groove_consistency(six, bar_quarters=3.0) == 1.0
    assert groove_consistency(six, bar_quarters=4.0) == pytest.approx(1 - 2 / 32)


def test_groove_consistency_needs_two_bars_and_a_positive_bar():
    assert groove_consistency(quarters(60, 62, 64, 65)) is None and groove_consistency([]) is None
    with pytest.raises(SeqgenError, match="more than 0 quarter notes"):
        groove_consistency(quarters(60, 62), bar_quarters=0)


# --- empty beats ------------------------------------------------------------------------------


def test_empty_beat_rate_counts_beats_where_nothing_sounds():
    assert empty_beat_rate([(0.0, 1.0, 60), (3.0, 1.0, 60)]) == 0.5  # beats 2 and 3 of four are silent
    assert empty_beat_rate([(0.0, 4.0, 60), (4.0, 1.0, 62)]) == 0.0  # a held note fills its beats
    assert empty_beat_rate([(0.0, 1.0, 60), (2.0, 1.0, 62)]) == pytest.approx(1 / 3)  # ending on a beat line
    assert empty_beat_rate([(0.0, 0.5, 60), (1.5, 0.5, 62)]) == 0.0  # half a beat sounds: the beat is not empty
    assert empty_beat_rate([(2.0, 1.0, 60), (3.0, 1.0, 62)]) == 0.0  # counted from the first note's beat
    assert empty_beat_rate([]) is None


# --- endings ----------------------------------------------------------------------------------


def test_a_c_major_scale_ending_on_c_ends_on_the_tonic():
    assert ends_on_tonic(quarters(60, 62, 64, 65, 67, 69, 71, 72)) is True
    assert ends_on_tonic(quarters(60, 62, 64, 65, 67, 69, 71, 72, 67)) is False  # a half close on the dominant


def test_the_lowest_note_of_the_last_onset_decides():
    scale = quarters(60, 62, 64, 65, 67, 69, 71, 72)  # C major before the cadence sets the key
    cadence = [(8.0, 2.0, pitch) for pitch in (43, 59, 62, 67)]  # V: G2 B3 D4 G4
    tonic_in_the_bass = [(10.0, 4.0, pitch) for pitch in (36, 64, 67, 72)]  # I: C2 E4 G4 C5
    first_inversion = [(10.0, 4.0, pitch) for pitch in (40, 60, 67, 72)]  # I6: E2 C4 G4 C5
    assert ends_on_tonic([*scale, *cadence, *tonic_in_the_bass]) is True
    assert ends_on_tonic([*scale, *cadence, *first_inversion]) is False


def test_a_minor_piece_ends_on_its_own_tonic_not_its_relative_major():
    # A natural minor: the same pitch classes as C major, but A and E carry the time.
    a_minor = [(0.0, 4.0, 57), (4.0, 1.0, 59), (5.0, 1.0, 60), (6.0, 1.0, 62), (7.0, 4.0, 64), (11.0, 1.0, 65),
               (12.0, 1.0, 67), (13.0, 4.0, 45), (13.0, 4.0, 69)]
    assert ends_on_tonic(a_minor) is True
    assert ends_on_tonic([]) is None
    assert ends_on_tonic(quarters(*range(60, 72))) is None  # all twelve equally long: no key


# --- all measures at once ---------------------------------------------------------------------


def test_musicality_reports_every_measure_and_none_where_undefined():
    assert musicality([]) == dict.fromkeys(LABELS)
    measured = musicality([(start, 1.0, pitch) for start in range(8) for pitch in (48, 64, 67, 72)])
    assert list(measured) == list(LABELS)
    assert measured == {"polyphony": 4.0, "pitch_class_entropy": pytest.approx(1.5), "groove_consistency": 1.0,
                        "empty_beat_rate": 0.0, "ends_on_tonic": True}


# --- notes from tokens and MIDI files -----------------------------------------------------------

SEED = ["C4", "E4", "G4", "0.4.7", "F4", "A4", "B3", "C4"]
TIMED = ["C4_4", "E4_4", "G4_4", "C4.E4.G4_4", "F4_4", "A4_4", "B3_4", "C4_4"]
EVENTS = [*events_bar((0, [(60, QUARTER)]), (8, [(64, QUARTER)]), (16, [(67, QUARTER)]),
                      (24, [(60, QUARTER), (64, QUARTER), (67, QUARTER)])),
          *events_bar((0, [(65, QUARTER)]), (8, [(69, QUARTER)]), (16, [(59, QUARTER)]), (24, [(60, QUARTER)]))]


def test_notes_of_each_tokenizer():
    expected = [[0, 1, 60], [1, 1, 64], [2, 1, 67], [3, 1, 60], [3, 1, 64], [3, 1, 67], [4, 1, 65], [5, 1, 69], [6, 1, 59], [7, 1, 60]]
    for tokens, tokenizer in ((SEED, "seed"), (TIMED, "timed"), (EVENTS, "events")):
        assert notes_of(tokens, tokenizer).tolist() == expected, tokenizer
    assert notes_of(["R_4", "C4_2"], "timed").tolist() == [[1.0, 0.5, 60.0]]  # rests only move the clock
    assert notes_of([], "seed").shape == (0, 3)


def test_the_same_notes_in_every_tokenizer_measure_the_same():
    measured = musicality_of(SEED, "seed")
    assert musicality_of(TIMED, "timed") == measured and musicality_of(EVENTS, "events") == measured
    assert measured["polyphony"] == pytest.approx(10 / 8) and measured["ends_on_tonic"] is True


def test_the_bar_of_events_tokens_is_their_first_time_signature():
    waltz = [*events_bar((0, [(60, QUARTER)]), (8, [(64, QUARTER)]), (16, [(67, QUARTER)]), signature="3/4"),
             *events_bar((0, [(60, QUARTER)]), (8, [(64, QUARTER)]), (16, [(67, QUARTER)]), signature="3/4")]
    assert bar_length(waltz, "events") == 3.0 and bar_length(EVENTS, "events") == 4.0 and bar_length(SEED, "seed") == 4.0
    assert musicality_of(waltz, "events")["groove_consistency"] == 1.0
    assert groove_consistency(notes_of(waltz, "events"), bar_quarters=4.0) < 1.0


@pytest.mark.parametrize("tokens, tokenizer", [(EVENTS, "events"), (SEED, "seed"), (TIMED, "timed")])
def test_notes_read_back_from_a_written_midi_file(tokens, tokenizer, tmp_path):
    path = write_midi(tokens, tmp_path / "melody.mid", tokenizer)
    assert notes_from_midi(path).tolist() == notes_of(tokens, tokenizer).tolist()
    assert musicality(notes_from_midi(path)) == musicality_of(tokens, tokenizer)


def test_notes_from_midi_skip_drums_and_read_every_other_track(tmp_path):
    score = symusic.Score(960)
    for name, is_drum, notes in (("piano", False, [(0, 960, 60)]), ("bass", False, [(480, 1920, 36)]),
                                 ("drums", True, [(0, 240, 42)])):
        track = symusic.Track(name=name, program=0, is_drum=is_drum)
        for time, duration, pitch in notes:
            track.notes.append(symusic.Note(time, duration, pitch, 90))
        score.tracks.append(track)
    score.dump_midi(str(tmp_path / "band.mid"))
    assert notes_from_midi(tmp_path / "band.mid").tolist() == [[0.0, 1.0, 60.0], [0.5, 2.0, 36.0]]


def test_notes_before_time_zero_or_of_negative_length_are_refused():
    with pytest.raises(SeqgenError, match=r"start at 0 quarter notes or later and last 0 or more: got \[-1.0, 1.0, 60.0\]"):
        polyphony([(0.0, 1.0, 62), (-1.0, 1.0, 60)])
    with pytest.raises(SeqgenError, match="last 0 or more"):
        musicality([(0.0, -1.0, 60)])


def test_an_unreadable_midi_file_is_named(tmp_path):
    (tmp_path / "notes.mid").write_text("not a MIDI file")
    with pytest.raises(SeqgenError, match="notes.mid: not a readable MIDI file"):
        notes_from_midi(tmp_path / "notes.mid")


# --- in seqgen evaluate -----------------------------------------------------------------------


def test_musicality_table_means_each_source_and_the_gap_closed():
    from seqgen.evaluate import musicality_table

    chords, single_notes = ["0.4.7", "5.9.0", "7.11.2", "0.4.7"], ["C4", "F4", "G4", "C4"]
    table = musicality_table("seed", {"generated": [chords, single_notes], "corpus": [chords], "unigram": [single_notes]})
    assert list(table) == [name for name in LABELS if name != "ends_on_tonic"]  # endings are measured on whole pieces
    assert table["polyphony"] == {"generated": 2.0, "corpus": 3.0, "unigram": 1.0, "gap_closed": 0.5}
    assert table["groove_consistency"]["gap_closed"] is None  # under two bars: undefined everywhere


def test_table_lines_show_missing_values_and_the_gap_as_a_share():
    row = {"generated": 2.0, "corpus": 3.0, "unigram": 1.0, "gap_closed": 0.5}
    lines = table_lines({"polyphony": row, "groove_consistency": dict.fromkeys(row)})
    assert "| notes sounding at each onset | 2.000 | 3.000 | 1.000 | 50% |" in lines
    assert "| groove consistency | n/a | n/a | n/a | n/a |" in lines

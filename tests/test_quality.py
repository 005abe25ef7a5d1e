"""Tests for seqgen.quality: the melody and lyrics quality reports and their pieces."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seqgen.quality import (
    best_key,
    distinct_ratio,
    durations,
    histogram_distance,
    key_consistency,
    longest_copied_ngram,
    lyrics_report,
    melodic_intervals,
    melody_report,
    overlapping_area,
    pitch_class_histogram,
    pitch_range,
    repetition_rate,
    scale_fit,
    token_pitch_classes,
    token_pitches,
)


def one_hot(*pitch_classes: int) -> list[float]:
    """The normalised histogram of equally weighted pitch classes."""
    counts = np.zeros(12)
    for pitch_class in pitch_classes:
        counts[pitch_class] += 1
    return (counts / counts.sum()).tolist()


# --- pitch classes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token, expected",
    [
        ("B-4", (10,)),  # seed note, MIDI spelling
        ("C#4", (1,)),
        ("D-4", (1,)),  # enharmonic twin of C#4
        ("C4", (0,)),
        ("5.8.10", (5, 8, 10)),  # seed chord: normal order of pitch classes
        ("11.2.5", (11, 2, 5)),
        ("7", (7,)),  # a one-pitch "chord"
        ("C4.E4.G4_4", (0, 4, 7)),  # timed chord
        ("B-4_16", (10,)),  # timed note
        ("R_2", ()),  # timed rest
        ("R", ()),
        ("not-a-pitch", ()),  # unreadable tokens sound nothing rather than crash
    ],
)
def test_token_pitch_classes(token, expected):
    assert token_pitch_classes(token) == expected


def test_pitch_class_histogram_of_seed_notes():
    histogram = pitch_class_histogram(["B-4"])
    assert histogram == one_hot(10)
    assert pitch_class_histogram(["C4", "C5", "G4", "B-3"]) == pytest.approx(one_hot(0, 0, 7, 10))


def test_pitch_class_histogram_of_seed_chords():
    assert pitch_class_histogram(["5.8.10"]) == pytest.approx(one_hot(5, 8, 10))
    # Every sounding pitch class counts once per token: a chord weighs as much as its notes.
    assert pitch_class_histogram(["0.4.7", "C4"]) == pytest.approx(one_hot(0, 4, 7, 0))


def test_pitch_class_histogram_of_timed_tokens():
    assert pitch_class_histogram(["C4.E4.G4_4", "R_2"]) == pytest.approx(one_hot(0, 4, 7))
    assert pitch_class_histogram(["C4_4", "R_2", "B-4_2", "R_16"]) == pytest.approx(one_hot(0, 10))


def test_pitch_class_histogram_without_pitches_is_all_zero():
    assert pitch_class_histogram(["R_2"]) == [0.0] * 12
    assert pitch_class_histogram(["R_2", "R_16"]) == [0.0] * 12
    assert pitch_class_histogram([]) == [0.0] * 12


def test_pitch_class_histogram_is_normalised():
    histogram = pitch_class_histogram(["C4", "E4.G4_2", "5.8.10", "R_2", "F#4", "B-4_4"])
    assert len(histogram) == 12
    assert math.isclose(sum(histogram), 1.0)
    assert all(value >= 0 for value in histogram)


# --- histogram distance -----------------------------------------------------------------------


def test_histogram_distance_is_zero_for_the_same_histogram():
    histogram = pitch_class_histogram(["C4", "E4", "G4", "5.8.10"])
    assert histogram_distance(histogram, histogram) == 0.0
    assert histogram_distance(pitch_class_histogram(["C4", "E4"]), pitch_class_histogram(["E5", "C3"])) == 0.0


def test_histogram_distance_is_one_for_disjoint_histograms():
    assert histogram_distance(one_hot(0), one_hot(2)) == pytest.approx(1.0)
    assert histogram_distance(pitch_class_histogram(["C4", "E4"]), pitch_class_histogram(["5.8.10"])) == pytest.approx(1.0)


def test_histogram_distance_in_between():
    assert histogram_distance(one_hot(0, 4), one_hot(0)) == pytest.approx(0.5)
    assert histogram_distance(one_hot(0, 4), one_hot(4, 7)) == pytest.approx(0.5)
    first, second = one_hot(0, 4, 7), one_hot(0, 2)
    assert histogram_distance(first, second) == pytest.approx(histogram_distance(second, first))
    assert 0 < histogram_distance(first, second) < 1


# --- repetition and diversity -----------------------------------------------------------------


def test_repetition_rate():
    assert repetition_rate([]) == 0.0
    assert repetition_rate(["C4"]) == 0.0
    assert repetition_rate(["C4", "C4"]) == 1.0
    assert repetition_rate(["C4", "D4", "E4"]) == 0.0
    assert repetition_rate(["C4", "C4", "D4", "D4"]) == pytest.approx(2 / 3)
    # Only consecutive repeats count.
    assert repetition_rate(["C4", "D4", "C4", "D4"]) == 0.0


def test_distinct_ratio():
    assert distinct_ratio([]) == 0.0
    assert distinct_ratio(["C4"]) == 1.0
    assert distinct_ratio(["C4", "C4", "D4", "E4"]) == 0.75
    assert distinct_ratio(["C4"] * 10) == 0.1


# --- longest copied n-gram --------------------------------------------------------------------


def brute_force_longest_copy(generated, corpus) -> int:
    """Longest common substring length, the obvious quadratic-times-length way."""
    best = 0
    for i in range(len(generated)):
        for j in range(len(corpus)):
            length = 0
            while i + length < len(generated) and j + length < len(corpus) and generated[i + length] == corpus[j + length]:
                length += 1
            best = max(best, length)
    return best


@pytest.mark.parametrize("seed", range(60))
def test_longest_copied_ngram_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    alphabet = int(rng.integers(1, 6))  # small alphabets give long accidental matches
    corpus = rng.integers(0, alphabet, size=int(rng.integers(1, 120)))
    generated = rng.integers(0, alphabet + 1, size=int(rng.integers(1, 40)))  # may hold an id the corpus lacks
    if seed % 3 == 0:  # plant a verbatim copy of a corpus slice
        start = int(rng.integers(0, len(corpus)))
        piece = corpus[start:start + int(rng.integers(1, 30))]
        at = int(rng.integers(0, len(generated) + 1))
        generated = np.concatenate([generated[:at], piece, generated[at:]])
    expected = brute_force_longest_copy(generated.tolist(), corpus.tolist())
    assert longest_copied_ngram(generated, corpus) == expected
    assert longest_copied_ngram(generated.tolist(), corpus) == expected  # a list of ids works too


def test_longest_copied_ngram_with_large_ids_and_a_large_vocabulary():
    rng = np.random.default_rng(1)
    for _ in range(20):
        corpus = rng.integers(0, 70_000, size=300)
        corpus[rng.integers(0, 300, size=150)] = 256  # ids sharing bytes with small ids must not confuse matching
        generated = np.concatenate([rng.integers(0, 70_000, size=10), corpus[40:57], [1, 0, 0, 0, 256]])
        assert longest_copied_ngram(generated, corpus) == brute_force_longest_copy(generated.tolist(), corpus.tolist())


@pytest.mark.parametrize(
    "generated, corpus, expected",
    [
        ([], [1, 2, 3], 0),
        ([1, 2, 3], [], 0),
        ([], [], 0),
        ([4, 5, 6], [1, 2, 3], 0),  # nothing in common
        ([2], [1, 2, 3], 1),
        ([1, 2, 3], [1, 2, 3], 3),  # a verbatim copy of the whole corpus
        ([0, 1, 2, 3, 4], [1, 2, 3], 3),  # longer than the corpus, containing it
        ([1, 2, 3], [0, 1, 2, 3, 4], 3),  # a slice of the corpus
        ([7, 7, 7, 7], [7, 7], 2),
        ([7, 7], [7, 7, 7, 7], 2),
        ([1, 2, 9, 2, 3, 4], [1, 2, 3, 4], 3),  # the longer of two copied runs
        ([3, 1], [1, 2, 3], 1),  # adjacent in the output, not in the corpus
    ],
)
def test_longest_copied_ngram_edge_cases(generated, corpus, expected):
    assert longest_copied_ngram(generated, np.asarray(corpus, dtype=np.int32)) == expected
    assert brute_force_longest_copy(generated, corpus) == expected


# --- musicality -------------------------------------------------------------------------------

C_MAJOR_SCALE = ["C4", "D4", "E4", "F4", "G4", "A4", "B4", "C5"]
CHROMATIC_RUN = ["C4", "C#4", "D4", "E-4", "E4", "F4", "F#4", "G4", "G#4", "A4", "B-4", "B4"]


@pytest.mark.parametrize(("token", "expected"), [
    ("C4", (60,)), ("B-4", (70,)), ("C4.E4.G4_4", (60, 64, 67)), ("5.8.10", (65, 68, 70)), ("R_2", ()), ("nonsense", ())])
def test_token_pitches_are_what_the_midi_file_sounds(token, expected):
    assert token_pitches(token) == expected  # seed chords sound in octave 4, as seqgen.music writes them


def test_a_c_major_scale_is_fully_in_key_and_a_chromatic_run_is_not():
    assert key_consistency(C_MAJOR_SCALE) == 1.0
    assert key_consistency([f"{name}_4" for name in C_MAJOR_SCALE]) == 1.0  # the same as timed tokens
    assert key_consistency(["A3", "B3", "C4", "D4", "E4", "F4", "G#4"]) == 1.0  # A harmonic minor
    assert key_consistency(["0.4.7", "5.9.0", "7.11.2"]) == 1.0  # I IV V chords of C as seed chords
    assert key_consistency(CHROMATIC_RUN) == pytest.approx(7 / 12)
    assert key_consistency(["C4", "F#4"]) == 1.0 and key_consistency(["C4", "C#4", "D4", "D#4"]) == 0.75
    assert key_consistency(["R_4", "R_2"]) is None and key_consistency([]) is None


def test_pitch_range_intervals_and_durations():
    assert pitch_range(C_MAJOR_SCALE) == 12 and pitch_range(["C3.G4_4", "R_2", "E4_2"]) == 19
    assert pitch_range(["R_4"]) is None
    # Intervals follow the top voice and skip rests.
    assert melodic_intervals(["C4", "E4", "C4.G4_4", "R_2", "F4_2", "5.9.0"]) == [4, 3, -2, 4]  # 5.9.0 tops at A4
    assert melodic_intervals(["C4"]) == [] and melodic_intervals(CHROMATIC_RUN) == [1] * 11
    assert durations(["C4_4", "R_2", "E4.G4_16"]) == [4, 2, 16] and durations(C_MAJOR_SCALE) == []


def test_key_finding_on_pitch_class_weights():
    c_major_triad, a_minor_triad = np.bincount([0, 4, 7], minlength=12), np.bincount([9, 0, 4], minlength=12)
    assert best_key(c_major_triad) == (0, "major") and best_key(a_minor_triad) == (9, "minor")
    assert best_key(np.roll(c_major_triad, 7)) == (7, "major")  # the same triad a fifth up is G major
    assert best_key(np.ones(12)) is None and best_key(np.zeros(12)) is None  # no key stands out
    assert scale_fit(np.bincount([0, 2, 4, 5, 7, 9, 11], minlength=12)) == 1.0 and scale_fit(np.ones(12)) == pytest.approx(7 / 12)
    assert scale_fit(np.zeros(12)) is None


def events_melody(*pitches: int) -> list[str]:
    """A melody of quarter notes as events tokens, four to a 4/4 bar."""
    tokens = []
    for index, pitch in enumerate(pitches):
        if index % 4 == 0:
            tokens += ["Bar_None", "TimeSig_4/4"]
        tokens += [f"Position_{index % 4 * 8}", f"Pitch_{pitch}", "Duration_1.0.8"]
    return tokens


def test_events_tokens_are_measured_from_their_notes():
    scale = events_melody(60, 62, 64, 65, 67, 69, 71, 72)
    assert key_consistency(scale) == 1.0 and key_consistency(events_melody(*range(60, 72))) == pytest.approx(7 / 12)
    assert pitch_class_histogram(scale) == pytest.approx(pitch_class_histogram(C_MAJOR_SCALE))
    assert pitch_range(scale) == 12 and melodic_intervals(scale) == melodic_intervals(C_MAJOR_SCALE) == [2, 2, 1, 2, 2, 2, 1]
    assert durations(scale) == [8] * 8  # quarter notes, in 32nds
    # Several notes at one onset: the interval follows the top voice, each note keeps its own length.
    chords = ["Bar_None", "TimeSig_4/4", "Position_0", "Pitch_48", "Duration_2.0.8", "Pitch_64", "Duration_1.0.8",
              "Position_8", "Pitch_67", "Duration_0.4.8", "Position_16", "Pitch_60", "Duration_1.0.8"]
    assert melodic_intervals(chords) == [3, -7] and sorted(durations(chords)) == [4, 8, 8, 16] and pitch_range(chords) == 19
    assert key_consistency(["Bar_None", "TimeSig_4/4"]) is None and pitch_range(["BOS_None"]) is None


def test_an_events_melody_report_reads_its_notes():
    scale = events_melody(60, 62, 64, 65, 67, 69, 71, 72)
    report = melody_report(scale, list(range(len(scale))), pitch_class_histogram(C_MAJOR_SCALE), None)
    assert report["key_consistency"] == 1.0 and report["pitch_range"] == 12 and report["pitch_class_distance"] == 0.0
    assert report["tokens"] == len(scale)


def test_overlapping_area_of_integer_distributions():
    assert overlapping_area([1, 2, 2, 3], [3, 2, 1, 2]) == 1.0  # the same distribution in another order
    assert overlapping_area([1, 1], [5, 7]) == 0.0
    assert overlapping_area([0, 0, 1, 1], [1, 1, 1, 2]) == pytest.approx(0.5)  # min(.5, .75) at 1
    assert overlapping_area([-12, 2], [2, 2, 2, -1]) == pytest.approx(0.5)
    assert overlapping_area([], [1]) is None
    scale, chromatic = melodic_intervals(C_MAJOR_SCALE), melodic_intervals(CHROMATIC_RUN)
    assert overlapping_area(scale, scale) == 1.0 and overlapping_area(scale, chromatic) == pytest.approx(2 / 7)


# --- melody report ----------------------------------------------------------------------------


def test_melody_report_has_every_key():
    tokens = ["C4", "C4", "E4", "0.4.7"]
    report = melody_report(tokens, [0, 0, 1, 2], pitch_class_histogram(tokens), np.array([0, 0, 1, 3], dtype=np.int32))
    assert report == {
        "tokens": 4,
        "repetition_rate": pytest.approx(1 / 3),
        "distinct_ratio": 0.75,
        "key_consistency": 1.0,
        "pitch_range": 7,
        "pitch_class_distance": 0.0,
        "longest_copied_ngram": 3,
    }


def test_melody_report_without_corpus_statistics():
    report = melody_report(["C4", "E4"], [0, 1], None, None)
    assert report["pitch_class_distance"] is None
    assert report["longest_copied_ngram"] is None
    assert report["tokens"] == 2


# --- lyrics report ----------------------------------------------------------------------------


def test_lyrics_report_on_a_hand_made_text():
    text = "hello world\nhello world\nfoo bar\n\nhello world\n"
    report = lyrics_report(text, {"hello", "world"})
    assert report["words"] == 8
    assert report["known_word_share"] == pytest.approx(6 / 8)
    # Bigrams: hw, wh, hw, wf, fb, bh, hw -> 5 distinct of 7.
    assert report["distinct_2"] == pytest.approx(5 / 7)
    assert report["repeated_lines"] == 2
    assert report["max_line_repeats"] == 3
    assert report["invented_words"] == ["bar", "foo"]


def test_lyrics_report_counts_every_extra_copy_of_every_line():
    text = "a b\nc d\na b\nc d\nc d\ne f"
    report = lyrics_report(text, None)
    assert report["repeated_lines"] == 3  # one extra "a b", two extra "c d"
    assert report["max_line_repeats"] == 3
    assert report["known_word_share"] is None  # no corpus words to compare with
    assert report["invented_words"] == []


def test_lyrics_report_ignores_case_punctuation_and_surrounding_space():
    report = lyrics_report("Hello, World!\n  hello world  \nHELLO WORLD?", {"hello", "world"})
    assert report["words"] == 6
    assert report["known_word_share"] == 1.0
    # Lines compare after stripping only: punctuation and case still differ.
    assert report["repeated_lines"] == 0
    assert report["max_line_repeats"] == 1
    same = lyrics_report("la la la\n la la la \n\n\nla la la", set())
    assert same["repeated_lines"] == 2 and same["max_line_repeats"] == 3
    assert same["known_word_share"] == 0.0
    assert same["distinct_2"] == pytest.approx(1 / 8)  # one distinct bigram ("la", "la") of 8


def test_lyrics_report_keeps_apostrophes_in_words():
    report = lyrics_report("don't stop, don't stop", {"don't"})
    assert report["words"] == 4
    assert report["known_word_share"] == 0.5
    assert report["distinct_2"] == pytest.approx(2 / 3)  # (don't, stop) twice, (stop, don't) once


def test_lyrics_report_on_empty_and_word_less_text():
    for text in ("", "\n\n", "  ", "!!! ..."):
        report = lyrics_report(text, {"hello"})
        assert report["words"] == 0
        assert report["known_word_share"] is None
        assert report["distinct_2"] == 0.0
    assert lyrics_report("", None)["max_line_repeats"] == 0
    assert lyrics_report("", None)["repeated_lines"] == 0
    one_word = lyrics_report("hello", {"hello"})
    assert one_word["words"] == 1 and one_word["distinct_2"] == 0.0 and one_word["known_word_share"] == 1.0

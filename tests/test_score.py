"""seqgen.score: MusicXML export, verovio SVG engraving and the plotly piano roll."""

from __future__ import annotations

import pytest

from seqgen import score
from seqgen.errors import SeqgenError
from seqgen.music import display_token, tokens_to_stream

SEED_TOKENS = ["C4", "E-4", "G#4", "B-3", "5.8.10", "9", "C5", "D5"]
# Five sixteenths need a tie, the rest fills a gap, a chord ends a bar.
TIMED_TOKENS = ["C4_5", "R_3", "E4.G4_7", "C5_1", "D5_16", "F#4_2", "R_2", "A3.C4.E4_4"]


def events(stream_or_score):
    """(offset, quarter length, sorted MIDI pitches) of each note/chord, ties merged."""
    flat = stream_or_score.flatten().stripTies()
    return [
        (float(element.offset), float(element.quarterLength), tuple(sorted(int(p.ps) for p in element.pitches)))
        for element in flat.notes
    ]


@pytest.mark.parametrize("tokens, tokenizer", [(SEED_TOKENS, "seed"), (TIMED_TOKENS, "timed")])
def test_musicxml_round_trip_keeps_pitches_and_rhythm(tmp_path, tokens, tokenizer):
    from music21 import converter

    path = score.write_musicxml(tokens, tmp_path / "out" / "melody.musicxml", tokenizer, tempo_bpm=96)
    assert path == tmp_path / "out" / "melody.musicxml" and path.stat().st_size > 0
    parsed = converter.parse(str(path))
    assert events(parsed) == events(tokens_to_stream(tokens, tokenizer))
    marks = parsed.flatten().getElementsByClass("MetronomeMark")
    assert marks and marks[0].number == 96
    text = path.read_text()
    assert "Generated melody" in text and "Music21" not in text


def test_musicxml_rests_are_visible_and_the_last_bar_complete(tmp_path):
    from music21 import converter

    # music21 alone fills gaps with hidden rests (print-object="no"), which engravers drop.
    path = score.write_musicxml(["C4_4", "R_8", "E4_4", "G4_2"], tmp_path / "rests.musicxml", "timed")
    assert 'print-object="no"' not in path.read_text()
    parsed = converter.parse(str(path))
    rests = [(float(rest.getOffsetInHierarchy(parsed)), float(rest.quarterLength)) for rest in parsed.recurse().getElementsByClass("Rest")]
    assert (1.0, 2.0) in rests  # the R_8 token
    assert sum(length for _, length in rests) == pytest.approx(2.0 + 3.5)  # plus the rest of bar 2
    assert float(parsed.highestTime) == 8.0  # 4.5 quarters of tokens, two full bars


def test_musicxml_instrument_and_title(tmp_path):
    path = score.write_musicxml(SEED_TOKENS, tmp_path / "violin.musicxml", "seed", instrument_program=40, title="Étude")
    text = path.read_text(encoding="utf-8")
    assert "Violin" in text and "Étude" in text


def test_engrave_svg(tmp_path):
    path = score.write_musicxml(TIMED_TOKENS, tmp_path / "melody.musicxml", "timed")
    pages = score.engrave_svg(path)
    assert len(pages) >= 1
    assert all(page.lstrip().startswith("<svg") for page in pages)
    assert "Generated melody" in pages[0]


def test_engrave_a_long_melody_gives_one_svg_per_page():
    tokens = ["C4", "D4", "E4", "F4", "G4", "A4", "B4", "C5"] * 40
    pages = score.engrave_tokens(tokens, "seed", scale=60)
    assert len(pages) >= 2
    assert all("<svg" in page for page in pages)


def test_engrave_svg_bad_files_name_the_file(tmp_path):
    text = tmp_path / "notes.musicxml"
    text.write_text("this is not MusicXML")
    empty = tmp_path / "empty.musicxml"
    empty.write_text("")
    for path in (text, empty, tmp_path / "missing.musicxml"):
        with pytest.raises(SeqgenError, match=path.name):
            score.engrave_svg(path)


def test_piano_roll_one_bar_per_note():
    figure = score.piano_roll(SEED_TOKENS[:4] + ["C5", "D5"], "seed")
    (bars,) = figure.data
    assert bars.orientation == "h"
    assert len(bars.x) == 6
    assert list(bars.base) == [0, 1, 2, 3, 4, 5]
    assert list(bars.y) == [60, 63, 68, 58, 72, 74]
    assert [row[0] for row in bars.customdata] == ["C4", "E♭4", "G♯4", "B♭3", "C5", "D5"]  # shown with ♭ and ♯
    assert figure.layout.xaxis.title.text == "time (quarter notes)"


def test_piano_roll_chords_and_rests_timed():
    figure = score.piano_roll(TIMED_TOKENS, "timed")
    (bars,) = figure.data
    sounding = [token for token in TIMED_TOKENS if not token.startswith("R_")]
    pitch_count = sum(len(token.rpartition("_")[0].split(".")) for token in sounding)
    assert len(bars.x) == pitch_count  # one bar per pitch of each event, none for rests
    starts = sorted(set(bars.base))
    assert starts == [0.0, 2.0, 3.75, 4.0, 8.0, 9.0]  # quarters: C4_5 + R_3 = 2 quarters, ...
    assert {row[0] for row in bars.customdata} == {display_token(token) for token in sounding}


def test_piano_roll_shades_the_primer_before_the_melody():
    primer, melody = ["C4_4", "R_4"], ["E4_4", "G4_2"]
    figure = score.piano_roll_figure(score.piano_roll_notes(melody, "timed"), "Melody",
                                     score.piano_roll_notes(primer, "timed"), primer_quarters=2.0)
    first, then = figure.data
    assert (first.name, list(first.base), list(first.y)) == ("primer", [0.0], [60])
    assert (then.name, list(then.base), list(then.y)) == ("generated", [2.0, 3.0], [64, 67])  # after the primer's rest
    (band,) = figure.layout.shapes
    assert (band.x0, band.x1) == (0, 2.0)
    assert [trace.name for trace in score.piano_roll(melody, "timed").data] == ["notes"]


def test_the_score_carries_the_analysed_key_and_spells_for_it(tmp_path):
    from music21 import converter

    # E-flat major, but MIDI spelling (seqgen's tokens) writes its notes with sharps and flats as MIDI does.
    tokens = ["E-4_4", "G4_4", "B-4_4", "E-5_4", "D5_4", "C5_4", "B-4_4", "A-4_4", "G4_4", "F4_4", "E-4_8"]
    path = score.write_musicxml(tokens, tmp_path / "flat.musicxml", "timed")
    parsed = converter.parse(str(path))
    (signature,) = parsed.recurse().getElementsByClass("KeySignature")
    assert signature.sharps == -3
    assert [pitch.name for pitch in parsed.pitches] == ["E-", "G", "B-", "E-", "D", "C", "B-", "A-", "G", "F", "E-"]
    sharp = score.score_stream(["F#4_4", "A4_4", "C#5_4", "F#5_4", "E5_4", "D5_4", "C#5_4", "B4_4", "A4_4", "F#4_8"], "timed")
    assert [signature.sharps for signature in sharp.recurse().getElementsByClass("KeySignature")] == [3]


def test_a_wide_range_goes_on_treble_and_bass_staves(tmp_path):
    from music21 import converter

    wide = ["C3.E4.C5_4", "G2_4", "D5_4", "B3_4"]
    path = score.write_musicxml(wide, tmp_path / "wide.musicxml", "timed")
    assert "<staves>2</staves>" in path.read_text()
    treble, bass = converter.parse(str(path)).parts
    assert [p.nameWithOctave for p in treble.pitches] == ["E4", "C5", "D5"]
    assert [p.nameWithOctave for p in bass.pitches] == ["C3", "G2", "B3"]
    assert events(converter.parse(str(path))) != []
    assert len(score.score_stream(["C4_4", "A3_4", "G5_4"], "timed").parts) == 1  # fits the treble clef
    assert len(score.score_stream(["C3_4", "E4_4", "G2_4"], "timed").parts) == 1  # fits the bass clef
    assert score.engrave_svg(path)[0].lstrip().startswith("<svg")


@pytest.mark.parametrize("tokens, tokenizer", [
    (["C4", "not-a-pitch"], "seed"),
    (["C4_4", "E4"], "timed"),
    (["X9_4"], "timed"),
    (["C4"], "mystery"),
    ([], "seed"),
    ("C4 D4", "seed"),
])
def test_bad_tokens_raise_seqgen_error(tmp_path, tokens, tokenizer):
    with pytest.raises(SeqgenError):
        score.write_musicxml(tokens, tmp_path / "bad.musicxml", tokenizer)
    with pytest.raises(SeqgenError):
        score.piano_roll(tokens, tokenizer)
    with pytest.raises(SeqgenError):
        score.engrave_tokens(tokens, tokenizer)
    assert not (tmp_path / "bad.musicxml").exists()


def test_an_events_chorale_is_a_grand_staff_of_four_voices(tmp_path):
    """Soprano and alto on the treble staff, tenor and bass on the bass staff, each line a voice with its own rhythm."""
    from music21 import converter

    from seqgen import events
    from seqgen.sources import resolve

    with resolve("bach") as source:
        path = next(path for path in source.files if path.stem == "bwv66.6")
    tokens = events.tokenize_file(path)[:200]
    written = score.write_musicxml(tokens, tmp_path / "chorale.musicxml", "events")
    parsed = converter.parse(written)
    treble, bass = parsed.parts
    for staff in (treble, bass):
        voices = {voice.id for measure in staff.getElementsByClass("Measure") for voice in measure.voices}
        assert len(voices) == 2
    assert parsed.analyze("key").tonic.name == "F#"  # the chorale's key, with its signature
    sounding = sorted((float(item.start), item.pitch) for item in events.decode(tokens).notes)
    notes = sorted((float(n.getOffsetInHierarchy(parsed)), p.midi) for n in parsed.recurse().notes for p in n.pitches
                   if not (n.tie and n.tie.type in ("stop", "continue")))
    assert notes == sounding  # every note once, where it starts
    assert score.engrave_svg(written)[0].startswith("<svg")


def test_an_events_piano_roll_holds_each_note_for_its_own_length():
    bars = score.piano_roll_notes(["Bar_None", "Position_0", "Pitch_48", "Duration_4.0.4", "Pitch_72", "Duration_1.0.8",
                                   "Position_8", "Pitch_74", "Duration_1.0.8"], "events")
    assert sorted((bar["start"], bar["duration"], bar["pitch"]) for bar in bars) == [(0.0, 1.0, 72), (0.0, 4.0, 48), (1.0, 1.0, 74)]
    assert {bar["pitch"]: bar["token"] for bar in bars}[48] == "C3 𝅝"


def test_a_piano_texture_is_written_in_chords_on_a_grand_staff(tmp_path):
    """More than four notes at once: notes of one onset and length become chords, each line on its staff."""
    from music21 import converter

    tokens = ["Bar_None", "TimeSig_4/4", "Position_0"]
    for pitch in (36, 43, 48, 64, 67, 72):
        tokens += [f"Pitch_{pitch}", "Duration_2.0.8"]
    tokens += ["Position_16", "Pitch_41", "Duration_2.0.8", "Pitch_65", "Duration_1.0.8", "Pitch_69", "Duration_1.0.8",
               "Position_24", "Pitch_67", "Duration_1.0.8", "Pitch_71", "Duration_1.0.8"]
    parsed = converter.parse(score.write_musicxml(tokens, tmp_path / "piano.musicxml", "events"))
    treble, bass = parsed.parts
    assert [sorted(p.midi for p in chord.pitches) for chord in treble.recurse().notes] == [[64, 67, 72], [65, 69], [67, 71]]
    assert [sorted(p.midi for p in chord.pitches) for chord in bass.recurse().notes] == [[36, 43, 48], [41]]


def test_events_without_notes_are_a_bar_of_rest(tmp_path):
    from music21 import converter

    parsed = converter.parse(score.write_musicxml(["Bar_None", "TimeSig_3/4", "Bar_None"], tmp_path / "empty.musicxml", "events"))
    assert not parsed.recurse().notes and parsed.recurse().getElementsByClass("Rest").first().quarterLength == 3.0

"""Tokens -> sheet music: MusicXML (music21), SVG engraving (verovio), piano roll (plotly).

The three views read the same music21 stream that ``seqgen.music.write_midi``
plays (``seqgen.music.tokens_to_stream``), so what is shown is what is heard:
seed tokens one quarter note apart, timed tokens with their durations and rests.
The sheet music carries the key music21 analyses (notes spelled for it) and
splits onto treble and bass staves when no single clef holds the range.

    path = write_musicxml(tokens, "melody.musicxml", "timed", tempo_bpm=100)
    pages = engrave_svg(path)              # one SVG string per page
    figure = piano_roll(tokens, "timed")   # plotly Figure (of piano_roll_notes)
"""

from __future__ import annotations

import tempfile
from importlib import resources

import numpy as np
from pathlib import Path

from seqgen.errors import SeqgenError
from seqgen.music import display_token, midi_name, tokens_to_stream

DEFAULT_TITLE = "Generated melody"
# verovio units: page width in tenths of a millimetre at 100 % (2100 = A4), and a 40 % scale: pages about
# 520 px wide, which a page scales to its column (its viewBox) and which stay readable on a 390 px phone.
DEFAULT_PAGE_WIDTH = 1300
DEFAULT_SCALE = 40
BAR_QUARTERS = 4.0  # music21 writes 4/4 when a stream has no time signature
# One staff holds the melody while it needs at most two ledger lines in its clef: nothing under
# A3 in the treble clef or nothing over E4 in the bass clef.  Otherwise it goes on two staves, split at middle C.
TREBLE_LOWEST, BASS_HIGHEST, MIDDLE_C = 57, 64, 60


def _check_tokens(tokens) -> list[str]:
    if isinstance(tokens, str) or not hasattr(tokens, "__iter__"):
        raise SeqgenError("Tokens must be a list of token strings, not a single string.")
    tokens = list(tokens)
    if not tokens:
        raise SeqgenError("There are no tokens to show: generate or enter some first.")
    bad = [token for token in tokens if not isinstance(token, str) or not token.strip()]
    if bad:
        raise SeqgenError(f"Tokens must be non-empty strings; got {bad[0]!r}.")
    return tokens


def score_stream(tokens, tokenizer: str, tempo_bpm: float = 120.0, instrument_program: int = 0,
                 title: str = DEFAULT_TITLE, composer: str = ""):
    """A music21 Score with one part playing ``tokens``, visible rests and a title.

    The title and composer replace music21's "Music21 Fragment" / "Music21" defaults.

    Raises:
        SeqgenError: when a token is not valid for ``tokenizer``.
    """
    from music21 import key, layout, metadata, note, stream

    tokens = _check_tokens(tokens)
    if tokenizer == "events":
        return _event_score(tokens, tempo_bpm, instrument_program, title, composer)
    part = tokens_to_stream(tokens, tokenizer, tempo_bpm, instrument_program)
    found = _spell_in_key(part)
    staves = _split_staves(part)
    end = max(float(staff.highestTime) for staff in staves)
    end += (BAR_QUARTERS - end % BAR_QUARTERS) % BAR_QUARTERS
    score = stream.Score()
    info = metadata.Metadata()
    info.title = title
    info.composer = composer  # set even when empty: music21 writes "Music21" otherwise
    score.insert(0, info)
    for staff in staves:
        if found is not None:
            staff.insert(0, key.KeySignature(found.sharps))
        # Rests are gaps in the stream.  music21's export would fill them with
        # *hidden* rests (print-object="no"), which engravers leave out, so fill
        # them with visible ones, and complete the last 4/4 bar the same way.
        staff.makeRests(fillGaps=True, inPlace=True, hideRests=False)
        if float(staff.highestTime) < end - 1e-9:
            staff.insert(float(staff.highestTime), note.Rest(quarterLength=end - float(staff.highestTime)))
        score.insert(0, staff)
    if len(staves) == 2:
        score.insert(0, layout.StaffGroup(staves, symbol="brace"))
    return score


MAX_CHORALE_VOICES = 4  # a texture with at most this many notes at once is written as voices; a fuller one in chords
CHORALE_SHARE = 0.9  # ... at nine notes in ten: a generated chorale may hold a note too long here and there


def split_voices(notes) -> list[list]:
    """Monophonic lines (lists of ``seqgen.events.EventNote``, or of chord-notes) that together hold ``notes``, highest
    line first.

    At each onset, from the highest note down, a note joins the free line (one whose last note has ended) whose last
    pitch is nearest, else starts a new line: a chorale's soprano, alto, tenor and bass come out as four lines.
    """
    def top(item) -> int:  # a chord-note (see _chords) is placed by its highest pitch
        return max(item.pitch) if isinstance(item.pitch, tuple) else item.pitch

    lines: list[list] = []
    onsets: dict[float, list] = {}
    for item in notes:
        onsets.setdefault(item.start, []).append(item)
    for start in sorted(onsets):
        free = [line for line in lines if line[-1].start + line[-1].duration <= start + 1e-9]
        for item in sorted(onsets[start], key=lambda found: -top(found)):
            if free:
                line = min(free, key=lambda candidate: abs(top(candidate[-1]) - top(item)))
                free.remove(line)
                line.append(item)
            else:
                lines.append([item])
    return sorted(lines, key=lambda line: -sum(top(item) for item in line) / len(line))


def _chords(notes) -> list:
    """Notes of one onset and length as one chord-note (an ``EventNote`` whose ``pitch`` is a tuple)."""
    from seqgen.events import EventNote

    grouped: dict[tuple[float, float], list[int]] = {}
    for item in notes:
        grouped.setdefault((item.start, item.duration), []).append(item.pitch)
    return [EventNote(start, duration, tuple(sorted(pitches))) for (start, duration), pitches in sorted(grouped.items())]


def _measures(line, signatures: list[tuple[float, int, int]], end: float) -> list:
    """One line's music21 measures (rests in the gaps, ties over bar lines) up to ``end`` quarters."""
    from music21 import chord, meter, note, stream

    flat = stream.Part()
    for start, numerator, denominator in signatures:
        flat.insert(start, meter.TimeSignature(f"{numerator}/{denominator}"))
    for item in line:
        pitches = item.pitch if isinstance(item.pitch, tuple) else (item.pitch,)
        element = (note.Note(midi=pitches[0], quarterLength=item.duration) if len(pitches) == 1
                   else chord.Chord([note.Note(midi=pitch) for pitch in pitches], quarterLength=item.duration))
        flat.insert(item.start, element)
    flat.makeRests(fillGaps=True, inPlace=True, hideRests=False)
    if float(flat.highestTime) < end - 1e-9:
        flat.insert(float(flat.highestTime), note.Rest(quarterLength=end - float(flat.highestTime)))
    measured = flat.makeMeasures()
    measured.makeTies(inPlace=True)
    return list(measured.getElementsByClass(stream.Measure))


def _event_score(tokens, tempo_bpm: float, instrument_program: int, title: str, composer: str):
    """Events tokens as a grand staff: a chorale's four lines as two voices on each staff (stems up and down), a
    fuller texture (piano) as chords split at middle C, in as few voices as its rhythms need."""
    from music21 import clef, instrument, key, layout, metadata, stream, tempo

    from seqgen.events import decode

    decoded = decode(tokens)
    signatures = decoded.time_signatures or [(0.0, 4, 4)]
    end = decoded.length or signatures[0][1] * 4.0 / signatures[0][2]  # no notes: one bar's rest
    sounding = [sum(1 for other in decoded.notes if other.start <= item.start < other.start + other.duration)
                for item in decoded.notes]
    if not decoded.notes:
        staves = {"treble": [[]], "bass": []}
    elif np.mean(np.array(sounding) <= MAX_CHORALE_VOICES) >= CHORALE_SHARE:  # voices: the upper half on the treble staff (soprano, alto), the rest below
        lines = split_voices(decoded.notes)
        upper = (len(lines) + 1) // 2 if len(lines) > 1 else int(sum(item.pitch for item in lines[0]) / len(lines[0]) >= MIDDLE_C)
        staves = {"treble": lines[:upper], "bass": lines[upper:]}
    else:  # a fuller texture (piano): notes from middle C up on the treble staff, in chords and as few lines as fit
        staves = {"treble": split_voices(_chords([item for item in decoded.notes if item.pitch >= MIDDLE_C])),
                  "bass": split_voices(_chords([item for item in decoded.notes if item.pitch < MIDDLE_C]))}
    score = stream.Score()
    info = metadata.Metadata()
    info.title, info.composer = title, composer
    score.insert(0, info)
    parts = []
    for name, staff_lines in staves.items():
        if not staff_lines:
            continue
        staff = stream.PartStaff()
        voices = [_measures(line, signatures, end) for line in staff_lines]
        for number, bars in enumerate(zip(*voices), start=1):
            measure = stream.Measure(number=number)
            if bars[0].timeSignature is not None:
                measure.timeSignature = bars[0].timeSignature
            for voice_number, bar in enumerate(bars, start=1):
                voice = stream.Voice(id=str(voice_number))
                for element in bar.notesAndRests:
                    if len(bars) > 1 and (element.isNote or element.isChord):
                        element.stemDirection = "up" if voice_number % 2 else "down"
                    voice.insert(element.offset, element)
                measure.insert(0, voice)
            staff.append(measure)
        first = staff.getElementsByClass(stream.Measure).first()
        first.insert(0, clef.TrebleClef() if name == "treble" else clef.BassClef())
        parts.append(staff)
    first = parts[0].getElementsByClass(stream.Measure).first()
    first.insert(0, instrument.instrumentFromMidiProgram(int(instrument_program)))
    first.insert(0, tempo.MetronomeMark(number=float(tempo_bpm)))
    for part in parts:
        score.insert(0, part)
    found = _spell_in_key(score)
    for part in parts:
        if found is not None:
            part.getElementsByClass(stream.Measure).first().insert(0, key.KeySignature(found.sharps))
    if len(parts) == 2:
        score.insert(0, layout.StaffGroup(parts, symbol="brace"))
    return score


def _spell_in_key(part):
    """Analyse the key (music21's Krumhansl–Schmuckler) and respell every pitch for it; None when there are no notes.

    Pitches of the key's scale take its spelling; the others lean to flats in
    flat keys and to sharps in sharp keys.  Only names change, never pitch.
    """
    if not part.recurse().notes:
        return None
    found = part.analyze("key")
    scale = {pitch.pitchClass: pitch.name for pitch in found.pitches}
    accidental = "-" if found.sharps < 0 else "#"
    for element in part.recurse().notes:
        for pitch in element.pitches:
            wanted = scale.get(pitch.pitchClass)
            for candidate in [pitch, *pitch.getAllCommonEnharmonics(alterLimit=1)]:
                if candidate.name == wanted or (wanted is None and accidental in candidate.name):
                    pitch.step, pitch.accidental, pitch.octave = candidate.step, candidate.accidental, candidate.octave
                    break
    return found


def _split_staves(part) -> list:
    """``[part]`` when one clef holds the range; else treble and bass staves split at middle C."""
    from music21 import chord, clef, note, stream

    numbers = [pitch.midi for element in part.recurse().notes for pitch in element.pitches]
    if not numbers or min(numbers) >= TREBLE_LOWEST or max(numbers) <= BASS_HIGHEST:
        return [part]
    treble, bass = stream.PartStaff(), stream.PartStaff()
    treble.insert(0, clef.TrebleClef())
    bass.insert(0, clef.BassClef())
    for element in part.getElementsByClass(["Instrument", "MetronomeMark"]):
        treble.insert(0, element)
    for element in part.recurse().notes:
        offset, length = float(element.getOffsetInHierarchy(part)), element.quarterLength
        for staff, pitches in ((treble, [p for p in element.pitches if p.midi >= MIDDLE_C]),
                               (bass, [p for p in element.pitches if p.midi < MIDDLE_C])):
            if pitches:
                staff.insert(offset, note.Note(pitches[0], quarterLength=length) if len(pitches) == 1
                             else chord.Chord(pitches, quarterLength=length))
    return [treble, bass]


def write_musicxml(tokens, path: Path, tokenizer: str, tempo_bpm: float = 120.0, instrument_program: int = 0,
                   title: str = DEFAULT_TITLE, composer: str = "") -> Path:
    """Write ``tokens`` as an uncompressed MusicXML file and return its path.

    music21 adds measures (4/4), a clef suited to the range, rests for gaps and
    ties for durations no single note can hold (e.g. five sixteenths).

    Raises:
        SeqgenError: on invalid tokens, or naming the file when it cannot be written.
    """
    path = Path(path)
    score = score_stream(tokens, tokenizer, tempo_bpm, instrument_program, title, composer)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        written = score.write("musicxml", fp=str(path))
    except Exception as error:
        raise SeqgenError(f"{path.name}: could not write MusicXML ({type(error).__name__}: {error}).") from error
    return Path(written)


def engrave_svg(musicxml_path: Path, page_width: int = DEFAULT_PAGE_WIDTH, scale: int = DEFAULT_SCALE,
                options: dict | None = None) -> list[str]:
    """Engrave a MusicXML file with verovio.

    Args:
        musicxml_path: a MusicXML file (``.musicxml``/``.xml``; ``.mxl`` works too).
        page_width: verovio page width (tenths of a mm at 100 %; 2100 = A4).
        scale: verovio zoom in percent.
        options: extra verovio options, applied last (e.g. ``{"svgViewBox": True}``).

    Returns:
        One SVG document (a string starting with ``<svg``) per page.

    Raises:
        SeqgenError: naming the file when it is missing or verovio cannot read it.
    """
    import verovio

    path = Path(musicxml_path)
    if not path.is_file():
        raise SeqgenError(f"{path}: no such MusicXML file.")
    if path.stat().st_size == 0:
        raise SeqgenError(f"{path.name}: the file is empty (0 bytes), not MusicXML.")
    verovio.enableLog(verovio.LOG_OFF)  # verovio otherwise prints warnings to stderr
    toolkit = verovio.toolkit()
    # verovio keeps its font path per thread; set it so engraving works in any worker thread.
    toolkit.setResourcePath(str(resources.files("verovio") / "data"))
    settings = {
        "pageWidth": int(page_width),
        "scale": int(scale),
        "adjustPageHeight": True,  # no empty space below the last system
        "breaks": "auto",
        "footer": "none",  # no "Engraved by Verovio" line
        "header": "auto",  # title from the MusicXML
        "svgViewBox": True,  # scalable: the page shows it at its column's width
    }
    settings.update(options or {})
    toolkit.setOptions(settings)
    if path.suffix.lower() == ".mxl":
        loaded = toolkit.loadFile(str(path))
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise SeqgenError(f"{path.name}: not a text MusicXML file ({error}).") from error
        loaded = toolkit.loadData(text)
    if not loaded or toolkit.getPageCount() < 1:
        raise SeqgenError(f"{path.name}: verovio could not read it as MusicXML.")
    pages = [toolkit.renderToSVG(page) for page in range(1, toolkit.getPageCount() + 1)]
    if not pages or any("<svg" not in page for page in pages):
        raise SeqgenError(f"{path.name}: verovio produced no SVG.")
    return pages


def engrave_tokens(tokens, tokenizer: str, tempo_bpm: float = 120.0, instrument_program: int = 0,
                   title: str = DEFAULT_TITLE, page_width: int = DEFAULT_PAGE_WIDTH, scale: int = DEFAULT_SCALE) -> list[str]:
    """``write_musicxml`` to a temporary file, then ``engrave_svg``: one SVG string per page."""
    with tempfile.TemporaryDirectory(prefix="seqgen-score-") as folder:
        path = write_musicxml(tokens, Path(folder) / "melody.musicxml", tokenizer, tempo_bpm, instrument_program, title)
        return engrave_svg(path, page_width=page_width, scale=scale)


def piano_roll_notes(tokens, tokenizer: str) -> list[dict]:
    """The bars of a piano roll: one dict per sounding pitch of each note or chord token.

    Each dict holds ``start`` and ``duration`` (quarter notes), ``pitch`` (MIDI
    number), ``name`` (``C#4``) and ``token``; rests give none.
    """
    tokens = _check_tokens(tokens)
    if tokenizer == "events":  # one bar per note, with its own length (tokens and notes do not line up one to one)
        from seqgen.events import decode, duration_sign, pitch_name

        return [{"start": item.start, "duration": item.duration, "pitch": item.pitch, "name": midi_name(item.pitch),
                 "token": f"{pitch_name(item.pitch)} {duration_sign(item.duration)}"}
                for item in decode(tokens).notes]
    part = tokens_to_stream(tokens, tokenizer)  # validates the tokens
    # tokens_to_stream inserts one element per non-rest token, in token order at
    # non-decreasing offsets, so the stream's notes line up with these tokens.
    sounding = [token for token in tokens if not (tokenizer == "timed" and token.rpartition("_")[0] == "R")]
    elements = list(part.recurse().notes)
    if len(elements) != len(sounding):  # should not happen; keep the hover text honest if it does
        sounding = [element.fullName for element in elements]
    bars = []
    for token, element in zip(sounding, elements):
        start = float(element.getOffsetInHierarchy(part))
        for pitch in element.pitches:
            bars.append({
                "start": start,
                "duration": float(element.quarterLength),
                "pitch": int(round(pitch.ps)),
                "name": pitch.nameWithOctave,
                "token": token,
            })
    return bars


def piano_roll(tokens, tokenizer: str, title: str = "Piano roll"):
    """``piano_roll_figure`` of the tokens' ``piano_roll_notes``.

    Raises:
        SeqgenError: when a token is not valid for ``tokenizer``.
    """
    return piano_roll_figure(piano_roll_notes(tokens, tokenizer), title)


PRIMER_COLOR, MELODY_COLOR = "#b8c2cc", "#3b6ea5"


def piano_roll_figure(bars: list[dict], title: str = "Piano roll", primer: list[dict] | None = None,
                      primer_quarters: float = 0.0):
    """A plotly piano roll of ``piano_roll_notes``: one horizontal bar per sounding pitch of each event.

    x is time in quarter notes, y the MIDI pitch (labelled with note names,
    ♭ and ♯); hovering a bar shows its token, pitch, start and duration.  A
    chord token gives one bar per pitch, a rest none.  ``primer`` (its
    ``piano_roll_notes``, lasting ``primer_quarters``) is drawn first in grey on
    a shaded band, and the melody after it.
    """
    import plotly.graph_objects as go

    primer = primer or []
    shifted = [{**bar, "start": bar["start"] + primer_quarters} for bar in bars] if primer_quarters else bars
    names = {bar["pitch"]: display_token(bar["name"]) for bar in primer + shifted}
    low, high = (min(names), max(names)) if names else (60, 72)
    # One layout given to the constructor: plotly validates it once (update_* calls would each validate again).
    layout = {
        "title": {"text": title},
        "xaxis": {"title": {"text": "time (quarter notes)"}, "rangemode": "tozero"},
        "yaxis": {"title": {"text": "pitch"}, "range": [low - 1.5, high + 1.5], "tickmode": "array",
                  "tickvals": sorted(names), "ticktext": [names[pitch] for pitch in sorted(names)]},
        "bargap": 0.1,
        "showlegend": bool(primer),
        "legend": {"orientation": "h", "y": -0.2},
        "template": "plotly_white",
        "height": max(300, min(900, 18 * (high - low + 3) + 120)),
    }
    if primer:
        layout["shapes"] = [{"type": "rect", "xref": "x", "yref": "paper", "x0": 0, "x1": primer_quarters, "y0": 0, "y1": 1,
                             "fillcolor": "#eef1f4", "line": {"width": 0}, "layer": "below"}]

    def trace(group: list[dict], name: str, color: str):
        return go.Bar(
            orientation="h",
            base=[bar["start"] for bar in group],
            x=[bar["duration"] for bar in group],
            y=[bar["pitch"] for bar in group],
            width=0.8,
            marker={"color": color, "line": {"color": "#1f3d5c", "width": 1}},
            customdata=[[display_token(bar["token"]), display_token(bar["name"]), bar["start"], bar["duration"]] for bar in group],
            hovertemplate=f"{name}: %{{customdata[0]}}<br>%{{customdata[1]}} (MIDI %{{y}})<br>"
                          "start %{customdata[2]} q, length %{customdata[3]} q<extra></extra>",
            name=name,
        )

    traces = ([trace(primer, "primer", PRIMER_COLOR)] if primer else []) + [trace(shifted, "generated" if primer else "notes", MELODY_COLOR)]
    return go.Figure(traces, layout=layout)

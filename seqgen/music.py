"""Scores ⇄ tokens ⇄ MIDI with music21.

Three tokenizers; the third, ``events`` (every voice's notes with their own
durations, bars and positions, pieces with a start and an end), lives in
:mod:`seqgen.events` and is reached through the same functions here.  The
first two:

* ``seed`` is the reference project's scheme, reproduced exactly: for each
  instrument part (``instrument.partitionByInstrument``), every note and chord
  in the part's ``recurse()`` order, part after part.  A note is its pitch
  name with octave (``B-4``), a chord its normal order joined by dots
  (``5.8.10``).  Notes are spelled as MIDI spells them (``B-4``, ``C#4``), which
  is what the reference saw in its MIDI files; scores in other formats are
  respelled the same way (``E#5`` becomes ``F5``), so generated melodies
  survive a MIDI round trip.  Rhythm and rests are dropped; when rebuilding a stream every
  event sits one quarter note after the previous one (the reference's
  ``offset += 1``).
* ``timed`` keeps rhythm.  Each part's notes and chords are put on a grid of
  sixteenth notes; notes starting on the same grid step become one chord.  A
  token is ``PITCHES_STEPS``: the pitches with octave, lowest first, joined by
  dots (``C4.E4.G4``), or ``R`` for a rest, then the number of sixteenths until
  the next event, capped at 16 (a whole note).  A note that ends before the
  next onset is followed by a rest token for the gap, so every token's
  duration is the time to the next token.  Pitches are spelled as MIDI spells
  them (``B-``, ``C#``, ``E-``, ``F#``, ``G#``) so a score and its MIDI
  export give the same tokens, and enharmonic twins share one token.
  Combining pitch and duration in one token keeps one token per musical
  event; the rare-token filter keeps the vocabulary manageable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from seqgen.errors import SeqgenError
from seqgen.scorefile import parse_score, scores_in

TOKENIZERS = ("seed", "timed", "events")
TOKENIZER_HELP = ("music tokenizer: seed (the report's symbols), timed (with rhythm) or events (every voice, bars; "
                  "whole pieces) (default: seed)")
# Bump a version when a tokenizer's output changes: it is part of the cache key (events: seqgen.events.VERSION).
TOKENIZER_VERSIONS = {"seed": 2, "timed": 1}
EVENT_KINDS = ("Bar_", "Position_", "Pitch_", "Duration_", "TimeSig_", "BOS_", "EOS_")  # how an events token begins

STEPS_PER_QUARTER = 4  # the timed grid: sixteenth notes
MAX_STEPS = 16  # cap on one event's duration: a whole note
REST = "R"
MIDI_TICKS_PER_QUARTER = 480
MIDI_VELOCITY = 90  # music21's default loudness (volume 0.71 of 127)


def cache_tag(tokenizer: str) -> str:
    """The token cache's folder for a tokenizer: its name, version and, for ``events``, its configuration's digest."""
    if tokenizer == "events":
        from seqgen import events

        return f"events-v{events.VERSION}-{events.config_digest()}"
    return f"{tokenizer}-v{TOKENIZER_VERSIONS[tokenizer]}"


def check_tokenizer(name: str) -> str:
    """Return ``name`` if it is a known tokenizer, else raise a SeqgenError."""
    if name not in TOKENIZERS:
        raise SeqgenError(f"Unknown tokenizer {name!r}; choose one of: {', '.join(TOKENIZERS)}.")
    return name


def _parts(score):
    """The instrument parts of a score, as the reference split them."""
    from music21 import instrument

    try:
        partitioned = instrument.partitionByInstrument(score)
    except Exception:  # music21 fails on some odd files; fall back like the reference
        partitioned = None
    if partitioned is not None and len(partitioned.parts) > 0:
        return list(partitioned.parts)
    return [score]


def seed_tokens(score) -> list[str]:
    """Tokens of one parsed score in the reference order (see module docstring)."""
    from music21 import chord, note

    tokens: list[str] = []
    for item in scores_in(score):
        for part in _parts(item):
            for element in part.recurse():
                if isinstance(element, note.Note):
                    tokens.append(midi_name(round(element.pitch.ps)))
                elif isinstance(element, chord.Chord) and len(element.pitches) > 0:
                    tokens.append(".".join(str(pitch_class) for pitch_class in element.normalOrder))
    return tokens


@lru_cache(maxsize=128)
def midi_name(midi_number: int) -> str:
    """Pitch name with octave as music21 spells a MIDI note number (61 -> 'C#4')."""
    from music21 import pitch

    return pitch.Pitch(midi=int(midi_number)).nameWithOctave


ACCIDENTALS = re.compile(r"(?<=[A-G])(##|#|--|-)")


def display_token(token: str) -> str:
    """A token as people read it: ``B-4`` → ``B♭4``, ``C#4.E4_2`` → ``C♯4.E4_2``, ``Position_12`` → ``beat 2½``
    (files keep the tokenizer's spelling)."""
    if token.startswith(EVENT_KINDS):
        from seqgen import events

        return events.display_token(token)
    return ACCIDENTALS.sub(lambda match: match.group(1).replace("#", "♯").replace("-", "♭"), token)


def _timed_events(part) -> list[tuple[int, int, tuple[int, ...]]]:
    """(onset step, end step, MIDI pitches) of one part, merged per onset, in time order."""
    from music21 import chord, note

    by_onset: dict[int, tuple[int, set[int]]] = {}
    # A tied note sounds once: merge ties so a note split at a barline (as
    # music21 reads long MIDI notes) counts as one event.
    part = part.stripTies(matchByPitch=True)
    for element in part.recurse().notes:
        if element.duration.isGrace or element.quarterLength <= 0:
            continue
        if isinstance(element, note.Note):
            pitches = {int(round(element.pitch.ps))}
        elif isinstance(element, chord.Chord):
            pitches = {int(round(p.ps)) for p in element.pitches}
        else:  # unpitched percussion carries no pitch to learn
            continue
        if not pitches:
            continue
        offset = float(element.getOffsetInHierarchy(part))
        onset = int(round(offset * STEPS_PER_QUARTER))
        end = max(onset + 1, int(round((offset + float(element.quarterLength)) * STEPS_PER_QUARTER)))
        previous_end, previous_pitches = by_onset.get(onset, (end, set()))
        by_onset[onset] = (max(previous_end, end), previous_pitches | pitches)
    return [(onset, end, tuple(sorted(pitches))) for onset, (end, pitches) in sorted(by_onset.items())]


def timed_token(pitches: tuple[int, ...] | None, steps: int) -> str:
    """Format one timed token: pitches (None for a rest) and a duration in sixteenths."""
    steps = max(1, min(MAX_STEPS, int(steps)))
    head = REST if not pitches else ".".join(midi_name(p) for p in pitches)
    return f"{head}_{steps}"


def timed_tokens(score) -> list[str]:
    """Tokens of one parsed score with rhythm (see module docstring)."""
    tokens: list[str] = []
    for item in scores_in(score):
        for part in _parts(item):
            events = _timed_events(part)
            for index, (onset, end, pitches) in enumerate(events):
                if index + 1 == len(events):
                    tokens.append(timed_token(pitches, end - onset))
                    break
                next_onset = events[index + 1][0]
                gap = next_onset - onset
                sounding = min(end - onset, gap)
                tokens.append(timed_token(pitches, sounding))
                if gap - sounding >= 1:
                    tokens.append(timed_token(None, gap - sounding))
    return tokens


def tokenize_score(score, tokenizer: str) -> list[str]:
    """Tokens of a parsed music21 score with the ``seed`` or ``timed`` tokenizer."""
    if check_tokenizer(tokenizer) == "events":
        raise SeqgenError("events tokens are made from files (seqgen.events.tokenize_file), not parsed scores.")
    return seed_tokens(score) if tokenizer == "seed" else timed_tokens(score)


def tokenize_file(path: Path, tokenizer: str) -> list[str]:
    """Parse and tokenize one score file; SeqgenError names the file on failure."""
    if check_tokenizer(tokenizer) == "events":
        from seqgen import events

        return events.tokenize_file(Path(path))
    score = parse_score(path)
    try:
        return tokenize_score(score, tokenizer)
    except Exception as error:
        raise SeqgenError(f"{Path(path).name}: could not extract notes ({type(error).__name__}: {error}).") from error


def parse_timed_token(token: str) -> tuple[list[str], float]:
    """Split a timed token into pitch names (empty for a rest) and a quarter length."""
    head, _, steps = token.rpartition("_")
    if not head or not steps.isdigit() or int(steps) < 1:  # a zero-length event would vanish from the MIDI
        raise SeqgenError(f"{token!r} is not a timed token (expected PITCHES_STEPS, e.g. 'C4.E4_4' or 'R_2').")
    pitches = [] if head == REST else head.split(".")
    return pitches, int(steps) / STEPS_PER_QUARTER


def duration_quarters(tokens: list[str], tokenizer: str) -> float:
    """How long ``tokens`` last in quarter notes: one each for seed tokens, their steps (rests too) for timed ones,
    up to the end of the last bar for events."""
    if check_tokenizer(tokenizer) == "events":
        from seqgen import events

        return events.decode(tokens).length
    return float(len(tokens)) if tokenizer == "seed" else sum(parse_timed_token(token)[1] for token in tokens)


@dataclass(frozen=True)
class Sounding:
    """One note or chord of a token sequence: where it starts and how long it lasts, in quarter notes.

    ``names`` are the pitches as the tokens spell them (``B-4``); a ``seed``
    chord token names pitch classes only, so its ``names`` are empty and its
    pitches exist only as ``midi`` numbers.
    """

    offset: float
    quarter_length: float
    midi: tuple[int, ...]
    names: tuple[str, ...] = ()


@lru_cache(maxsize=4096)
def _midi_number(name: str) -> int:
    """MIDI number of a pitch name with octave (``B-4`` → 70); SeqgenError when it is not one."""
    from music21 import pitch

    try:
        parsed = pitch.Pitch(name)
    except Exception as error:  # music21 raises several types on bad names
        raise SeqgenError(f"{name!r} is not a pitch name with octave (e.g. 'B-4').") from error
    if parsed.octave is None or not 0 <= parsed.midi <= 127:
        raise SeqgenError(f"{name!r} is not a pitch name with octave in the MIDI range (e.g. 'B-4').")
    return parsed.midi


def _seed_sounding(token: str, offset: float) -> Sounding:
    """A seed token (a pitch name or a normal order) one quarter note long."""
    if token and token[0].isdigit():
        pitch_classes = [int(part) for part in token.split(".") if part.isdigit()]
        if not pitch_classes:
            raise SeqgenError(f"{token!r} is not a seed chord token (expected pitch classes like '5.8.10').")
        # Pitch classes in octave 4, as the reference rebuilt chords.  A
        # one-pitch chord gets its octave double so it stays a chord in MIDI.
        midi_numbers = [60 + pc for pc in pitch_classes]
        if len(midi_numbers) == 1:
            midi_numbers.append(midi_numbers[0] + 12)
        return Sounding(offset, 1.0, tuple(midi_numbers))
    try:
        return Sounding(offset, 1.0, (_midi_number(token),), (token,))
    except SeqgenError as error:
        raise SeqgenError(f"{token!r} is not a seed note token (expected a pitch like 'B-4').") from error


def soundings(tokens: list[str], tokenizer: str) -> list[Sounding]:
    """The notes and chords that ``tokens`` play, in order (rests only move the clock).

    ``seed`` tokens sit one quarter note apart; ``timed`` tokens on their grid;
    ``events`` notes where their bar and position put them, each with its own
    length (notes of one onset and length are one chord).
    Raises SeqgenError naming the first token that is not of the tokenizer.
    """
    if check_tokenizer(tokenizer) == "events":
        return _event_soundings(tokens)
    played, offset = [], 0.0
    for token in tokens:
        if tokenizer == "seed":
            played.append(_seed_sounding(token, offset))
            offset += 1.0
            continue
        names, quarter_length = parse_timed_token(token)
        if names:
            try:
                midi_numbers = tuple(_midi_number(name) for name in names)
            except SeqgenError as error:
                raise SeqgenError(f"{token!r} holds an invalid pitch name.") from error
            played.append(Sounding(offset, quarter_length, midi_numbers, tuple(names)))
        offset += quarter_length
    return played


def _event_soundings(tokens: list[str]) -> list[Sounding]:
    """The notes of events tokens, grouped into chords by onset and length."""
    from seqgen import events

    chords: dict[tuple[float, float], list[int]] = {}
    for note in events.decode(tokens).notes:
        chords.setdefault((note.start, note.duration), []).append(note.pitch)
    return [Sounding(start, length, tuple(sorted(pitches)), tuple(midi_name(pitch) for pitch in sorted(pitches)))
            for (start, length), pitches in sorted(chords.items())]


def tokens_to_stream(tokens: list[str], tokenizer: str, tempo_bpm: float = 120.0, instrument_program: int = 0):
    """A music21 stream playing ``tokens`` (the notes of :func:`soundings`), for notation.

    Args:
        tokens: token strings of the given tokenizer.
        tokenizer: ``seed`` (one quarter note apart) or ``timed`` (grid onsets).
        tempo_bpm: metronome mark at the start.
        instrument_program: General MIDI program number (0 = acoustic grand piano).
    """
    from music21 import chord, instrument, note, stream, tempo

    part = stream.Part()
    part.insert(0, instrument.instrumentFromMidiProgram(int(instrument_program)))
    part.insert(0, tempo.MetronomeMark(number=float(tempo_bpm)))
    for sounding in soundings(tokens, tokenizer):
        if sounding.names:
            notes = [note.Note(name, quarterLength=sounding.quarter_length) for name in sounding.names]
        else:
            notes = [note.Note(midi=number, quarterLength=sounding.quarter_length) for number in sounding.midi]
        element = notes[0] if len(notes) == 1 else chord.Chord(notes, quarterLength=sounding.quarter_length)
        part.insert(sounding.offset, element)
    return part


def _note_ticks(tokens: list[str], tokenizer: str, start_quarters: float = 0.0) -> list[tuple[int, int, int]]:
    """``(start tick, end tick, MIDI number)`` of every note ``tokens`` play (:func:`soundings`), from ``start_quarters``."""
    ticks = []
    for sounding in soundings(tokens, tokenizer):
        start = int(round((start_quarters + sounding.offset) * MIDI_TICKS_PER_QUARTER))
        end = int(round((start_quarters + sounding.offset + sounding.quarter_length) * MIDI_TICKS_PER_QUARTER))
        ticks += [(start, end, number) for number in sounding.midi]
    return ticks


def midi_notes(tokens: list[str], tokenizer: str, tempo_bpm: float = 120.0, instrument_program: int = 0,
               start_quarters: float = 0.0) -> list:
    """The notes :func:`write_midi` writes for ``tokens``, as :class:`seqgen.synth.MidiNote` (times in seconds,
    on the MIDI file's tick grid), starting ``start_quarters`` in: what a renderer plays, without a file."""
    from seqgen.synth import MidiNote

    seconds_per_tick = 60.0 / float(tempo_bpm) / MIDI_TICKS_PER_QUARTER
    return [MidiNote(start * seconds_per_tick, end * seconds_per_tick, number, MIDI_VELOCITY, 1, int(instrument_program))
            for start, end, number in _note_ticks(tokens, tokenizer, start_quarters)]


def write_midi(tokens: list[str], path: Path, tokenizer: str, tempo_bpm: float = 120.0, instrument_program: int = 0) -> Path:
    """Write ``tokens`` as a one-track Standard MIDI File (atomically) and return its path.

    The track holds the instrument's name and program, the tempo, the time
    signatures (events tokens) and the notes of :func:`soundings` on channel 1, written straight with music21's MIDI
    classes: a hundred tokens cost a few milliseconds, where translating a
    music21 stream costs tens.
    """
    from music21 import instrument, meter, midi, tempo
    from music21.midi import translate

    from seqgen.files import write_atomic

    track = midi.MidiTrack(index=1)
    header = [*translate.getStartEvents(track, 1, instrument.instrumentFromMidiProgram(int(instrument_program))),
              *translate.tempoToMidiEvents(tempo.MetronomeMark(number=float(tempo_bpm)))]
    # (tick, kind, pitch or event): time signatures first, then note-offs, so a repeated pitch sounds again
    timeline: list[tuple[int, int, object]] = []
    last_tick = 0  # where the track ends: its last note's end, or (events) the end of that note's bar
    if tokenizer == "events":  # events tokens carry the metre: the file keeps it
        from seqgen import events as note_events

        decoded = note_events.decode(tokens)
        last_tick = int(round(decoded.length * MIDI_TICKS_PER_QUARTER))
        for start, numerator, denominator in decoded.time_signatures:
            signature = translate.timeSignatureToMidiEvents(meter.TimeSignature(f"{numerator}/{denominator}"), includeDeltaTime=False)[0]
            timeline.append((int(round(start * MIDI_TICKS_PER_QUARTER)), 0, signature))
    for start, end, number in _note_ticks(tokens, tokenizer):
        timeline += [(start, 2, number), (end, 1, number)]
    timeline.sort(key=lambda event: event[:2])
    events, now = [], 0
    for tick, kind, item in timeline:
        if kind == 0:
            event = item
        else:
            event = midi.MidiEvent(track, type=midi.ChannelVoiceMessages.NOTE_ON if kind == 2 else midi.ChannelVoiceMessages.NOTE_OFF,
                                   channel=1)
            event.pitch, event.velocity = item, MIDI_VELOCITY if kind == 2 else 0
        events += [midi.DeltaTime(track, time=tick - now, channel=1), event]
        now = tick
    end_of_track = midi.MidiEvent(track, type=midi.MetaEvents.END_OF_TRACK)
    end_of_track.data = b""
    track.events = [*header, *events, midi.DeltaTime(track, time=max(0, last_tick - now)), end_of_track]
    for event in track.events:
        event.track = track
    midi_file = midi.MidiFile()
    midi_file.ticksPerQuarterNote = MIDI_TICKS_PER_QUARTER
    midi_file.tracks.append(track)
    path = Path(path)
    write_atomic(path, midi_file.writestr())
    return path

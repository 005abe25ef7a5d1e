"""Musicality as the field measures it, from notes: polyphony, pitch-class entropy, groove, empty beats, endings.

Every measure reads notes, not token strings, so models of every tokenizer
(and MIDI files) are judged on one scale.  Notes are an array of shape
``(num_notes, 3)``: start and duration in quarter notes, MIDI pitch.  Times
are read on a grid of ``STEPS_PER_QUARTER`` steps (32nd notes, the events
tokenizer's finest position).

The measures follow MusPy's definitions (Dong et al., ISMIR 2020,
``muspy.metrics``), which gather those of Yang & Lerch (2018, "On the
evaluation of generative models in music") and later papers; each function
says where it departs from them.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from seqgen.errors import SeqgenError
from seqgen.quality import STEPS_PER_QUARTER, best_key

DEFAULT_BAR_QUARTERS = 4.0  # 4/4, where the tokens name no time signature
# Each measure with the words a table shows it under.
LABELS = {
    "polyphony": "notes sounding at each onset",
    "pitch_class_entropy": "pitch-class entropy (bits)",
    "groove_consistency": "groove consistency",
    "empty_beat_rate": "empty-beat rate",
    "ends_on_tonic": "ends on the tonic (share)",
}


def as_notes(notes) -> np.ndarray:
    """``notes`` (any sequence of ``(start, duration, pitch)``) as a float array of shape ``(num_notes, 3)``."""
    notes = np.asarray(notes, dtype=float).reshape(-1, 3)
    if (notes[:, :2] < 0).any():
        raise SeqgenError("Notes start at 0 quarter notes or later and last 0 or more: "
                          f"got {notes[(notes[:, :2] < 0).any(axis=1)][0].tolist()}.")
    return notes


def notes_of(tokens: list[str], tokenizer: str) -> np.ndarray:
    """The notes ``tokens`` play (:func:`seqgen.music.soundings`, one row per pitch), ``(num_notes, 3)``.

    Events notes come straight from :func:`seqgen.events.decode`: the same
    notes ``soundings`` groups into chords, without spelling their names
    (which costs more than decoding them).
    """
    from seqgen.music import check_tokenizer, soundings

    if check_tokenizer(tokenizer) == "events":
        from seqgen.events import decode

        return as_notes([(note.start, note.duration, note.pitch) for note in decode(tokens).notes])
    return as_notes([(sounding.offset, sounding.quarter_length, pitch)
                     for sounding in soundings(tokens, tokenizer) for pitch in sounding.midi])


def notes_from_midi(path: Path) -> np.ndarray:
    """The notes of every non-drum track of a MIDI file (read by symusic), in quarter notes, ordered by start."""
    import symusic

    try:
        score = symusic.Score(str(path))
    except Exception as error:  # symusic raises RuntimeError or ValueError on unreadable files
        raise SeqgenError(f"{Path(path).name}: not a readable MIDI file ({error}).") from error
    per_quarter = float(score.ticks_per_quarter)
    rows = [track.notes.numpy() for track in score.tracks if not track.is_drum]
    notes = as_notes(np.concatenate([np.stack([row["time"], row["duration"], row["pitch"]], axis=1) for row in rows])
                     if rows else [])
    notes[:, :2] /= per_quarter
    return notes[np.lexsort((notes[:, 2], notes[:, 0]))]


def bar_length(tokens: list[str], tokenizer: str) -> float:
    """Quarter notes per bar: the first time signature of events tokens, else 4/4 (seed and timed tokens have none)."""
    if tokenizer != "events":
        return DEFAULT_BAR_QUARTERS
    from seqgen.events import decode

    signatures = decode(tokens).time_signatures
    return signatures[0][1] * 4.0 / signatures[0][2] if signatures else DEFAULT_BAR_QUARTERS


def _steps(notes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start and end steps on the grid (every note lasts at least one step) and integer pitches."""
    starts = np.rint(notes[:, 0] * STEPS_PER_QUARTER).astype(int)
    ends = np.maximum(starts + 1, np.rint(notes[:, :2].sum(axis=1) * STEPS_PER_QUARTER).astype(int))
    return starts, ends, notes[:, 2].astype(int)


def _sounding(notes: np.ndarray) -> np.ndarray:
    """How many notes sound at each grid step, up to the last note's end: ``(steps,)``."""
    starts, ends, _ = _steps(notes)
    changes = np.bincount(starts, minlength=ends.max() + 1) - np.bincount(ends, minlength=ends.max() + 1)
    return np.cumsum(changes)[:-1]


def polyphony(notes) -> float | None:
    """Mean number of notes sounding at each onset (those starting there and those still held); None without notes.

    Each voice counts, as a listener counts the parts of a chorale: Bach's
    chorales sound about 4.3 notes per onset.  MusPy's ``polyphony`` averages
    the number of *pitches* sounding over every time step where one sounds
    instead: a long chord weighs more, and a unison of two voices counts once
    (its piano roll holds a pitch or not); it gives about 4.0 on the chorales.
    """
    notes = as_notes(notes)
    if not len(notes):
        return None
    return float(_sounding(notes)[np.unique(_steps(notes)[0])].mean())


def pitch_class_entropy(notes) -> float | None:
    """Shannon entropy in bits of the pitch-class histogram, each note counted once; None without notes.

    MusPy's ``pitch_class_entropy`` (Wu & Yang 2020): 0 for one pitch class,
    log2(12) ≈ 3.585 for all twelve equally.
    """
    notes = as_notes(notes)
    if not len(notes):
        return None
    shares = np.bincount(notes[:, 2].astype(int) % 12, minlength=12) / len(notes)
    shares = shares[shares > 0]
    return float(-(shares * np.log2(shares)).sum()) + 0.0  # + 0.0: one pitch class gives 0.0, not -0.0


def groove_consistency(notes, bar_quarters: float = DEFAULT_BAR_QUARTERS) -> float | None:
    """1 minus the mean Hamming distance between consecutive bars' onset patterns; None under two bars.

    MusPy's ``groove_consistency`` (Wu & Yang 2020): each bar's pattern marks
    the grid steps where a note starts; the distance is the share of steps
    that differ.  Bars count from time 0 up to the bar of the last note's end;
    MusPy counts one bar more when the music ends on a bar line (an empty bar
    that would lower the score of every piece that ends cleanly).
    """
    if bar_quarters <= 0:
        raise SeqgenError(f"A bar must last more than 0 quarter notes (got {bar_quarters}).")
    notes = as_notes(notes)
    bar_steps = max(1, int(round(bar_quarters * STEPS_PER_QUARTER)))
    if not len(notes):
        return None
    starts, ends, _ = _steps(notes)
    bars = math.ceil(ends.max() / bar_steps)
    if bars < 2:
        return None
    patterns = np.zeros((bars, bar_steps), dtype=bool)
    patterns[starts // bar_steps, starts % bar_steps] = True
    return float(1 - np.count_nonzero(patterns[:-1] != patterns[1:]) / (bar_steps * (bars - 1)))


def empty_beat_rate(notes) -> float | None:
    """Share of beats (quarter notes) in which no note sounds; None without notes.

    MusPy's ``empty_beat_rate`` (after Pypianoroll): a beat is empty when no
    note is played in it, a held note filling the beats it lasts through.
    Beats count from the first note's beat to the last note's end (a passage
    cut from a piece does not start with the silence before its first note),
    and a note that ends on a beat line leaves the next beat alone; MusPy
    counts from time 0 and marks the beat a note ends on as well.
    """
    notes = as_notes(notes)
    if not len(notes):
        return None
    steps = _sounding(notes) > 0
    beats = math.ceil(len(steps) / STEPS_PER_QUARTER)
    sounding = np.pad(steps, (0, beats * STEPS_PER_QUARTER - len(steps))).reshape(beats, STEPS_PER_QUARTER).any(axis=1)
    first = _steps(notes)[0].min() // STEPS_PER_QUARTER
    return float(1 - sounding[first:].mean())


def ends_on_tonic(notes) -> bool | None:
    """Whether the lowest note of the last onset is the tonic of the best-fitting key; None without a key.

    The key is Krumhansl-Schmuckler's (:func:`seqgen.quality.best_key`) on the
    duration-weighted pitch-class profile.  A cadence ends on the tonic in
    the bass; for a whole piece this is how it ends (folk-rnn, the chorales).
    """
    notes = as_notes(notes)
    if not len(notes):
        return None
    key = best_key(np.bincount(notes[:, 2].astype(int) % 12, weights=notes[:, 1], minlength=12))
    if key is None:
        return None
    starts, _, pitches = _steps(notes)
    return bool(pitches[starts == starts.max()].min() % 12 == key[0])


def musicality(notes, bar_quarters: float = DEFAULT_BAR_QUARTERS) -> dict[str, float | bool | None]:
    """Every measure of ``notes`` (None where undefined: no notes, under two bars, no key), keyed as in ``LABELS``."""
    notes = as_notes(notes)
    return {"polyphony": polyphony(notes), "pitch_class_entropy": pitch_class_entropy(notes),
            "groove_consistency": groove_consistency(notes, bar_quarters), "empty_beat_rate": empty_beat_rate(notes),
            "ends_on_tonic": ends_on_tonic(notes)}


def musicality_of(tokens: list[str], tokenizer: str) -> dict[str, float | bool | None]:
    """:func:`musicality` of the notes ``tokens`` play, with their bar (:func:`bar_length`)."""
    return musicality(notes_of(tokens, tokenizer), bar_length(tokens, tokenizer))


def table_lines(table: dict[str, dict]) -> list[str]:
    """The ``musicality`` table of ``seqgen evaluate`` (:func:`seqgen.evaluate.musicality_table`) as Markdown lines."""
    def shown(value) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    lines = ["", "Musicality, from the notes (MusPy's definitions):", "",
             "| | generated | corpus windows | unigram sampler | gap closed |", "|---|---|---|---|---|"]
    for name, row in table.items():
        closed = "n/a" if row["gap_closed"] is None else f"{row['gap_closed']:.0%}"
        lines.append(f"| {LABELS.get(name, name)} | {shown(row['generated'])} | {shown(row['corpus'])} | {shown(row['unigram'])} | {closed} |")
    return lines

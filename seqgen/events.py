"""Note events: scores ⇄ REMI tokens through miditok, MIDI read by symusic; pieces with a start and an end.

The ``events`` tokenizer keeps what the ``seed`` and ``timed`` symbols lose:
every note of every voice with its own duration (a held note stays held while
other voices move), bars, positions in the bar and the time signature.

* **Reading.**  MIDI files are read by symusic (C++, about a millisecond a
  file).  MusicXML, kern and abc are parsed by music21, and their parts' notes
  copied into a symusic score on MIDI's tick grid (music21's own MIDI writer
  fails on many abc collections and badly formed repeats); a score that opens
  with a pickup bar is shifted so its first downbeat falls on a bar line.  An
  abc file holding several tunes gives one piece per tune.
* **Tokens.**  miditok's REMI (Huang & Yang 2020): ``Bar_None``,
  ``TimeSig_3/4``, ``Position_8`` (in 32nd notes from the bar line: beat 2),
  then ``Pitch_60 Duration_1.0.8`` for each note starting there, lowest pitch
  first.  All non-drum tracks are merged into one stream (voices are not
  named; the score splits them again by pitch).  Velocity is off: scores carry
  none.  REMI rather than TSD because its bar and position tokens say where the
  beat is, which a chorale's cadences and a tune's ending depend on (TSD's time
  shifts do not); on the Bach chorales it costs 5 % more tokens (bench/reading.py).
* **Pieces.**  Each piece is ``BOS_None … Bar_None EOS_None``: the closing bar
  line then the end, so a model learns that a piece stops at a bar line, and a
  generated piece is read back up to its last complete bar.
* **Grid.**  Positions and durations are on miditok's grid: 8 steps a beat up to
  4 beats, 4 steps a beat up to 12 (a longer note is cut to 12 beats).  Notes
  already on that grid come back exactly (the round-trip tests); others are
  rounded to it when read.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from seqgen.errors import SeqgenError

VERSION = 1  # bump when the tokens for a file change (part of the cache key with the config digest)
START, END, BAR = "BOS_None", "EOS_None", "Bar_None"
MIDI_SUFFIXES = (".mid", ".midi")
BEAT_RESOLUTION = {(0, 4): 8, (4, 12): 4}  # grid steps per beat, by note length in beats
TIME_SIGNATURES = {8: [3, 6, 9, 12], 4: [1, 2, 3, 4, 5, 6], 2: [1, 2, 3, 4]}  # denominator: numerators
PITCH_RANGE = (21, 109)  # the piano's 88 keys
TICKS_PER_QUARTER = 480  # the resolution of the scores built from music21 notes (MIDI's usual)


@lru_cache(maxsize=1)
def remi():
    """The project's miditok REMI tokenizer (built once per process)."""
    import miditok

    config = miditok.TokenizerConfig(
        pitch_range=PITCH_RANGE, beat_res=BEAT_RESOLUTION, use_velocities=False, use_time_signatures=True,
        time_signature_range=TIME_SIGNATURES, use_pitchdrum_tokens=False, special_tokens=["PAD", "BOS", "EOS"],
    )
    return miditok.REMI(config)


@lru_cache(maxsize=1)
def config_digest() -> str:
    """Eight hex digits naming the tokenizer's configuration: part of the token cache's key."""
    settings = {"version": VERSION, "beat_res": str(BEAT_RESOLUTION), "time_signatures": str(TIME_SIGNATURES),
                "pitch_range": PITCH_RANGE, "vocab": sorted(remi().vocab)}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]


def vocabulary() -> set[str]:
    """Every token the tokenizer can write (padding excluded)."""
    return {token for token in remi().vocab if token != "PAD_None"}


# -- reading ---------------------------------------------------------------


def _midi_score(data: bytes, name: str):
    """A MIDI file's bytes as a symusic Score; SeqgenError naming the file when they are not MIDI."""
    import symusic

    try:
        return symusic.Score.from_midi(data)
    except Exception as error:  # symusic raises RuntimeError/ValueError with a C++ message
        raise SeqgenError(f"{name}: not a readable MIDI file ({error}).") from error


def _pickup_quarters(part) -> float:
    """How much of a full bar a music21 part's opening pickup lacks (0 when it starts on a downbeat)."""
    from music21 import stream

    first = part.getElementsByClass(stream.Measure).first()
    return float(first.paddingLeft or 0.0) if first is not None else 0.0


def _from_music21(path: Path) -> list:
    """Each score of a MusicXML, kern or abc file as a symusic Score: every part's notes (ties merged, grace notes
    and unpitched percussion left out, repeats played once as in the other tokenizers) and the time signatures."""
    import symusic
    from music21 import chord, meter, note

    from seqgen.scorefile import parse_score, scores_in

    def ticks(quarters) -> int:
        return int(round(float(quarters) * TICKS_PER_QUARTER))

    pieces = []
    for score in scores_in(parse_score(path)):
        parts = list(score.parts) or [score]
        shift = _pickup_quarters(parts[0])
        piece = symusic.Score(TICKS_PER_QUARTER)
        for part in parts:
            track = symusic.Track(name=str(part.partName or ""), program=0, is_drum=False)
            for element in part.stripTies(matchByPitch=True).flatten().notes:
                if element.duration.isGrace or element.quarterLength <= 0:
                    continue
                if isinstance(element, note.Note):
                    pitches = [element.pitch]
                elif isinstance(element, chord.Chord):
                    pitches = list(element.pitches)
                else:  # unpitched percussion
                    continue
                start, length = ticks(element.offset + shift), max(1, ticks(element.quarterLength))
                for pitch in pitches:
                    track.notes.append(symusic.Note(start, length, int(round(pitch.ps)), 90))
            piece.tracks.append(track)
        signatures = {}  # tick: (numerator, denominator), only those the tokenizer knows
        for signature in parts[0].flatten().getElementsByClass(meter.TimeSignature):
            if signature.numerator in TIME_SIGNATURES.get(signature.denominator, ()):
                signatures.setdefault(0 if signature.offset == 0 else ticks(signature.offset + shift),
                                      (signature.numerator, signature.denominator))
        if signatures and 0 not in signatures:  # a tune whose metre is stated late (some abc files): it holds from the start
            signatures[0] = signatures[min(signatures)]
        for at, (numerator, denominator) in sorted(signatures.items()):
            piece.time_signatures.append(symusic.TimeSignature(at, numerator, denominator))
        pieces.append(piece)
    return pieces


def read_pieces(path: Path) -> list:
    """The pieces in a score file as symusic Scores: MIDI directly, other formats through music21."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise SeqgenError(f"{path.name}: the file is empty (0 bytes).")
    if path.suffix.lower() in MIDI_SUFFIXES:
        return [_midi_score(path.read_bytes(), path.name)]
    return _from_music21(path)


def merged(score):
    """One track holding every non-drum note of ``score``, ordered by onset, then pitch (lowest first)."""
    import symusic

    arrays = [track.notes.numpy() for track in score.tracks if not track.is_drum and len(track.notes)]
    result = symusic.Score(score.ticks_per_quarter)
    result.time_signatures = score.time_signatures.copy()
    track = symusic.Track(name="all voices", program=0, is_drum=False)
    if arrays:
        fields = {key: np.concatenate([array[key] for array in arrays]) for key in ("time", "duration", "pitch", "velocity")}
        order = np.lexsort((fields["duration"], fields["pitch"], fields["time"]))
        track.notes = symusic.Note.from_numpy(*(fields[key][order] for key in ("time", "duration", "pitch", "velocity")))
    result.tracks.append(track)
    return result


def encode_piece(score) -> list[str]:
    """One piece's tokens: ``BOS_None``, the REMI tokens of all its voices, ``Bar_None EOS_None``; [] when it has no notes."""
    one = merged(score)
    if not len(one.tracks[0].notes):
        return []
    sequences = remi().encode(one)
    tokens = (sequences[0] if isinstance(sequences, list) else sequences).tokens
    if not any(token.startswith("Pitch_") for token in tokens):
        return []  # every note was outside the piano's range
    return [START, *tokens, BAR, END]


def tokenize_file(path: Path) -> list[str]:
    """Tokens of every piece in a score file, one after another; SeqgenError names the file on failure."""
    tokens = []
    for piece in read_pieces(path):
        try:
            tokens += encode_piece(piece)
        except SeqgenError:
            raise
        except Exception as error:  # miditok's own errors
            raise SeqgenError(f"{Path(path).name}: could not turn its notes into events ({type(error).__name__}: {error}).") from error
    return tokens


# -- tokens back to notes ----------------------------------------------------


@dataclass(frozen=True, order=True)
class EventNote:
    """One note of an event sequence, in quarter notes from the start of the sequence's first bar."""

    start: float
    duration: float
    pitch: int


def check_tokens(tokens) -> None:
    """SeqgenError naming the first token that is not an ``events`` token."""
    known = vocabulary()
    for position, token in enumerate(tokens):
        if token not in known:
            raise SeqgenError(f"{token!r} (token {position + 1}) is not an events token "
                              f"(expected tokens like 'Bar_None', 'Position_8', 'Pitch_60', 'Duration_1.0.8').")


@dataclass(frozen=True)
class Decoded:
    """What an event sequence plays: its notes and where its last bar ends (both in quarter notes)."""

    notes: list[EventNote]
    length: float  # up to the end of the bar of the last note's end: a piece ends on a complete bar
    time_signatures: list[tuple[float, int, int]]  # (start in quarters, numerator, denominator)


def decode(tokens) -> Decoded:
    """The notes an event sequence plays; ``BOS``/``EOS`` tokens are skipped, a sequence that starts mid-bar is read
    from the bar line before it (4/4 until a time signature says otherwise)."""
    import miditok

    tokens = list(tokens)
    check_tokens(tokens)
    body = [token for token in tokens if token not in (START, END)]
    if not body:
        return Decoded([], 0.0, [])
    score = remi().decode([miditok.TokSequence(tokens=body)])
    per_quarter = float(score.ticks_per_quarter)
    notes = sorted(
        EventNote(note.time / per_quarter, note.duration / per_quarter, int(note.pitch))
        for track in score.tracks for note in track.notes
    )
    last = max((note.start + note.duration for note in notes), default=0.0)
    signatures = [(signature.time / per_quarter, signature.numerator, signature.denominator) for signature in score.time_signatures]
    return Decoded(notes, _bar_end(score, last, per_quarter), signatures)


def _bar_end(score, time: float, per_quarter: float) -> float:
    """The first bar line at or after ``time`` (quarters), with the score's time signatures."""
    bar_start, numerator, denominator, signatures = 0.0, 4, 4, list(score.time_signatures)
    for signature in signatures:
        at = signature.time / per_quarter
        if at > time:
            break
        bar_start, numerator, denominator = at, signature.numerator, signature.denominator
    bar = numerator * 4.0 / denominator
    return bar_start + bar * max(0, math.ceil((time - bar_start) / bar - 1e-9))


# -- reading tokens ------------------------------------------------------------

NOTE_NAMES = ("C", "C♯", "D", "E♭", "E", "F", "F♯", "G", "G♯", "A", "B♭", "B")  # as music21 spells MIDI
DURATION_SIGNS = {0.25: "𝅘𝅥𝅯", 0.5: "♪", 0.75: "♪.", 1.0: "♩", 1.5: "♩.", 2.0: "𝅗𝅥", 3.0: "𝅗𝅥.", 4.0: "𝅝"}


def pitch_name(number: int) -> str:
    """``60`` → ``C4`` (sharps and flats as signs)."""
    return f"{NOTE_NAMES[number % 12]}{number // 12 - 1}"


def _fraction(value: float) -> str:
    whole, part = int(value), value - int(value)
    halves = {0.25: "¼", 0.5: "½", 0.75: "¾"}
    for amount, sign in halves.items():
        if abs(part - amount) < 1e-6:
            return f"{whole}{sign}" if whole else sign
    return f"{value:g}"


def duration_quarters(token: str) -> float:
    """A ``Duration_B.S.R`` token's length in quarter notes (``Duration_1.4.8`` → 1.5)."""
    beats, steps, resolution = (int(part) for part in token.partition("_")[2].split("."))
    return beats + steps / resolution


def duration_sign(beats: float) -> str:
    """A length in beats as a note sign (``1.5`` → ``♩.``), or as a number of beats when no sign fits."""
    return DURATION_SIGNS.get(beats, f"{_fraction(beats)} beats")


def display_token(token: str) -> str:
    """An events token as people read it: ``bar``, ``beat 2½``, ``C4``, ``♩.``, ``3/4``, ``start``, ``end``."""
    kind, _, value = token.partition("_")
    if token == BAR:
        return "bar"
    if token == START:
        return "start"
    if token == END:
        return "end"
    if kind == "Position":
        return f"beat {_fraction(1 + int(value) / BEAT_RESOLUTION[(0, 4)])}"
    if kind == "Pitch" and value.isdigit():
        return pitch_name(int(value))
    if kind == "Duration":
        return duration_sign(duration_quarters(token))
    if kind == "TimeSig":
        return value
    return token


# -- the order REMI tokens come in -------------------------------------------------

KINDS = ("Bar", "TimeSig", "Position", "Pitch", "Duration", "BOS", "EOS")
MAX_UNISON = 2  # the same pitch twice at one onset: two voices on one note (alto and tenor); more is a stutter


@dataclass
class GrammarState:
    """Where a sequence stands in REMI's order: the last token's kind, the position in the bar and the last pitch
    there (None: not known yet, e.g. a primer that starts mid-note)."""

    kind: str | None = None
    position: int = -1
    pitch: int = -1
    same_pitch: int = 0
    sounded: bool = True  # a note since the piece's start (unknown: assumed): a piece may not end before its first note
    length: int = 1 << 30  # tokens since the piece's start (unknown: long enough)


class Grammar:
    """Which events tokens may come next, so that every generated sequence reads as music.

    The order :func:`encode_piece` writes: a piece's start, then bars; a bar
    line, its time signature, then positions later and later in the bar; at
    each position one or more notes, each a pitch then its duration, pitches
    from low to high (one unison at most).  A piece ends after a bar line, not
    before its first note, and (``shortest``) not sooner than the corpus's
    shortest piece: the model's end token is a choice of where, not whether,
    a piece of its corpus's kind ends.  A
    model learns this order, but an LSTM of a few hundred units slips now and
    then (a position that goes back in time stacks notes on notes); the
    sampler gives the tokens this order rules out no chance.
    """

    def __init__(self, tokens, shortest: int = 0):
        self.tokens = list(tokens)
        self.shortest = shortest  # tokens: no piece ends sooner (the corpus's shortest piece)
        self.kind = np.array([token.partition("_")[0] for token in self.tokens])
        self.value = np.array([int(token.partition("_")[2]) if token.partition("_")[2].isdigit() else -1 for token in self.tokens])
        self.masks = {kind: self.kind == kind for kind in KINDS}

    def advance(self, state: GrammarState, token_id: int) -> GrammarState:
        """The state after one more token."""
        kind, value = str(self.kind[token_id]), int(self.value[token_id])
        if kind in ("BOS", "EOS"):
            return GrammarState(kind, sounded=False, length=0)
        length = state.length + 1
        if kind == "Bar":
            return GrammarState(kind, sounded=state.sounded, length=length)
        if kind == "TimeSig":
            return GrammarState(kind, state.position, sounded=state.sounded, length=length)
        if kind == "Position":
            return GrammarState(kind, value, sounded=state.sounded, length=length)
        if kind == "Pitch":
            same = state.same_pitch + 1 if value == state.pitch else 1
            return GrammarState(kind, state.position, value, same, True, length)
        if kind == "Duration":
            return GrammarState(kind, state.position, state.pitch, state.same_pitch, state.sounded, length)
        return GrammarState()

    def state_after(self, token_ids) -> GrammarState:
        """The state after a primer's tokens (unknown until one of them says where it stands)."""
        state = GrammarState()
        for token_id in token_ids:
            state = self.advance(state, int(token_id))
        return state

    def allowed(self, state: GrammarState) -> np.ndarray:
        """A boolean mask ``(V,)`` of the tokens that may follow ``state``."""
        masks = self.masks
        if state.kind is None:
            return np.ones(len(self.tokens), dtype=bool)
        if state.kind == "BOS":
            return masks["Bar"].copy()
        if state.kind == "EOS":
            return masks["BOS"].copy()
        if state.kind == "Bar":
            ends = state.sounded and state.length >= self.shortest
            return masks["TimeSig"] | masks["Position"] | masks["Bar"] | (masks["EOS"] & ends)
        if state.kind == "TimeSig":
            return masks["Position"] | masks["Bar"]
        if state.kind in ("Position", "Pitch"):
            return masks["Pitch" if state.kind == "Position" else "Duration"].copy()
        # After a note's duration: a higher pitch (or one unison) here, a later position, or the next bar.
        higher = masks["Pitch"] & ((self.value > state.pitch) | ((self.value == state.pitch) & (state.same_pitch < MAX_UNISON)))
        return higher | (masks["Position"] & (self.value > state.position)) | masks["Bar"]


def piece_spans(vocab, corpus_ids) -> np.ndarray:
    """``(start, end)`` index pairs of every whole piece in an encoded corpus (its start token, its end token)."""
    if corpus_ids is None or START not in vocab or END not in vocab:
        return np.zeros((0, 2), dtype=int)
    ids = np.asarray(corpus_ids)
    start_id, end_id = vocab.encode([START, END])
    starts, ends = np.flatnonzero(ids == start_id), np.flatnonzero(ids == end_id)
    following = np.searchsorted(ends, starts)
    keep = following < len(ends)
    return np.stack([starts[keep], ends[following[keep]]], axis=1)


def piece_lengths(vocab, corpus_ids) -> np.ndarray:
    """The length of every whole piece in an encoded corpus, in tokens between its start and end tokens."""
    spans = piece_spans(vocab, corpus_ids)
    return spans[:, 1] - spans[:, 0] - 1


def shortest_piece(vocab, corpus_ids) -> int:
    """The corpus's shortest piece in tokens (0 when it keeps no corpus or no pieces)."""
    lengths = piece_lengths(vocab, corpus_ids)
    return int(lengths.min()) if len(lengths) else 0

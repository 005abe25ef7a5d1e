"""The built-in synthesizer: a MIDI file's notes (tempo map applied) played as NumPy additive tones.

Each note is a few harmonics shaped by an ADSR envelope, with a timbre per
General MIDI instrument family and simple noise drums on channel 10.  It is
the fallback when FluidSynth or a SoundFont is missing (see
:mod:`seqgen.audio`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqgen.errors import SeqgenError

PEAK_LEVEL = 0.89  # -1 dBFS: loud, with headroom for lossy encoders (both renderers normalise to it)
TAIL_SECONDS = 0.1  # quiet padding after the last note's release


@dataclass(frozen=True)
class MidiNote:
    """One note of a MIDI file, times in seconds (tempo map applied)."""

    start: float
    end: float
    pitch: int
    velocity: int
    channel: int  # 1-16; 10 is General MIDI percussion
    program: int  # General MIDI program 0-127 in force when the note started


# --- reading MIDI ------------------------------------------------------------------------------


def _check_midi_file(path: Path) -> None:
    """Raise SeqgenError unless ``path`` looks like a Standard MIDI File."""
    if not path.is_file():
        raise SeqgenError(f"{path}: no such MIDI file.")
    with path.open("rb") as handle:
        header = handle.read(16)
    if not header:
        raise SeqgenError(f"{path.name}: the file is empty (0 bytes), not a MIDI file.")
    # Standard MIDI Files start with "MThd"; RIFF-wrapped ones (.rmi) carry "RMID".
    if not (header.startswith(b"MThd") or (header.startswith(b"RIFF") and header[8:12] == b"RMID")):
        raise SeqgenError(f"{path.name}: not a MIDI file (it does not start with the 'MThd' header).")


def _read_midi_file(path: Path):
    from music21 import midi

    midi_file = midi.MidiFile()
    try:
        midi_file.open(str(path))
        try:
            midi_file.read()
        finally:
            midi_file.close()
    except Exception as error:  # music21 raises several unrelated types on broken files
        raise SeqgenError(f"{path.name}: could not read it as MIDI ({type(error).__name__}: {error}).") from error
    return midi_file


def read_midi_notes(midi_path: Path) -> list[MidiNote]:
    """Every note of a MIDI file with start/end in seconds, following its tempo changes.

    Events of all tracks are merged in time order, as a MIDI player sees them:
    channel state (program, sounding notes) is per channel, not per track.  A
    note-on with velocity 0 is a note-off; notes still sounding at the end stop
    at the last event.

    Raises:
        SeqgenError: naming the file when it is not a readable MIDI file.
    """
    from music21 import midi

    path = Path(midi_path)
    _check_midi_file(path)
    midi_file = _read_midi_file(path)
    ticks_per_quarter = midi_file.ticksPerQuarterNote
    if not ticks_per_quarter or ticks_per_quarter <= 0:
        raise SeqgenError(f"{path.name}: SMPTE time division is not supported; save it with ticks per quarter note.")

    events = []  # (tick, order, event)
    order = 0
    for track in midi_file.tracks:
        now = 0
        for event in track.events:
            if isinstance(event, midi.DeltaTime):
                now += int(event.time or 0)
                continue
            events.append((now, order, event))
            order += 1
    events.sort(key=lambda item: (item[0], item[1]))

    # Tempo map: seconds at each tempo change, then linear between changes.
    tempo_ticks, tempo_seconds, tempo_rates = [0], [0.0], [0.5 / ticks_per_quarter]  # 120 bpm by default
    for tick, _, event in events:
        if event.type == midi.MetaEvents.SET_TEMPO and event.data and len(event.data) >= 3:
            microseconds = int.from_bytes(bytes(event.data[:3]), "big")
            if microseconds <= 0:
                continue
            seconds = tempo_seconds[-1] + (tick - tempo_ticks[-1]) * tempo_rates[-1]
            if tick == tempo_ticks[-1]:
                tempo_rates[-1] = microseconds / 1e6 / ticks_per_quarter
            else:
                tempo_ticks.append(tick)
                tempo_seconds.append(seconds)
                tempo_rates.append(microseconds / 1e6 / ticks_per_quarter)

    def to_seconds(tick: int) -> float:
        index = int(np.searchsorted(tempo_ticks, tick, side="right")) - 1
        return tempo_seconds[index] + (tick - tempo_ticks[index]) * tempo_rates[index]

    programs = {channel: 0 for channel in range(1, 17)}
    sounding: dict[tuple[int, int], list[tuple[int, int, int]]] = {}  # (channel, pitch) -> [(tick, velocity, program)]
    notes: list[MidiNote] = []
    last_tick = events[-1][0] if events else 0
    for tick, _, event in events:
        kind = event.type
        if kind == midi.ChannelVoiceMessages.PROGRAM_CHANGE:
            programs[event.channel] = int(event.data or 0) % 128
        elif kind in (midi.ChannelVoiceMessages.NOTE_ON, midi.ChannelVoiceMessages.NOTE_OFF):
            key = (event.channel, int(event.pitch))
            if kind == midi.ChannelVoiceMessages.NOTE_ON and (event.velocity or 0) > 0:
                sounding.setdefault(key, []).append((tick, int(event.velocity), programs[event.channel]))
            elif sounding.get(key):
                start_tick, velocity, program = sounding[key].pop(0)
                notes.append(MidiNote(to_seconds(start_tick), to_seconds(tick), key[1], velocity, key[0], program))
    for (channel, pitch), pending in sounding.items():
        for start_tick, velocity, program in pending:
            notes.append(MidiNote(to_seconds(start_tick), to_seconds(max(last_tick, start_tick)), pitch, velocity, channel, program))
    notes.sort(key=lambda note: (note.start, note.pitch))
    return notes


def midi_duration(midi_path: Path) -> float:
    """Seconds from the start to the last note-off of a MIDI file (0.0 without notes)."""
    notes = read_midi_notes(midi_path)
    return max((note.end for note in notes), default=0.0)


# --- the built-in synthesizer ------------------------------------------------------------------


@dataclass(frozen=True)
class _Timbre:
    harmonics: tuple[float, ...]  # amplitude of partials 1, 2, 3, ...
    attack: float  # seconds from silence to full level
    decay: float  # seconds from full level down to the sustain level
    sustain: float  # level held until the note-off (0-1)
    release: float  # seconds from the note-off to silence
    damping: float  # per second and partial: upper partials fade faster (plucked/struck sounds)


# One timbre per General MIDI family (program // 8).  Not realistic, but a
# piano decays, an organ holds and strings swell, so a melody stays legible.
_PIANO = _Timbre((1.0, 0.45, 0.25, 0.12, 0.06), 0.005, 0.7, 0.35, 0.25, 1.5)
_MALLET = _Timbre((1.0, 0.1, 0.3, 0.05), 0.002, 0.4, 0.1, 0.3, 2.0)
_ORGAN = _Timbre((1.0, 0.6, 0.4, 0.25, 0.15, 0.1), 0.02, 0.05, 0.9, 0.08, 0.0)
_PLUCKED = _Timbre((1.0, 0.6, 0.35, 0.2, 0.1), 0.003, 0.5, 0.2, 0.2, 3.0)
_BOWED = _Timbre((1.0, 0.5, 0.33, 0.25, 0.2, 0.15), 0.08, 0.15, 0.8, 0.3, 0.0)
_WIND = _Timbre((1.0, 0.2, 0.4, 0.1, 0.15), 0.04, 0.1, 0.85, 0.12, 0.0)
_SYNTH = _Timbre((1.0, 0.5, 0.33, 0.25, 0.2), 0.01, 0.2, 0.7, 0.2, 0.0)
_FAMILY_TIMBRES = (
    _PIANO, _MALLET, _ORGAN, _PLUCKED,  # pianos, chromatic percussion, organs, guitars
    _PLUCKED, _BOWED, _BOWED, _WIND,  # basses, strings, ensembles, brass
    _WIND, _WIND, _SYNTH, _SYNTH,  # reeds, pipes, synth leads, synth pads
    _SYNTH, _PLUCKED, _MALLET, _MALLET,  # synth effects, ethnic, percussive, sound effects
)
PERCUSSION_CHANNEL = 10


def _tone(pitch: int, timbre: _Timbre, hold_samples: int, sample_rate: int) -> np.ndarray:
    """One note at unit velocity: additive partials times an ADSR envelope, release included."""
    release_samples = max(1, int(round(timbre.release * sample_rate)))
    total = hold_samples + release_samples
    time = np.arange(total) / sample_rate
    frequency = 440.0 * 2.0 ** ((pitch - 69) / 12.0)
    wave = np.zeros(total)
    for number, amplitude in enumerate(timbre.harmonics, start=1):
        if frequency * number >= sample_rate / 2:  # above Nyquist it would alias
            break
        partial = amplitude * np.sin(2 * np.pi * frequency * number * time)
        if timbre.damping:
            partial *= np.exp(-timbre.damping * (number - 1) * time)
        wave += partial

    # ADSR: attack and decay run from the onset (cut short by an early note-off);
    # the release starts from whatever level the note-off found.
    attack = max(1, int(round(timbre.attack * sample_rate)))
    decay = max(1, int(round(timbre.decay * sample_rate)))
    held = np.arange(hold_samples, dtype=float)
    envelope_hold = np.where(
        held < attack,
        held / attack,
        np.where(held < attack + decay, 1.0 - (1.0 - timbre.sustain) * (held - attack) / decay, timbre.sustain),
    )
    level_at_release = envelope_hold[-1] if hold_samples else 0.0
    envelope_release = level_at_release * np.linspace(1.0, 0.0, release_samples) ** 2
    return wave * np.concatenate([envelope_hold, envelope_release]) / sum(timbre.harmonics)


def _drum(pitch: int, sample_rate: int) -> np.ndarray:
    """A short decaying noise burst for a General MIDI percussion note (deterministic per pitch)."""
    length = int(0.2 * sample_rate)
    noise = np.random.default_rng(pitch).uniform(-1.0, 1.0, length)
    # Low drum numbers (kicks, toms) ring a little longer than cymbals and hi-hats.
    decay = 0.03 + 0.05 * max(0.0, (60 - pitch) / 25)
    return 0.5 * noise * np.exp(-np.arange(length) / (decay * sample_rate))


def synthesize(notes: list[MidiNote], sample_rate: int = 44100) -> np.ndarray:
    """Mix ``notes`` into a mono signal, peak normalised to ``PEAK_LEVEL``.

    Returns:
        float64 array of shape ``(num_samples,)``.
    """
    if not notes:
        raise SeqgenError("There are no notes to render.")
    cache: dict[tuple[int, int, int], np.ndarray] = {}  # (pitch, family, hold) -> tone; melodies repeat notes
    pieces = []
    for note in notes:
        start = int(round(note.start * sample_rate))
        if note.channel == PERCUSSION_CHANNEL:
            key = (note.pitch, -1, 0)
            if key not in cache:
                cache[key] = _drum(note.pitch, sample_rate)
        else:
            family = note.program // 8
            # Very short notes still get a few milliseconds so they are heard.
            hold = max(int(round((note.end - note.start) * sample_rate)), int(0.03 * sample_rate))
            key = (note.pitch, family, hold)
            if key not in cache:
                cache[key] = _tone(note.pitch, _FAMILY_TIMBRES[family], hold, sample_rate)
        pieces.append((start, cache[key], note.velocity / 127.0))
    length = max(start + len(wave) for start, wave, _ in pieces) + int(TAIL_SECONDS * sample_rate)
    mix = np.zeros(length)
    for start, wave, gain in pieces:
        mix[start:start + len(wave)] += gain * wave
    peak = float(np.max(np.abs(mix)))
    if peak <= 0 or not np.isfinite(peak):
        raise SeqgenError("The notes render to silence.")
    return mix * (PEAK_LEVEL / peak)

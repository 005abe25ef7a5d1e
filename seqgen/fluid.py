"""In-process FluidSynth (pyfluidsynth): the SoundFont is loaded once per process, notes are played into arrays.

Loading a General MIDI SoundFont costs about 0.35 s of CPU and 150 MB, so the
process keeps one synthesizer and reuses it for every request; a lock lets one
render at a time use it, because a synthesizer holds channel state.

:func:`play` renders each distinct note once and keeps it: FluidSynth plays
the note alone (note-on at a block start, note-off so many blocks later, then
its release until the voice ends), and a melody is the sum of its notes, each
added at the block where FluidSynth would have started it.  With reverb and
chorus off FluidSynth's voices are independent of each other, so the sum is
the synthesizer's own output (tests: within 1e-5 RMS of :func:`play_through`,
which sends the events to the synthesizer in one pass).  A class's melodies
share most of their notes, and adding kept notes costs a few milliseconds
where a pass through the synthesizer costs 50-100 ms (``bench/audio.py``).
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import sys
import threading
from pathlib import Path

import numpy as np

from seqgen.errors import SeqgenError
from seqgen.synth import MidiNote

RELEASE_SECONDS = 2.0  # played after the last note-off: release and reverb tails (the caller trims them)
MIN_NOTE_SECONDS = 0.03  # a zero-length note still sounds briefly (its note-off must follow its note-on)
GAIN = 0.2  # FluidSynth's default; float output cannot clip, the caller normalises the level
# Reverb and chorus off: together they cost about 40 % of a melody's render (a constant cost per sample, notes
# or not), and a solo General MIDI instrument sounds clean without them (bench/audio.py: 50 s of piano
# rendered in 95 ms instead of 165 ms).
EFFECTS = {"synth.reverb.active": 0, "synth.chorus.active": 0}
BLOCK = 64  # FluidSynth synthesizes in blocks of this many samples and applies events at block starts
NOTE_CACHE_BYTES = 64 * 2**20  # notes kept per process (least recently used dropped first): about 25 min of mono audio
LONGEST_RELEASE_SECONDS = 10.0  # a note's release is rendered until its voice ends, at most this long

_lock = threading.Lock()
_loaded: dict = {}  # "key": (SoundFont path, sample rate), "synth", "sfid", "write", "voices", "notes" (the kept notes)


def _fluidsynth():
    """The pyfluidsynth module.  Importing it loads libfluidsynth and, when ``CI`` is set, prints where it
    found it: to stdout, which would corrupt the CLI's JSON, so that line goes to stderr."""
    with contextlib.redirect_stdout(sys.stderr):
        import fluidsynth
    return fluidsynth


def unavailable_reason() -> str | None:
    """Why in-process FluidSynth cannot run here (pyfluidsynth or libfluidsynth missing), or None."""
    try:
        _fluidsynth()
    except ModuleNotFoundError:
        return "pyfluidsynth is not installed (pip install pyfluidsynth)"
    except (ImportError, OSError) as error:
        return f"the FluidSynth library cannot be loaded ({error}; on Debian/Ubuntu: apt-get install fluidsynth)"
    return None


def _load(soundfont: Path, sample_rate: int) -> dict:
    """The process's synthesizer for ``soundfont`` at ``sample_rate`` (call with ``_lock`` held)."""
    fluidsynth = _fluidsynth()
    key = (str(soundfont), int(sample_rate))
    if _loaded.get("key") == key:
        return _loaded
    if _loaded:  # another SoundFont or rate: free the old one (150 MB) first
        _loaded.pop("synth").delete()
        _loaded.clear()
    synth = fluidsynth.Synth(gain=GAIN, samplerate=float(sample_rate), **EFFECTS)
    sfid = synth.sfload(str(soundfont))
    if sfid < 0:
        synth.delete()
        raise SeqgenError(f"FluidSynth could not load the SoundFont {soundfont}")
    # pyfluidsynth wraps only 16-bit output; float output keeps loud chords from clipping.
    write = fluidsynth.cfunc("fluid_synth_write_float", ctypes.c_int, ("synth", ctypes.c_void_p, 1),
                             ("len", ctypes.c_int, 1), ("lout", ctypes.c_void_p, 1), ("loff", ctypes.c_int, 1),
                             ("lincr", ctypes.c_int, 1), ("rout", ctypes.c_void_p, 1), ("roff", ctypes.c_int, 1),
                             ("rincr", ctypes.c_int, 1))
    voices = fluidsynth.cfunc("fluid_synth_get_active_voice_count", ctypes.c_int, ("synth", ctypes.c_void_p, 1))
    _loaded.update(key=key, synth=synth, sfid=sfid, write=write, voices=voices, notes=collections.OrderedDict(), note_bytes=0)
    _alone(_loaded, (0, 0, 60, 64, 4))  # the first note after loading sounds 0.3 % different; from the next one on all alike
    return _loaded


def load(soundfont: Path, sample_rate: int) -> None:
    """Load the synthesizer now (e.g. while a server starts), so the first :func:`play` is quick."""
    with _lock:
        _load(soundfont, sample_rate)


def _pull(write, synth, block: np.ndarray) -> None:
    """Fill ``block`` (rows of a C-ordered (n, 2) float32 array: interleaved left/right) with the next samples."""
    if len(block):
        write(synth.synth, len(block), block.ctypes.data, 0, 2, block.ctypes.data, 1, 2)


def _mono(stereo: np.ndarray) -> np.ndarray:
    """The two channels of interleaved ``(n, 2)`` samples averaged (``ndarray.mean(axis=1)`` is ten times slower)."""
    return (stereo[:, 0] + stereo[:, 1]) * np.float32(0.5)


def _events(notes: list[MidiNote], sample_rate: int) -> list[tuple]:
    """``(block, is_on, channel, pitch, velocity, program)`` in the order the synthesizer gets them: by block, and
    in one block note-offs first (a repeated pitch sounds again).  FluidSynth applies events at block starts: a note
    starts at the first block at or after its start and is held for its duration in whole blocks (at least one), so
    one note sounds the same wherever it falls."""
    events = []
    for note in notes:
        channel = note.channel - 1  # FluidSynth counts channels from 0; 9 is General MIDI percussion
        on = -(-int(round(note.start * sample_rate)) // BLOCK)
        held = max(1, int(round(max(note.end - note.start, MIN_NOTE_SECONDS) * sample_rate / BLOCK)))
        events.append((on, 1, channel, note.pitch, note.velocity, note.program))
        events.append((on + held, 0, channel, note.pitch, 0, note.program))
    events.sort(key=lambda event: event[:2])
    return events


def _length(events: list[tuple], sample_rate: int) -> int:
    """Samples of a rendering: ``RELEASE_SECONDS`` past the last event, on a block boundary (so the next
    render starts on one: same notes, same samples)."""
    return events[-1][0] * BLOCK + -(-int(RELEASE_SECONDS * sample_rate) // BLOCK) * BLOCK


def _sounded(events: list[tuple]) -> list[tuple[int, tuple]]:
    """Each note as the synthesizer sounds it: ``(first block, key)``, key ``(channel, program, pitch, velocity,
    blocks held)``.  A note-on or note-off of a pitch releases every voice of that pitch on its channel, so a note
    is held until the first of them after its own note-on."""
    held: dict[tuple[int, int], tuple[int, int, int]] = {}  # (channel, pitch) -> (first block, velocity, program)
    sounded = []
    for block, is_on, channel, pitch, velocity, program in events:
        if (channel, pitch) in held:
            start, held_velocity, held_program = held.pop((channel, pitch))
            sounded.append((start, (channel, held_program, pitch, held_velocity, block - start)))
        if is_on:
            held[(channel, pitch)] = (block, velocity, program)
    return sounded


def _note(loaded: dict, key: tuple) -> np.ndarray:
    """The mono samples of one note played alone (see :func:`_sounded` for ``key``), from the kept notes or
    rendered now and kept (call with ``_lock`` held)."""
    notes = loaded["notes"]
    samples = notes.get(key)
    if samples is not None:
        notes.move_to_end(key)
        return samples
    samples = notes[key] = _alone(loaded, key)
    loaded["note_bytes"] += samples.nbytes
    while loaded["note_bytes"] > NOTE_CACHE_BYTES and len(notes) > 1:
        loaded["note_bytes"] -= notes.popitem(last=False)[1].nbytes
    return samples


def _alone(loaded: dict, key: tuple) -> np.ndarray:
    """FluidSynth's mono samples of one note played alone: held ``blocks`` blocks, then released until its voices end."""
    channel, program, pitch, velocity, blocks = key
    synth, write, voices = loaded["synth"], loaded["write"], loaded["voices"]
    synth.system_reset()  # no notes, programs or effect tails left from the previous render
    synth.program_change(channel, program)
    synth.noteon(channel, pitch, velocity)
    chunks = [np.zeros((blocks * BLOCK, 2), dtype=np.float32)]
    _pull(write, synth, chunks[0])
    synth.noteoff(channel, pitch)
    chunk = 16 * BLOCK
    for _ in range(int(LONGEST_RELEASE_SECONDS * loaded["key"][1]) // chunk):
        if not voices(synth.synth):
            break
        chunks.append(np.zeros((chunk, 2), dtype=np.float32))
        _pull(write, synth, chunks[-1])
    return _mono(np.concatenate(chunks))


def play(notes: list[MidiNote], soundfont: Path, sample_rate: int) -> np.ndarray:
    """Mono float32 samples of ``notes`` played with ``soundfont``, ``RELEASE_SECONDS`` past the last note-off:
    the sum of the notes played alone (see the module's docstring).

    Raises:
        SeqgenError: when FluidSynth cannot load the SoundFont.
    """
    events = _events(notes, sample_rate)
    total = _length(events, sample_rate)
    sounded = _sounded(events)
    with _lock:
        loaded = _load(soundfont, sample_rate)
        sounds = [_note(loaded, key) for _, key in sounded]
    mono = np.zeros(total, dtype=np.float32)
    for (block, _), samples in zip(sounded, sounds):
        start = block * BLOCK
        end = min(start + len(samples), total)
        if end > start:
            mono[start:end] += samples[:end - start]
    return mono


def play_through(notes: list[MidiNote], soundfont: Path, sample_rate: int) -> np.ndarray:
    """:func:`play` in one pass: every event sent to the synthesizer in time order (what :func:`play` adds up to)."""
    events = _events(notes, sample_rate)
    total = _length(events, sample_rate)
    stereo = np.zeros((total, 2), dtype=np.float32)
    with _lock:
        loaded = _load(soundfont, sample_rate)
        synth, write = loaded["synth"], loaded["write"]
        synth.system_reset()
        done, programs = 0, {}
        for block, is_on, channel, pitch, velocity, program in events:
            target = block * BLOCK
            if target > done:
                _pull(write, synth, stereo[done:target])
                done = target
            if not is_on:
                synth.noteoff(channel, pitch)
                continue
            if programs.get(channel) != program:
                synth.program_change(channel, program)
                programs[channel] = program
            synth.noteon(channel, pitch, velocity)
        _pull(write, synth, stereo[done:])
    return _mono(stereo)

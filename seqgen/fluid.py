"""In-process FluidSynth (pyfluidsynth): the SoundFont is loaded once per process, notes are played into arrays.

Loading a General MIDI SoundFont costs about 0.35 s of CPU and 150 MB, so the
process keeps one synthesizer and reuses it for every request; a lock lets one
render at a time use it, because a synthesizer holds channel state.
:func:`play` schedules the notes itself (times from
:func:`seqgen.synth.read_midi_notes`): it pulls samples up to each note-on or
note-off, then sends the event.  No audio driver and no subprocess are involved.
"""

from __future__ import annotations

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

_lock = threading.Lock()
_loaded: dict = {}  # "key": (SoundFont path, sample rate), "synth", "sfid", "write": fluid_synth_write_float


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
    _loaded.update(key=key, synth=synth, sfid=sfid, write=write)
    return _loaded


def load(soundfont: Path, sample_rate: int) -> None:
    """Load the synthesizer now (e.g. while a server starts), so the first :func:`play` is quick."""
    with _lock:
        _load(soundfont, sample_rate)


def _pull(write, synth, block: np.ndarray) -> None:
    """Fill ``block`` (rows of a C-ordered (n, 2) float32 array: interleaved left/right) with the next samples."""
    if len(block):
        write(synth.synth, len(block), block.ctypes.data, 0, 2, block.ctypes.data, 1, 2)


def play(notes: list[MidiNote], soundfont: Path, sample_rate: int) -> np.ndarray:
    """Mono float32 samples of ``notes`` played with ``soundfont``, ``RELEASE_SECONDS`` past the last note-off.

    Raises:
        SeqgenError: when FluidSynth cannot load the SoundFont.
    """
    events = []
    for note in notes:
        channel = note.channel - 1  # FluidSynth counts channels from 0; 9 is General MIDI percussion
        events.append((note.start, 1, channel, note.pitch, note.velocity, note.program))
        events.append((max(note.end, note.start + MIN_NOTE_SECONDS), 0, channel, note.pitch, 0, note.program))
    events.sort(key=lambda event: event[:2])  # at one instant, note-offs first: a repeated pitch sounds again
    total = int(round((events[-1][0] + RELEASE_SECONDS) * sample_rate))
    total += -total % BLOCK  # end on a block boundary, so the next render starts on one: same notes, same samples
    stereo = np.zeros((total, 2), dtype=np.float32)
    with _lock:
        loaded = _load(soundfont, sample_rate)
        synth, write = loaded["synth"], loaded["write"]
        synth.system_reset()  # no notes, programs or effect tails left from the previous render
        done, programs = 0, {}
        for seconds, is_on, channel, pitch, velocity, program in events:
            target = min(int(round(seconds * sample_rate)), total)
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
    return (stereo[:, 0] + stereo[:, 1]) * np.float32(0.5)  # mono; ndarray.mean(axis=1) is ten times slower

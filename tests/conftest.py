"""Shared fixtures.

Every test session gets its own token cache (``SEQGEN_CACHE``) and data
folder (``SEQGEN_DATA``) under pytest's temporary directory, so tests never
read or write the user's cache and never see the user's ``data/`` corpora.
Subprocesses started by the CLI tests inherit both variables.  Test modules
need no isolation fixture of their own.

The tiny ``debug`` bundles (window 8, one epoch) that the generation,
evaluation, CLI and studio tests use are trained once per session here:
``music_bundle_dir`` (seed tokens), ``timed_bundle_dir`` (timed tokens) and
``lyrics_bundle_dir`` (characters), with ``music_bundle`` / ``timed_bundle`` /
``lyrics_bundle`` loaded from them.  They are shared by every module, so they
are read-only: a test that writes into a bundle copies it first
(``shutil.copytree(music_bundle_dir, tmp_path / "bundle")``); a session-end
check fails the run if a shared bundle's files changed.

Under pytest-xdist (``-n``, ``--dist loadfile``: a test file runs on one
worker, so a module's fixtures are made once) the workers of one run share
these bundles and the token cache: the first worker to need a bundle trains
it under a file lock, the others wait and reuse it.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: parses a whole built-in corpus (about 10-15 s cold)")


def run_folder(tmp_path_factory) -> Path:
    """This run's temporary folder, shared by every xdist worker of the run (the session's own folder without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session", autouse=True)
def isolated_seqgen_env(tmp_path_factory):
    """Point SEQGEN_CACHE (shared by the run's workers) and SEQGEN_DATA (this worker's) at fresh temporary folders
    for the whole session (quiet TensorFlow too)."""
    cache = run_folder(tmp_path_factory) / "seqgen-cache"
    cache.mkdir(exist_ok=True)  # entries are written atomically: workers may share it
    data = tmp_path_factory.mktemp("seqgen-data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEQGEN_CACHE", str(cache))
        patch.setenv("SEQGEN_DATA", str(data))
        patch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter, here and in subprocesses
        # Studio handlers called in this process run in threads (studio.pool); the test server sets its own.
        patch.setenv("SEQGEN_GENERATION_WORKERS", "0")
        yield {"cache": cache, "data": data}


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A per-test, empty SEQGEN_DATA folder (for tests that add corpora to it)."""
    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setenv("SEQGEN_DATA", str(folder))
    return folder


# --- music21 helpers -----------------------------------------------------------


def music21_dir() -> Path:
    import music21

    return Path(music21.__file__).parent


def primitive_midi_files() -> list[Path]:
    """The small test MIDI files that ship with music21 (music21/midi/testPrimitive)."""
    return sorted((music21_dir() / "midi" / "testPrimitive").glob("*.mid"))


def build_part(events, instrument=None):
    """A music21 Part from ``(pitches, offset, quarter_length)`` triples.

    ``pitches`` is a pitch name (a note), a list of names (a chord) or None (a rest).
    """
    from music21 import chord, note, stream

    part = stream.Part()
    if instrument is not None:
        part.insert(0, instrument)
    for pitches, offset, quarter_length in events:
        if pitches is None:
            element = note.Rest(quarterLength=quarter_length)
        elif isinstance(pitches, str):
            element = note.Note(pitches, quarterLength=quarter_length)
        else:
            element = chord.Chord(list(pitches), quarterLength=quarter_length)
        part.insert(offset, element)
    return part


def build_score(*parts):
    from music21 import stream

    score = stream.Score()
    for part in parts:
        score.insert(0, part)
    return score


def write_score_midi(score, path: Path) -> Path:
    """Write a music21 stream to ``path`` as MIDI, as music21 exports it."""
    score.write("midi", fp=str(path))
    return Path(path)


@pytest.fixture
def midi_file(tmp_path):
    """Factory: ``midi_file(name, events, ...)`` writes a one-part MIDI file from event triples."""

    def write(name: str, *parts_events, instruments=None):
        instruments = instruments or [None] * len(parts_events)
        score = build_score(*(build_part(events, inst) for events, inst in zip(parts_events, instruments)))
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_score_midi(score, path)

    return write


def simple_melody(shift: int = 0) -> list:
    """A short melody with a chord and a rest; ``shift`` transposes it by semitones."""
    from music21 import pitch

    def name(text):
        return pitch.Pitch(text).transpose(shift).nameWithOctave

    return [
        (name("C4"), 0, 1), (name("E4"), 1, 1), (name("G4"), 2, 1),
        ([name("C4"), name("E4"), name("G4")], 3, 1), (None, 4, 1), (name("D4"), 5, 0.5), (name("F4"), 5.5, 0.5),
        (name("A4"), 6, 2),
    ]


# --- raw MIDI (music21.midi) -----------------------------------------------------


def _midi_track(index: int, timed_events):
    """A MidiTrack from ``(tick, type, channel, attributes)`` events, with delta times and end of track."""
    from music21 import midi

    track = midi.MidiTrack(index)
    now = 0
    for tick, kind, channel, attributes in sorted(timed_events, key=lambda item: item[0]):
        track.events.append(midi.DeltaTime(track, time=tick - now, channel=channel))
        event = midi.MidiEvent(track, type=kind, channel=channel)
        for key, value in attributes.items():
            setattr(event, key, value)
        track.events.append(event)
        now = tick
    track.events.append(midi.DeltaTime(track, time=0))
    end = midi.MidiEvent(track, type=midi.MetaEvents.END_OF_TRACK)
    end.data = b""
    track.events.append(end)
    track.updateEvents()
    return track


def _tempo(bpm: float) -> bytes:
    return round(60_000_000 / bpm).to_bytes(3, "big")


def _notes(channel: int, notes, ticks_per_quarter: int):
    from music21 import midi

    events = []
    for midi_pitch, start, length in notes:
        events.append((round(start * ticks_per_quarter), midi.ChannelVoiceMessages.NOTE_ON, channel, {"pitch": midi_pitch, "velocity": 90}))
        events.append((round((start + length) * ticks_per_quarter), midi.ChannelVoiceMessages.NOTE_OFF, channel, {"pitch": midi_pitch, "velocity": 0}))
    return events


# The piano track of write_multitrack_midi and the tokens it must give, whatever the tempo.
MULTITRACK_PIANO = [(60, 0, 1), (64, 1, 1), (67, 2, 2), (72, 4, 0.5), (71, 4.5, 0.5), (48, 6, 4), (55, 6, 4), (60, 6, 4)]
MULTITRACK_TIMED = ["C4_4", "E4_4", "G4_8", "C5_2", "B4_2", "R_4", "C3.G3.C4_16"]


def write_multitrack_midi(path: Path, ticks_per_quarter: int = 480) -> Path:
    """A format-1 MIDI file like real-world ones: a conductor track with three tempo
    changes, a piano track (channel 1) and a drum track (channel 10)."""
    from music21 import midi

    meta = midi.MetaEvents
    voice = midi.ChannelVoiceMessages
    conductor = _midi_track(0, [
        (0, meta.SEQUENCE_TRACK_NAME, 1, {"data": b"Conductor"}),
        (0, meta.TIME_SIGNATURE, 1, {"data": bytes([4, 2, 24, 8])}),
        (0, meta.SET_TEMPO, 1, {"data": _tempo(90)}),
        (4 * ticks_per_quarter, meta.SET_TEMPO, 1, {"data": _tempo(140)}),
        (8 * ticks_per_quarter, meta.SET_TEMPO, 1, {"data": _tempo(70)}),
    ])
    piano = _midi_track(1, [
        (0, meta.SEQUENCE_TRACK_NAME, 1, {"data": b"Piano"}),
        (0, voice.PROGRAM_CHANGE, 1, {"data": 0}),
    ] + _notes(1, MULTITRACK_PIANO, ticks_per_quarter))
    drums = _midi_track(2, [(0, meta.SEQUENCE_TRACK_NAME, 10, {"data": b"Drums"})] + _notes(
        10, [(36, beat, 0.25) for beat in range(10)] + [(42, beat + 0.5, 0.25) for beat in range(10)], ticks_per_quarter
    ))
    midi_file = midi.MidiFile()
    midi_file.format = 1
    midi_file.ticksPerQuarterNote = ticks_per_quarter
    midi_file.tracks = [conductor, piano, drums]
    midi_file.open(str(path), "wb")
    midi_file.write()
    midi_file.close()
    return Path(path)


def read_midi_timing(path: Path) -> dict:
    """Onsets (in quarters) and total length (quarters and seconds, tempo map applied) of a MIDI file."""
    from music21 import midi

    midi_file = midi.MidiFile()
    midi_file.open(str(path))
    midi_file.read()
    midi_file.close()
    per_quarter = midi_file.ticksPerQuarterNote
    tempos, onsets, end = [], [], 0
    for track in midi_file.tracks:
        now = 0
        for event in track.events:
            if isinstance(event, midi.DeltaTime):
                now += event.time
                continue
            if event.type == midi.MetaEvents.SET_TEMPO:
                tempos.append((now, int.from_bytes(event.data, "big")))
            elif event.type in (midi.ChannelVoiceMessages.NOTE_ON, midi.ChannelVoiceMessages.NOTE_OFF):
                end = max(end, now)
                if event.type == midi.ChannelVoiceMessages.NOTE_ON and event.velocity > 0:
                    onsets.append(now / per_quarter)
    seconds, last_tick, microseconds = 0.0, 0, 500_000  # MIDI's default tempo is 120 bpm
    for tick, value in sorted(tempos):
        if tick >= end:
            break
        seconds += (tick - last_tick) / per_quarter * microseconds / 1e6
        last_tick, microseconds = tick, value
    seconds += (end - last_tick) / per_quarter * microseconds / 1e6
    return {"onsets": sorted(set(onsets)), "quarters": end / per_quarter, "seconds": seconds}


# test04.mid (67 KB) alone takes ~15 s to parse cold and ~12 s more with the timed tokenizer.
SLOW_PRIMITIVES = {"test04.mid"}


@pytest.fixture(scope="module")
def real_world_midi_folder(tmp_path_factory):
    """music21's testPrimitive MIDI files (all but the slow one) plus a multi-track file
    with tempo changes and a drum track.  Shared by a module's tests (read-only)."""
    folder = tmp_path_factory.mktemp("real-world")
    for path in primitive_midi_files():
        if path.name not in SLOW_PRIMITIVES:
            shutil.copy(path, folder / path.name)
    write_multitrack_midi(folder / "multitrack-drums.mid")
    return folder


# --- the command line --------------------------------------------------------------


def run_seqgen(*args, cwd: Path | None = None, env: dict | None = None, timeout: float = 300):
    """Run ``python -m seqgen ARGS`` in a subprocess, as a user would."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), environment.get("PYTHONPATH", "")]))
    environment["PYTHONWARNINGS"] = "ignore"
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "seqgen", *map(str, args)],
        cwd=str(cwd or REPO_ROOT), env=environment, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture
def cli(tmp_path):
    """``cli(*args)``: run ``python -m seqgen`` from a temporary working directory."""

    def run(*args, **kwargs):
        kwargs.setdefault("cwd", tmp_path)
        return run_seqgen(*args, **kwargs)

    return run


# --- what a process imported ------------------------------------------------------------------

HEAVY_MODULES = frozenset({"gradio", "keras", "tensorflow"})  # seconds of CPU each to import


def heavy_modules() -> list[str]:
    """Which of HEAVY_MODULES this process has imported (test_pool also runs it in a generation worker)."""
    return sorted(HEAVY_MODULES & set(sys.modules))


def heavy_modules_after(run: str, argv: list[str], cwd: Path = REPO_ROOT) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run ``run`` (e.g. ``runpy.run_module('seqgen', run_name='__main__')``) with ``sys.argv = argv`` in a fresh
    Python, as a user's command would; it must end with status 0.  Returns the process and :func:`heavy_modules`."""
    code = (f"import json, runpy, sys\nsys.argv = {argv!r}\n"
            f"try:\n    {run}\nexcept SystemExit as end:\n    assert end.code == 0, end.code\n"
            f"sys.path.insert(0, {str(Path(__file__).parent)!r})\nfrom conftest import heavy_modules\n"
            "print(json.dumps(heavy_modules()))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 0, result.stderr[-3000:]
    return result, json.loads(result.stdout.strip().splitlines()[-1])


# --- the shared debug bundles ----------------------------------------------------------------
#
# One corpus per kind that every user's assertions hold on:
# - MUSIC_MELODY is periodic (15 tokens) with one repeated note (G4 G4), MIDI spelling
#   (B-, C#, F#) so a melody survives a MIDI round trip, and a chord; A0 and 5.9 are not in it.
# - LYRICS has line breaks and blank lines, no apostrophe, and its first line appears
#   at least 4 times in any 400 characters.

MUSIC_MELODY = ["C4", "E4", "G4", "C5", "B-4", "G4", "F#4", "E4", "0.4.7", "D4", "C#4", "D4", "A4", "G4", "G4"]
MUSIC_TOKENS = 600
TIMED_MELODY = ["C4_4", "E4.G4_2", "R_2", "G4_4", "C5_2", "B-4_2", "R_4", "A4_4", "C4.E4.G4_8", "F#4_2"]
TIMED_TOKENS = 400
LYRICS = (
    "let dance for the rest of the night here\n"
    "we dance until the morning light\n"
    "hold me near and hold me tight\n"
    "\n"
    "let dance for the rest of the night here\n"
    "sing it loud and sing it clear\n"
    "\n"
) * 6
DEBUG_WINDOW = 8


def debug_config(kind: str, tokenizer: str = "seed", **overrides):
    """The TrainConfig of the shared bundles: preset ``debug``, window 8, one epoch, every token kept."""
    from seqgen.train import TrainConfig

    settings = dict(kind=kind, preset="debug", tokenizer=tokenizer, window=DEBUG_WINDOW, epochs=1, min_count=1)
    return TrainConfig(**{**settings, **overrides})


def timed_tokens() -> list[str]:
    """TIMED_MELODY cycled to 400 tokens, every 31st replaced, so not every window is the same."""
    cycled = itertools.islice(itertools.cycle(TIMED_MELODY), TIMED_TOKENS)
    return ["D4_4" if index % 31 == 0 else token for index, token in enumerate(cycled)]


@pytest.fixture(scope="session")
def music_corpus():
    from seqgen.corpus import Corpus

    return Corpus("toy-melody", "music", "seed", 1, list(itertools.islice(itertools.cycle(MUSIC_MELODY), MUSIC_TOKENS)))


@pytest.fixture(scope="session")
def timed_corpus():
    from seqgen.corpus import Corpus

    return Corpus("toy-timed", "music", "timed", 1, timed_tokens())


def event_pieces(count: int = 12) -> list[str]:
    """``count`` short four-voice pieces as events tokens (start, two bars of 4/4, closing bar line, end), each a
    little different, so windows differ and every piece has a start and an end."""
    tokens = []
    for number in range(count):
        bass, top = 48 + number % 3, 72 + number % 5
        bar = []
        for position, chord in ((0, (bass, 55, 64, top)), (8, (bass + 2, 57, 65, top - 1)), (16, (bass - 5, 59, 62, top - 3))):
            bar.append(f"Position_{position}")
            for pitch in chord:
                bar += [f"Pitch_{pitch}", "Duration_2.0.8" if pitch == bass else "Duration_1.0.8"]
        tokens += ["BOS_None", "Bar_None", "TimeSig_4/4", *bar, "Bar_None", "TimeSig_4/4", *bar[:9], "Bar_None", "EOS_None"]
    return tokens


@pytest.fixture(scope="session")
def events_corpus():
    from seqgen.corpus import Corpus

    return Corpus("toy-events", "music", "events", 12, event_pieces())


@pytest.fixture(scope="session")
def lyrics_corpus():
    from seqgen.corpus import Corpus

    return Corpus("toy-lyrics", "lyrics", "char", 1, list(LYRICS))


def _snapshot(folder: Path) -> dict:
    return {str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in sorted(folder.rglob("*"))}


def _trained_once(tmp_path_factory, name: str, corpus):
    """Train a debug bundle once per run (the first worker to ask trains it, under a lock); after the session,
    fail if anything wrote into it."""
    from seqgen.train import train

    root = run_folder(tmp_path_factory) / "bundles"
    root.mkdir(exist_ok=True)
    folder = root / name
    with FileLock(str(root / f"{name}.lock")):
        if not folder.exists():
            staging = root / "training" / name  # the same folder name: a bundle's config names its folder
            shutil.rmtree(staging, ignore_errors=True)
            train(corpus, staging, debug_config(corpus.kind, corpus.tokenizer if corpus.kind == "music" else "seed"))
            staging.rename(folder)  # whole or not at all: another worker never sees half a bundle
    before = _snapshot(folder)
    yield folder
    assert _snapshot(folder) == before, f"a test wrote into the shared bundle {name}; copy it first"


@pytest.fixture(scope="session")
def music_bundle_dir(tmp_path_factory, isolated_seqgen_env, music_corpus):
    """Folder of the shared seed-tokenizer melody bundle (read-only)."""
    yield from _trained_once(tmp_path_factory, "debug-music", music_corpus)


@pytest.fixture(scope="session")
def timed_bundle_dir(tmp_path_factory, isolated_seqgen_env, timed_corpus):
    """Folder of the shared timed-tokenizer melody bundle (read-only)."""
    yield from _trained_once(tmp_path_factory, "debug-timed", timed_corpus)


@pytest.fixture(scope="session")
def events_bundle_dir(tmp_path_factory, isolated_seqgen_env, events_corpus):
    """Folder of the shared events-tokenizer melody bundle (read-only): it learned where pieces end."""
    yield from _trained_once(tmp_path_factory, "debug-events", events_corpus)


@pytest.fixture(scope="session")
def lyrics_bundle_dir(tmp_path_factory, isolated_seqgen_env, lyrics_corpus):
    """Folder of the shared character-level lyrics bundle (read-only)."""
    yield from _trained_once(tmp_path_factory, "debug-lyrics", lyrics_corpus)


@pytest.fixture(scope="session")
def music_bundle(music_bundle_dir):
    from seqgen.bundle import load_bundle

    return load_bundle(music_bundle_dir)


@pytest.fixture(scope="session")
def timed_bundle(timed_bundle_dir):
    from seqgen.bundle import load_bundle

    return load_bundle(timed_bundle_dir)


@pytest.fixture(scope="session")
def lyrics_bundle(lyrics_bundle_dir):
    from seqgen.bundle import load_bundle

    return load_bundle(lyrics_bundle_dir)

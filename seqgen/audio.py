"""MIDI -> audio: FluidSynth with a General MIDI SoundFont, or a built-in synthesizer.

``render(midi_path, wav_path)`` writes a 16-bit mono WAV file (22.05 kHz by
default: small enough for a browser to play as it is) and says which renderer
made it; ``play_notes(notes)`` plays notes into samples that can be written as
several files (the whole, or from a moment on).  With ``renderer="auto"`` (the default) it plays the notes with
FluidSynth in this process (:mod:`seqgen.fluid`, the SoundFont loaded once)
when pyfluidsynth, libfluidsynth and a SoundFont are found
(``SEQGEN_SOUNDFONT`` first, then the usual system locations, see
``SOUNDFONT_CANDIDATES``), and otherwise with the built-in synthesizer of
:mod:`seqgen.synth`.

FluidSynth's output is checked (finite, not silent) and ``auto`` falls back to
the built-in synthesizer when it is not good; ``RenderResult.fallback_reason``
says why.  Both renderers' output is peak normalised to the same level, so
switching renderer does not change loudness.  Audio longer than
``SEQGEN_MAX_AUDIO_SECONDS`` (3 minutes by default) is not rendered at all:
``render`` raises :class:`AudioTooLong` and the MIDI file is what remains.

``compress(wav_path)`` turns a WAV into OGG Vorbis (or MP3 where libsndfile
lacks Vorbis), for whoever needs a smaller file than the WAV.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterable

import numpy as np

from seqgen import fluid
from seqgen.errors import SeqgenError
from seqgen.files import atomic_path
from seqgen.synth import PEAK_LEVEL, TAIL_SECONDS, read_midi_notes, synthesize

RENDERERS = ("auto", "fluidsynth", "builtin")
DEFAULT_SAMPLE_RATE = 22050  # mono 16-bit: 44 kB per second, written in milliseconds, played by every browser
MAX_AUDIO_ENV = "SEQGEN_MAX_AUDIO_SECONDS"
DEFAULT_MAX_AUDIO_SECONDS = 180.0
SOUNDFONT_ENV = "SEQGEN_SOUNDFONT"
# Where Debian/Ubuntu (fluidr3mono-gm-soundfont, fluid-soundfont-gm, timgm6mb-soundfont,
# musescore-general-soundfont), Fedora, Arch and Homebrew put General MIDI
# SoundFonts, best first.  Glob patterns are expanded in sorted order.  The mono
# FluidR3 comes first: seqgen's audio is mono, and with mono samples the same
# instruments sound with half the voices, so FluidSynth renders a melody in half
# the time (bench/audio.py); it loads in about 2 s (its samples are compressed).
SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf3/FluidR3Mono_GM.sf3",
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/sounds/sf3/default-GM.sf3",
    "/usr/share/sounds/sf3/*.sf3",
    "/usr/share/sounds/sf2/*.sf2",
    "/usr/share/soundfonts/*.sf2",
    "/usr/share/soundfonts/*.sf3",
    "/opt/homebrew/share/soundfonts/*.sf2",
    "/usr/local/share/soundfonts/*.sf2",
    "~/.fluidsynth/default_sound_font.sf2",  # midi2audio's default location
)

SILENCE_RMS = 1e-4  # below this RMS (full scale = 1) a rendering counts as silent
TRIM_DB = -60.0  # FluidSynth's trailing near-silence below this (re peak) is cut


class AudioTooLong(SeqgenError):
    """The MIDI file lasts longer than the audio limit: no audio is rendered."""


@dataclass(frozen=True)
class RenderResult:
    """What ``render`` produced.

    Attributes:
        wav_path: the WAV file written.
        renderer: ``"fluidsynth"`` or ``"builtin"``: the renderer that made it.
        seconds: duration of the WAV file.
        fallback_reason: why FluidSynth was not used (None when it was).
        soundfont: the SoundFont FluidSynth used (None for the built-in synthesizer).
    """

    wav_path: Path
    renderer: str
    seconds: float
    fallback_reason: str | None = None
    soundfont: Path | None = None


@dataclass(frozen=True)
class CompressedAudio:
    """What ``compress`` produced: the file, its format (``"ogg"``/``"mp3"``), MIME type and duration."""

    path: Path
    format: str
    mime_type: str
    seconds: float


# --- locating FluidSynth and a SoundFont ---------------------------------------------------


def fluidsynth_available() -> bool:
    """True when FluidSynth can run in this process (pyfluidsynth and libfluidsynth are installed)."""
    return fluid.unavailable_reason() is None


def is_soundfont(path: Path) -> bool:
    """True when ``path`` is a file with a SoundFont header (RIFF ... sfbk; .sf2 and .sf3 alike)."""
    try:
        with Path(path).open("rb") as handle:
            header = handle.read(12)
    except OSError:
        return False
    return header[:4] == b"RIFF" and header[8:12] == b"sfbk"


def _locate_soundfont() -> tuple[Path | None, str | None]:
    """(SoundFont path, None) or (None, why none was found)."""
    configured = os.environ.get(SOUNDFONT_ENV, "").strip()
    if configured:
        path = Path(configured).expanduser()
        # The user chose a SoundFont: never silently swap in another one.  The
        # header matters: given a file that is not a SoundFont, FluidSynth
        # quietly loads its own default SoundFont instead.
        if not path.is_file():
            return None, f"{SOUNDFONT_ENV} points to {path}, which does not exist"
        if not is_soundfont(path):
            return None, f"{SOUNDFONT_ENV} points to {path}, which is not a SoundFont (.sf2/.sf3) file"
        return path, None
    for candidate in SOUNDFONT_CANDIDATES:
        for match in sorted(glob.glob(os.path.expanduser(candidate))):
            path = Path(match)
            if path.is_file() and is_soundfont(path):
                return path, None
    return None, (
        f"no SoundFont found; set {SOUNDFONT_ENV} to a General MIDI .sf2/.sf3 file "
        "(on Debian/Ubuntu: apt-get install fluid-soundfont-gm)"
    )


def find_soundfont() -> Path | None:
    """The General MIDI SoundFont FluidSynth would use, or None.

    ``SEQGEN_SOUNDFONT`` wins when set (None if it names a missing file or one
    that is not a SoundFont); otherwise the first SoundFont among
    ``SOUNDFONT_CANDIDATES``.
    """
    return _locate_soundfont()[0]


# --- checking and writing audio ------------------------------------------------------------


def _pcm16(data: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] as 16-bit integers: soundfile writes those as they are, 4 times faster than it converts."""
    scaled = np.multiply(data, np.float32(32767.0), dtype=np.float32)
    np.rint(scaled, out=scaled)
    np.clip(scaled, -32767, 32767, out=scaled)
    return scaled.astype(np.int16)


def _write_wav_atomically(data: np.ndarray, wav_path: Path, sample_rate: int) -> None:
    """Write a 16-bit WAV via a temporary file, so ``wav_path`` is never left half written (float samples are converted)."""
    import soundfile

    if data.dtype != np.int16:
        data = _pcm16(data)
    with atomic_path(wav_path) as temporary:
        soundfile.write(str(temporary), data, sample_rate, subtype="PCM_16", format="WAV")


def max_audio_seconds(limit: float | None = None) -> float:
    """The audio length limit in seconds: ``limit`` if given, else ``SEQGEN_MAX_AUDIO_SECONDS``, else 3 minutes.

    Raises:
        SeqgenError: when the limit is not a positive number.
    """
    if limit is None:
        configured = os.environ.get(MAX_AUDIO_ENV, "").strip()
        try:
            limit = float(configured) if configured else DEFAULT_MAX_AUDIO_SECONDS
        except ValueError:
            raise SeqgenError(f"{MAX_AUDIO_ENV} must be a number of seconds (got {configured!r}).") from None
    if not (np.isfinite(limit) and limit > 0):
        raise SeqgenError(f"The audio limit must be a positive number of seconds (got {limit}); see {MAX_AUDIO_ENV}.")
    return float(limit)


def audio_problem(samples: np.ndarray) -> str | None:
    """Why rendered samples are unusable (none, NaN/inf, silent), or None."""
    if samples.size == 0:
        return "it holds no samples"
    energy = float(np.dot(samples.ravel(), samples.ravel()))  # one pass: NaN or inf anywhere makes it so
    if not np.isfinite(energy):
        return "it holds invalid NaN/inf samples"
    rms = float(np.sqrt(energy / samples.size))
    if rms < SILENCE_RMS:
        return f"it is silent (RMS {rms:.2e})"
    return None


def _fluidsynth_samples(notes, soundfont: Path, sample_rate: int, expected_seconds: float) -> tuple[np.ndarray | None, str | None]:
    """FluidSynth's samples of ``notes`` and None, or None and the reason it failed.

    The samples are checked with ``audio_problem``, the release tail is cut
    where it falls below ``TRIM_DB``, and the level is peak normalised like the
    built-in synthesizer's.
    """
    try:
        samples = fluid.play(notes, soundfont, sample_rate)
    except SeqgenError as error:
        return None, str(error)
    problem = audio_problem(samples)
    if problem is not None:
        return None, f"FluidSynth output was unusable: {problem}"
    peak = max(float(samples.max()), -float(samples.min()))
    expected = min(int(round(expected_seconds * sample_rate)), len(samples))
    audible = np.flatnonzero(np.abs(samples[expected:]) > peak * 10 ** (TRIM_DB / 20))  # only the tail past the last note
    end = min(expected + (int(audible[-1]) + 1 if len(audible) else 0) + int(TAIL_SECONDS * sample_rate), len(samples))
    samples = samples[:end]
    samples *= np.float32(PEAK_LEVEL / peak)
    fade = min(int(0.02 * sample_rate), end)  # no click where the tail is cut
    samples[end - fade:] *= np.linspace(1.0, 0.0, fade, dtype=samples.dtype)
    return samples, None


@dataclass(frozen=True)
class Rendering:
    """Notes played into samples (:func:`play_notes`), not written yet: one rendering can give several files."""

    samples: np.ndarray  # mono float32, peak normalised
    sample_rate: int
    renderer: str  # "fluidsynth" or "builtin"
    fallback_reason: str | None = None
    soundfont: Path | None = None

    @cached_property
    def pcm(self) -> np.ndarray:
        """The samples as 16-bit integers, converted once for every file written from them."""
        return _pcm16(self.samples)

    def write(self, wav_path: Path, start_seconds: float = 0.0) -> RenderResult:
        """Write the samples from ``start_seconds`` on as a 16-bit WAV file (atomically)."""
        samples = self.pcm[int(round(start_seconds * self.sample_rate)):]
        wav_path = Path(wav_path)
        _write_wav_atomically(samples, wav_path, self.sample_rate)
        return RenderResult(wav_path, self.renderer, len(samples) / self.sample_rate, self.fallback_reason, self.soundfont)


def play_notes(notes: list, renderer: str = "auto", sample_rate: int = DEFAULT_SAMPLE_RATE, max_seconds: float | None = None,
               name: str = "the melody") -> Rendering:
    """Play notes (:class:`seqgen.synth.MidiNote`, times in seconds) into samples.

    Args:
        notes: the notes, in any order.
        renderer: ``"auto"`` (FluidSynth when usable, else built-in),
            ``"fluidsynth"`` (FluidSynth or an error), or ``"builtin"``.
        sample_rate: samples per second.
        max_seconds: the longest music played (default: see :func:`max_audio_seconds`).
        name: what the notes are, for messages (e.g. the MIDI file's name).

    Raises:
        AudioTooLong: when the notes last longer than ``max_seconds``.
        SeqgenError: naming ``name`` when there are no notes; with
            ``renderer="fluidsynth"``, when FluidSynth is missing or its
            output is unusable.
    """
    if renderer not in RENDERERS:
        raise SeqgenError(f"Unknown renderer {renderer!r}; choose one of: {', '.join(RENDERERS)}.")
    sample_rate = int(sample_rate)
    if not 8000 <= sample_rate <= 192000:
        raise SeqgenError(f"Sample rate {sample_rate} Hz is out of range (8000-192000).")
    limit = max_audio_seconds(max_seconds)
    if not notes:
        raise SeqgenError(f"{name}: the MIDI file has no notes to render.")
    expected_seconds = max(note.end for note in notes)
    if expected_seconds > limit:
        raise AudioTooLong(f"{name} lasts {expected_seconds:.0f} s, longer than the {limit:g} s audio limit "
                           f"({MAX_AUDIO_ENV}): the MIDI file is there to download and play")

    reason = None
    if renderer in ("auto", "fluidsynth"):
        soundfont, reason = _locate_soundfont()
        reason = fluid.unavailable_reason() or reason
        if reason is None:
            samples, reason = _fluidsynth_samples(notes, soundfont, sample_rate, expected_seconds)
            if reason is None:
                return Rendering(samples, sample_rate, "fluidsynth", None, soundfont)
        if renderer == "fluidsynth":
            raise SeqgenError(f"{name}: cannot render with FluidSynth: {reason}.")

    try:
        samples = synthesize(notes, sample_rate)
    except SeqgenError as error:
        raise SeqgenError(f"{name}: {error}") from error
    return Rendering(samples, sample_rate, "builtin", reason, None)


def render(midi_path: Path, wav_path: Path, renderer: str = "auto", sample_rate: int = DEFAULT_SAMPLE_RATE,
           max_seconds: float | None = None) -> RenderResult:
    """Render a MIDI file to a 16-bit mono WAV file.

    Args:
        midi_path: a Standard MIDI File (e.g. from ``seqgen.music.write_midi``).
        wav_path: the WAV file to write (its folder is created).
        renderer, sample_rate, max_seconds: see :func:`play_notes`.

    Returns:
        RenderResult: the file, the renderer that ran, the duration, and
        ``fallback_reason`` when ``auto`` could not use FluidSynth.

    Raises:
        AudioTooLong: when the MIDI file lasts longer than ``max_seconds``.
        SeqgenError: naming the file when ``midi_path`` is not a MIDI file or has
            no notes; with ``renderer="fluidsynth"``, when FluidSynth is missing
            or its output is unusable.
    """
    midi_path = Path(midi_path)
    if renderer not in RENDERERS:
        raise SeqgenError(f"Unknown renderer {renderer!r}; choose one of: {', '.join(RENDERERS)}.")
    notes = read_midi_notes(midi_path)  # validates the file for both renderers
    return play_notes(notes, renderer, sample_rate, max_seconds, midi_path.name).write(wav_path)


def warm_up(sample_rate: int = DEFAULT_SAMPLE_RATE, rehearsed: Iterable[list] = ()) -> None:
    """Load FluidSynth and the SoundFont now (a server calls this at start-up), and play each list of notes in
    ``rehearsed`` once, so FluidSynth keeps its notes (see :mod:`seqgen.fluid`); a no-op when either is missing."""
    soundfont, reason = _locate_soundfont()
    if reason is None and fluidsynth_available():
        fluid.load(soundfont, sample_rate)
        for notes in rehearsed:
            if notes:
                fluid.play(notes, soundfont, sample_rate)


# --- compression -----------------------------------------------------------

# (format name, soundfile format, subtype, suffix, MIME type), preferred first.
_COMPRESSED_FORMATS = (
    ("ogg", "OGG", "VORBIS", ".ogg", "audio/ogg"),
    ("mp3", "MP3", "MPEG_LAYER_III", ".mp3", "audio/mpeg"),
)


def _writable_formats() -> list[str]:
    import soundfile

    return [
        name for name, container, subtype, _, _ in _COMPRESSED_FORMATS
        if container in soundfile.available_formats() and subtype in soundfile.available_subtypes(container)
    ]


def compressed_format() -> str | None:
    """``"ogg"`` or ``"mp3"``: the lossy format ``compress`` picks with the installed libsndfile (None if neither)."""
    formats = _writable_formats()
    return formats[0] if formats else None


def compress(wav_path: Path, out_path: Path | None = None, quality: float = 0.6, audio_format: str = "auto") -> CompressedAudio:
    """Encode a WAV file as OGG Vorbis (MP3 where libsndfile lacks Vorbis): about a tenth of the size.

    Args:
        wav_path: the WAV file to encode.
        out_path: where to write; its suffix is replaced by the format's
            (default: ``wav_path`` with ``.ogg``/``.mp3``).
        quality: 0 (smallest) to 1 (best).
        audio_format: ``"auto"`` (OGG Vorbis, else MP3), ``"ogg"`` or ``"mp3"``.

    Returns:
        CompressedAudio with the path written, ``format`` (``"ogg"`` or ``"mp3"``),
        MIME type and duration.

    Raises:
        SeqgenError: naming the file when it cannot be read, or when neither
            format can be written.
    """
    import soundfile

    wav_path = Path(wav_path)
    if audio_format not in ("auto", "ogg", "mp3"):
        raise SeqgenError(f"Unknown audio format {audio_format!r}; choose auto, ogg or mp3.")
    chosen = compressed_format() if audio_format == "auto" else audio_format
    if audio_format != "auto" and audio_format not in _writable_formats():
        raise SeqgenError(
            f"{wav_path.name}: this libsndfile ({soundfile.__libsndfile_version__}) cannot write {audio_format.upper()}; "
            "install soundfile>=0.13, whose wheels bundle a libsndfile with OGG Vorbis and MP3."
        )
    if chosen is None:
        raise SeqgenError(
            f"{wav_path.name}: this libsndfile ({soundfile.__libsndfile_version__}) writes neither OGG Vorbis nor MP3; "
            "install soundfile>=0.13, whose wheels bundle a libsndfile with both."
        )
    name, container, subtype, suffix, mime_type = next(entry for entry in _COMPRESSED_FORMATS if entry[0] == chosen)
    try:
        data, sample_rate = soundfile.read(str(wav_path), dtype="float32", always_2d=True)
    except Exception as error:
        raise SeqgenError(f"{wav_path.name}: cannot read it as audio ({type(error).__name__}: {error}).") from error
    if data.shape[0] == 0:
        raise SeqgenError(f"{wav_path.name}: the audio file holds no samples.")
    out_path = Path(out_path if out_path is not None else wav_path).with_suffix(suffix)
    # compression_level: 0 = best quality for libsndfile, hence 1 - quality.
    level = float(min(1.0, max(0.0, 1.0 - quality)))
    try:
        with atomic_path(out_path) as temporary, soundfile.SoundFile(
                str(temporary), "w", sample_rate, data.shape[1], subtype=subtype, format=container,
                compression_level=level) as output:
            # Blocks keep libsndfile's Vorbis encoder away from one huge buffer.
            for begin in range(0, data.shape[0], 65536):
                output.write(data[begin:begin + 65536])
    except Exception as error:
        raise SeqgenError(f"{wav_path.name}: could not encode {name.upper()} ({type(error).__name__}: {error}).") from error
    return CompressedAudio(out_path, name, mime_type, data.shape[0] / sample_rate)

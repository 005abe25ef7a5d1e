"""MIDI -> audio: FluidSynth with a General MIDI SoundFont, or a built-in synthesizer.

``render(midi_path, wav_path)`` writes a WAV file and says which renderer made
it.  With ``renderer="auto"`` (the default) it runs the ``fluidsynth`` binary
when one is on ``PATH`` and a SoundFont is found (``SEQGEN_SOUNDFONT`` first,
then the usual system locations, see ``SOUNDFONT_CANDIDATES``), and otherwise
the built-in synthesizer of :mod:`seqgen.synth`.

FluidSynth exits with status 0 and leaves an empty or silent file when the
SoundFont or the MIDI file is bad (the problem behind midi2audio issue #2), so
its output is checked (decodable, not silent, duration close to the MIDI's)
and ``auto`` falls back to the built-in synthesizer when it is not good;
``RenderResult.fallback_reason`` says why.  Both renderers' output is peak
normalised to the same level, so switching renderer does not change loudness.

``compress(wav_path)`` turns a WAV into OGG Vorbis (or MP3 where libsndfile
lacks Vorbis) for a browser.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqgen.errors import SeqgenError
from seqgen.synth import PEAK_LEVEL, TAIL_SECONDS, read_midi_notes, synthesize

RENDERERS = ("auto", "fluidsynth", "builtin")
SOUNDFONT_ENV = "SEQGEN_SOUNDFONT"
# Where Debian/Ubuntu (fluid-soundfont-gm, timgm6mb-soundfont,
# musescore-general-soundfont), Fedora, Arch and Homebrew put General MIDI
# SoundFonts, best first.  Glob patterns are expanded in sorted order.
SOUNDFONT_CANDIDATES = (
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
    """True when a ``fluidsynth`` executable is on ``PATH``."""
    return shutil.which("fluidsynth") is not None


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


def _write_wav_atomically(data: np.ndarray, wav_path: Path, sample_rate: int) -> None:
    """Write a 16-bit WAV via a temporary file, so ``wav_path`` is never left half written."""
    import soundfile

    wav_path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".wav", dir=wav_path.parent, prefix=f".{wav_path.stem}-")
    os.close(handle)
    try:
        soundfile.write(temporary, data, sample_rate, subtype="PCM_16", format="WAV")
        os.replace(temporary, wav_path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def audio_problem(wav_path: Path, expected_seconds: float | None = None) -> str | None:
    """Why a rendered WAV is unusable (missing, empty, undecodable, silent, wrong length), or None.

    A rendering shorter than 90 % of ``expected_seconds`` or longer than the
    expectation plus max(10 s, 25 %) is rejected.
    """
    import soundfile

    path = Path(wav_path)
    if not path.is_file():
        return f"{path.name} was not created"
    if path.stat().st_size <= 44:  # a WAV header alone is 44 bytes
        return f"{path.name} is empty ({path.stat().st_size} bytes)"
    try:
        data, sample_rate = soundfile.read(str(path), dtype="float64", always_2d=True)
    except Exception as error:
        return f"{path.name} cannot be decoded ({type(error).__name__}: {error})"
    if data.shape[0] == 0:
        return f"{path.name} holds no samples"
    if not np.all(np.isfinite(data)):
        return f"{path.name} holds invalid (NaN/inf) samples"
    rms = float(np.sqrt(np.mean(data**2)))
    if rms < SILENCE_RMS:
        return f"{path.name} is silent (RMS {rms:.2e})"
    seconds = data.shape[0] / sample_rate
    if expected_seconds is not None and expected_seconds > 0:
        if seconds < 0.9 * expected_seconds:
            return f"{path.name} lasts {seconds:.2f} s but the MIDI lasts {expected_seconds:.2f} s"
        if seconds > expected_seconds + max(10.0, 0.25 * expected_seconds):
            return f"{path.name} lasts {seconds:.2f} s, far longer than the MIDI's {expected_seconds:.2f} s"
    return None


def _wav_seconds(path: Path) -> float:
    import soundfile

    info = soundfile.info(str(path))
    return info.frames / info.samplerate


def _run_fluidsynth(midi_path: Path, wav_path: Path, soundfont: Path, sample_rate: int, timeout: float) -> subprocess.CompletedProcess:
    """Run FluidSynth's file renderer (the command midi2audio builds), capturing its output.

    ``-ni``: no shell, no MIDI input; ``-F``: render to a file as fast as possible;
    ``-q``: no banner; ``-O float``: 32-bit float samples, so loud chords cannot
    clip before ``_render_fluidsynth`` normalises the level.  Output stays
    captured so it does not clutter a server's log.
    """
    command = [
        "fluidsynth", "-ni", "-q", "-r", str(int(sample_rate)), "-T", "wav", "-O", "float", "-F", str(wav_path),
        str(soundfont), str(midi_path),
    ]
    return subprocess.run(
        command, capture_output=True, text=True, errors="replace", timeout=timeout, stdin=subprocess.DEVNULL, check=False
    )


def _render_fluidsynth(midi_path: Path, wav_path: Path, soundfont: Path, sample_rate: int, expected_seconds: float) -> str | None:
    """Render with FluidSynth into ``wav_path``; return None on success or the reason it failed.

    The output is checked with ``audio_problem``, trailing near-silence (FluidSynth
    pads a few seconds) is cut, and the level is peak normalised like the
    built-in synthesizer's.
    """
    import soundfile

    with tempfile.TemporaryDirectory(prefix="seqgen-fluidsynth-") as folder:
        raw = Path(folder) / "fluidsynth.wav"
        try:
            completed = _run_fluidsynth(midi_path, raw, soundfont, sample_rate, timeout=60 + 4 * expected_seconds)
        except subprocess.TimeoutExpired:
            return "FluidSynth timed out"
        except OSError as error:
            return f"FluidSynth could not start ({error})"
        problem = audio_problem(raw, expected_seconds)
        if problem is not None:
            messages = " ".join(((completed.stderr or "") + " " + (completed.stdout or "")).split())[-300:]
            detail = f"; exit status {completed.returncode}" + (f", it said: {messages}" if messages else "")
            return f"FluidSynth output was unusable: {problem}{detail}"
        data, rate = soundfile.read(str(raw), dtype="float64", always_2d=True)
    peak = float(np.max(np.abs(data)))
    audible = np.nonzero(np.max(np.abs(data), axis=1) > peak * 10 ** (TRIM_DB / 20))[0]
    end = max(int(audible[-1]) + 1, int(round(expected_seconds * rate))) + int(TAIL_SECONDS * rate)
    data = data[: min(end, data.shape[0])]
    fade = min(int(0.02 * rate), data.shape[0])  # no click where the tail is cut
    data[data.shape[0] - fade:] *= np.linspace(1.0, 0.0, fade)[:, None]
    _write_wav_atomically(data * (PEAK_LEVEL / peak), wav_path, rate)
    return None


def render(midi_path: Path, wav_path: Path, renderer: str = "auto", sample_rate: int = 44100) -> RenderResult:
    """Render a MIDI file to a 16-bit WAV file.

    Args:
        midi_path: a Standard MIDI File (e.g. from ``seqgen.music.write_midi``).
        wav_path: the WAV file to write (its folder is created).
        renderer: ``"auto"`` (FluidSynth when usable, else built-in),
            ``"fluidsynth"`` (FluidSynth or an error), or ``"builtin"``.
        sample_rate: samples per second.

    Returns:
        RenderResult: the file, the renderer that ran, the duration, and
        ``fallback_reason`` when ``auto`` could not use FluidSynth.

    Raises:
        SeqgenError: naming the file when ``midi_path`` is not a MIDI file or has
            no notes; with ``renderer="fluidsynth"``, when FluidSynth is missing
            or its output is unusable.
    """
    if renderer not in RENDERERS:
        raise SeqgenError(f"Unknown renderer {renderer!r}; choose one of: {', '.join(RENDERERS)}.")
    sample_rate = int(sample_rate)
    if not 8000 <= sample_rate <= 192000:
        raise SeqgenError(f"Sample rate {sample_rate} Hz is out of range (8000-192000).")
    midi_path, wav_path = Path(midi_path), Path(wav_path)
    notes = read_midi_notes(midi_path)  # validates the file for both renderers
    if not notes:
        raise SeqgenError(f"{midi_path.name}: the MIDI file has no notes to render.")
    expected_seconds = max(note.end for note in notes)

    reason = None
    if renderer in ("auto", "fluidsynth"):
        soundfont, reason = _locate_soundfont()
        if not fluidsynth_available():
            reason = "the fluidsynth program is not installed (on Debian/Ubuntu: apt-get install fluidsynth)"
        if reason is None:
            reason = _render_fluidsynth(midi_path, wav_path, soundfont, sample_rate, expected_seconds)
            if reason is None:
                return RenderResult(wav_path, "fluidsynth", _wav_seconds(wav_path), None, soundfont)
        if renderer == "fluidsynth":
            raise SeqgenError(f"{midi_path.name}: cannot render with FluidSynth: {reason}.")

    try:
        audio = synthesize(notes, sample_rate)
    except SeqgenError as error:
        raise SeqgenError(f"{midi_path.name}: {error}") from error
    _write_wav_atomically(audio, wav_path, sample_rate)
    return RenderResult(wav_path, "builtin", _wav_seconds(wav_path), reason, None)


# --- compression for the browser -----------------------------------------------------------

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
    """Encode a WAV file as OGG Vorbis (MP3 where libsndfile lacks Vorbis) for a browser.

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
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # compression_level: 0 = best quality for libsndfile, hence 1 - quality.
    level = float(min(1.0, max(0.0, 1.0 - quality)))
    handle, temporary = tempfile.mkstemp(suffix=suffix, dir=out_path.parent, prefix=f".{out_path.stem}-")
    os.close(handle)
    try:
        with soundfile.SoundFile(temporary, "w", sample_rate, data.shape[1], subtype=subtype, format=container,
                                 compression_level=level) as output:
            # Blocks keep libsndfile's Vorbis encoder away from one huge buffer.
            for begin in range(0, data.shape[0], 65536):
                output.write(data[begin:begin + 65536])
        os.replace(temporary, out_path)
    except Exception as error:
        raise SeqgenError(f"{wav_path.name}: could not encode {name.upper()} ({type(error).__name__}: {error}).") from error
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return CompressedAudio(out_path, name, mime_type, data.shape[0] / sample_rate)

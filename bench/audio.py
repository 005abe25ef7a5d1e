"""Render one generated-length melody with FluidSynth and with the built-in synthesizer.

    python bench/audio.py [--tokens 100] [--tempo 120] [--repeats 3] [--json]

The melody is the reference project's output shape: 100 seed tokens (notes and
a few chords), one quarter note apart, at 120 bpm (about 50 s of audio).
Prints {"seconds_audio", "fluidsynth_rtf", "fluidsynth_first_rtf",
"fluidsynth_one_pass_rtf", "builtin_rtf"}: rtf (real-time factor) is render
wall time / audio duration, the median of the repeats (below 1 = faster than
real time), 22.05 kHz mono WAV.  FluidSynth runs in-process with its SoundFont
loaded before the clock starts.  ``fluidsynth_rtf`` is the renderer as the
studio runs it, from notes it has already played (:mod:`seqgen.fluid` keeps
them); ``fluidsynth_first_rtf`` its first render, every note played anew;
``fluidsynth_one_pass_rtf`` the synthesizer fed every event in one pass
(:func:`seqgen.fluid.play_through`), the samples the other two add up to.  The
FluidSynth figures are null when FluidSynth or a SoundFont is missing.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from seqgen import audio, fluid, synth  # noqa: E402
from seqgen.music import write_midi  # noqa: E402

# A C-major-ish palette: pitch names for notes, pitch-class normal orders for chords.
NOTES = ["C4", "D4", "E4", "F4", "G4", "A4", "B4", "C5", "D5", "E5", "G3", "A3"]
CHORDS = ["0.4.7", "5.9.0", "7.11.2", "9.0.4"]


def melody(num_tokens: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [str(rng.choice(CHORDS)) if rng.random() < 0.1 else str(rng.choice(NOTES)) for _ in range(num_tokens)]


def real_time_factor(midi_path: Path, wav_path: Path, renderer: str, repeats: int) -> tuple[float, float]:
    """(median rtf, audio seconds) for ``repeats`` renders."""
    factors, seconds = [], 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        result = audio.render(midi_path, wav_path, renderer=renderer)
        elapsed = time.perf_counter() - start
        if result.renderer != renderer:  # pragma: no cover - only if FluidSynth failed mid-run
            raise SystemExit(f"asked for {renderer}, got {result.renderer}: {result.fallback_reason}")
        seconds = result.seconds
        factors.append(elapsed / seconds)
    return statistics.median(factors), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--tempo", type=float, default=120.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="seqgen-bench-audio-") as folder:
        midi_path = write_midi(melody(args.tokens), Path(folder) / "melody.mid", "seed", tempo_bpm=args.tempo)
        seconds_audio = synth.midi_duration(midi_path)
        builtin_rtf, builtin_seconds = real_time_factor(midi_path, Path(folder) / "builtin.wav", "builtin", args.repeats)
        fluidsynth_rtf = fluidsynth_seconds = first_rtf = one_pass_rtf = None
        soundfont = audio.find_soundfont()
        if audio.fluidsynth_available() and soundfont is not None:
            fluid.load(soundfont, audio.DEFAULT_SAMPLE_RATE)
            first_rtf = real_time_factor(midi_path, Path(folder) / "first.wav", "fluidsynth", 1)[0]
            fluidsynth_rtf, fluidsynth_seconds = real_time_factor(
                midi_path, Path(folder) / "fluidsynth.wav", "fluidsynth", args.repeats)
            notes = synth.read_midi_notes(midi_path)
            one_pass = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                fluid.play_through(notes, soundfont, audio.DEFAULT_SAMPLE_RATE)
                one_pass.append((time.perf_counter() - start) / fluidsynth_seconds)
            one_pass_rtf = statistics.median(one_pass)
    rounded = lambda value: None if value is None else round(value, 4)  # noqa: E731
    results = {
        "seconds_audio": round(seconds_audio, 3),
        "fluidsynth_rtf": rounded(fluidsynth_rtf),
        "fluidsynth_first_rtf": rounded(first_rtf),
        "fluidsynth_one_pass_rtf": rounded(one_pass_rtf),
        "builtin_rtf": round(builtin_rtf, 4),
    }
    if args.json:
        print(json.dumps(results))
        return
    print(f"melody: {args.tokens} seed tokens at {args.tempo:g} bpm = {seconds_audio:.2f} s of notes")
    print(f"builtin:    rtf {builtin_rtf:.4f} (WAV {builtin_seconds:.2f} s)")
    if fluidsynth_rtf is None:
        print("fluidsynth: unavailable (install fluidsynth and a General MIDI SoundFont, or set SEQGEN_SOUNDFONT)")
    else:
        print(f"fluidsynth: rtf {fluidsynth_rtf:.4f} (WAV {fluidsynth_seconds:.2f} s, SoundFont {soundfont}); "
              f"first render {first_rtf:.4f}, one pass through the synthesizer {one_pass_rtf:.4f}")


if __name__ == "__main__":
    main()

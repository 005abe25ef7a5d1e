"""Generation from a bundle: melodies to MIDI, audio, sheet music and a quality report; lyrics to text.

This module composes the stages (sampler → music/audio/score → quality); the
CLI and the studio call it and only display what it returns.  Every melody
output gets a ``params.json`` beside it recording how it was made.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from seqgen.bundle import Bundle
from seqgen.errors import SeqgenError
from seqgen.files import write_json
from seqgen.primers import melody_primer, text_primer
from seqgen.sampling import SamplingOptions

DEFAULT_SEED_LINE = "let dance for the rest of the night here"


@dataclass
class Melody:
    """One generated melody and its files."""

    tokens: list[str]
    midi: Path
    wav: Path | None = None
    audio: Path | None = None  # compressed copy for the browser
    renderer: str | None = None
    renderer_note: str | None = None  # why FluidSynth was not used, if it was not
    musicxml: Path | None = None
    svg: list[str] = field(default_factory=list)
    params: Path | None = None
    quality: dict = field(default_factory=dict)


@dataclass
class MelodyOutput:
    melodies: list[Melody]
    primer: list[str]
    dropped: dict[str, int]
    timings: dict
    settings: dict


@dataclass
class LyricsOutput:
    seed: str  # the seed as the model saw it (cleaned)
    texts: list[str]  # generated continuations, seed excluded
    dropped: dict[str, int]
    quality: list[dict]
    timings: dict
    settings: dict


def generate_melody(
    bundle: Bundle,
    out_dir: Path,
    length: int = 100,
    primer=None,
    mode: str | None = None,
    sampling: SamplingOptions | None = None,
    variations: int = 1,
    rng_seed: int | None = None,
    tempo_bpm: float = 120.0,
    instrument_program: int = 0,
    render_audio: bool = True,
    engrave: bool = True,
    renderer: str = "auto",
    on_token: Callable | None = None,
    **sampling_fields,
) -> MelodyOutput:
    """Generate melodies from a music bundle and write their files into ``out_dir``.

    Args:
        bundle: a loaded music bundle.
        out_dir: folder for ``melody-N.mid/.wav/.ogg/.musicxml/.json``.
        length: new tokens per melody.
        primer: None (a random window of the bundle's seed split), a score
            file path (tokenized with the bundle's tokenizer), or tokens.
        mode, sampling, variations, rng_seed, on_token, **sampling_fields:
            see :meth:`seqgen.sample.Sampler.generate`.
        tempo_bpm: playback tempo.
        instrument_program: General MIDI program (0 = piano).
        render_audio: also write WAV and a compressed copy.
        engrave: also write MusicXML and SVG sheet music.
        renderer: ``auto``, ``fluidsynth`` or ``builtin``.
    """
    from seqgen.music import REST, write_midi
    from seqgen.quality import melody_report

    if bundle.config["kind"] != "music":
        raise SeqgenError(f"Bundle {bundle.folder.name} is a {bundle.config['kind']} model; pick a music bundle.")
    if not (np.isfinite(tempo_bpm) and 20 <= tempo_bpm <= 400):
        raise SeqgenError(f"Tempo must be between 20 and 400 bpm (got {tempo_bpm}).")
    if not 0 <= int(instrument_program) <= 127:
        raise SeqgenError(f"The General MIDI instrument must be 0–127 (got {instrument_program}).")
    tokenizer = bundle.config["tokenizer"]
    primer_tokens = melody_primer(bundle, primer, rng_seed)
    result = bundle.sampler.generate(primer_tokens, length, sampling, variations=variations, rng_seed=rng_seed,
                                     on_token=on_token, mode=mode, **sampling_fields)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = {
        "bundle": bundle.folder.name, "preset": bundle.config["preset"], "tokenizer": tokenizer, "length": length,
        "mode": result.mode, **result.sampling.to_json(), "variations": variations, "rng_seed": rng_seed,
        "tempo_bpm": tempo_bpm, "instrument_program": int(instrument_program), "primer": result.primer,
    }
    histogram = bundle.stats.get("pitch_class_histogram")
    melodies = []
    started = time.perf_counter()
    for number, (tokens, ids) in enumerate(zip(result.tokens, result.ids), start=1):
        stem = out_dir / f"melody-{number}"
        melody = Melody(tokens=tokens, midi=write_midi(tokens, stem.with_suffix(".mid"), tokenizer, tempo_bpm, instrument_program))
        melody.quality = melody_report(tokens, ids, histogram, bundle.corpus_ids)
        if render_audio and tokenizer == "timed" and all(token.rpartition("_")[0] == REST for token in tokens):
            # A short timed melody can be all rests: its MIDI has no notes, which no renderer accepts.
            melody.renderer_note = "the melody is all rests: there is no audio to render"
        elif render_audio:
            from seqgen.audio import compress, render

            rendered = render(melody.midi, stem.with_suffix(".wav"), renderer=renderer)
            melody.wav, melody.renderer, melody.renderer_note = rendered.wav_path, rendered.renderer, rendered.fallback_reason
            melody.audio = compress(rendered.wav_path).path
        if engrave:
            from seqgen.score import engrave_svg, write_musicxml

            melody.musicxml = write_musicxml(tokens, stem.with_suffix(".musicxml"), tokenizer, tempo_bpm, instrument_program)
            melody.svg = engrave_svg(melody.musicxml)
        melody.params = stem.with_suffix(".json")
        write_json(melody.params, {**settings, "variation": number, "tokens": tokens, "renderer": melody.renderer, "quality": melody.quality})
        melodies.append(melody)
    timings = {**result.timings, "output_ms": (time.perf_counter() - started) * 1000}
    return MelodyOutput(melodies, result.primer, result.dropped, timings, settings)


def complete_lyrics(
    bundle: Bundle,
    seed_text: str = DEFAULT_SEED_LINE,
    length: int = 400,
    lines: int | None = None,
    stop_at_verse_end: bool = False,
    mode: str | None = None,
    sampling: SamplingOptions | None = None,
    variations: int = 1,
    rng_seed: int | None = None,
    on_token: Callable | None = None,
    **sampling_fields,
) -> LyricsOutput:
    """Complete a seed line with a lyrics bundle.

    Args:
        bundle: a loaded lyrics bundle.
        seed_text: the line to continue; characters outside the vocabulary
            are dropped and reported.
        length: characters to generate (the most, when a stop rule applies).
        lines: stop after this many completed lines.
        stop_at_verse_end: stop at the first blank line.
        Other arguments: see :meth:`seqgen.sample.Sampler.generate`.
    """
    from seqgen.quality import lyrics_report

    if bundle.config["kind"] != "lyrics":
        raise SeqgenError(f"Bundle {bundle.folder.name} is a {bundle.config['kind']} model; pick a lyrics bundle.")
    if not isinstance(seed_text, str) or not seed_text.strip():
        raise SeqgenError("The seed line is empty: type a few words to start from.")
    if lines is not None and lines < 1:
        raise SeqgenError(f"Lines must be at least 1 (got {lines}).")
    tokens, dropped = text_primer(bundle, seed_text)
    if not tokens:
        shown = ", ".join(repr(char) for char in dropped) or "none"
        raise SeqgenError(f"No character of the seed line is in the model's vocabulary (dropped: {shown}).")
    result = bundle.sampler.generate(tokens, length, sampling, variations=variations, rng_seed=rng_seed,
                                     on_token=on_token, mode=mode, **sampling_fields)
    texts = [cut_text("".join(generated), lines, stop_at_verse_end) for generated in result.tokens]
    corpus_words = set(bundle.stats["words"]) if "words" in bundle.stats else None
    settings = {"bundle": bundle.folder.name, "preset": bundle.config["preset"], "length": length, "lines": lines,
                "stop_at_verse_end": stop_at_verse_end, "mode": result.mode, **result.sampling.to_json(),
                "variations": variations, "rng_seed": rng_seed}
    for key in list(dropped):
        dropped[key] = int(dropped[key])
    return LyricsOutput("".join(tokens), texts, dict(dropped), [lyrics_report(text, corpus_words) for text in texts], result.timings, settings)


def cut_text(text: str, lines: int | None, stop_at_verse_end: bool) -> str:
    """Apply the stop rules: after ``lines`` line breaks, or at the first blank line."""
    if stop_at_verse_end and "\n\n" in text:
        text = text[:text.index("\n\n")]
    if lines is not None:
        parts = text.split("\n")
        text = "\n".join(parts[:lines])
    return text


def to_json(output: MelodyOutput | LyricsOutput) -> dict:
    """A JSON-ready summary of a generation, as the CLI prints it."""
    if isinstance(output, MelodyOutput):
        return {
            "tokens": output.melodies[0].tokens if len(output.melodies) == 1 else [m.tokens for m in output.melodies],
            "primer": output.primer, "dropped": output.dropped, "timings": output.timings, "settings": output.settings,
            "renderer": output.melodies[0].renderer, "renderer_note": output.melodies[0].renderer_note,
            "quality": output.melodies[0].quality if len(output.melodies) == 1 else [m.quality for m in output.melodies],
            "files": [{key: str(getattr(m, key)) for key in ("midi", "wav", "audio", "musicxml", "params") if getattr(m, key)} for m in output.melodies],
        }
    return {
        "seed": output.seed, "text": output.texts[0] if len(output.texts) == 1 else output.texts, "dropped": output.dropped,
        "quality": output.quality[0] if len(output.quality) == 1 else output.quality, "timings": output.timings, "settings": output.settings,
    }


def dumps(output) -> str:
    return json.dumps(to_json(output), ensure_ascii=False)

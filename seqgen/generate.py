"""Generation from a bundle: melodies to MIDI, audio, sheet music and a quality report; lyrics to text.

A melody request has two phases, so that a server answers with what the user
waits for first: :func:`generate_melody` samples the tokens and writes the
MIDI file, a browser-playable WAV and ``params.json`` (a few times the cost of
sampling); :func:`describe_melodies` then adds what the user looks at
afterwards: the quality report, the piano roll notes and, with ``engrave``,
MusicXML and verovio SVG sheet music.  The CLI and the studio call both and
only display what they return.
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
from seqgen.sampling import SamplingOptions, Steps

DEFAULT_SEED_LINE = "let dance for the rest of the night here"


def draw_seed(rng_seed: int | None) -> int:
    """``rng_seed``, or a fresh one when None: the settings record it, so the output can be made again."""
    return int(np.random.default_rng().integers(2**31)) if rng_seed is None else int(rng_seed)


@dataclass
class Melody:
    """One generated melody and its files; the fields after ``params`` are filled by :func:`describe_melodies`."""

    tokens: list[str]
    ids: list[int]
    midi: Path
    wav: Path | None = None  # 16-bit mono WAV of the melody (with primer_first: from the moment the primer ends)
    primed_wav: Path | None = None  # with primer_first: the primer, then the melody, in one WAV
    renderer: str | None = None
    renderer_note: str | None = None  # why FluidSynth was not used, or why there is no audio
    params: Path | None = None
    quality: dict = field(default_factory=dict)
    ended: bool | None = None  # with until_end: whether the model ended the piece itself (None: not asked)
    piano_roll: list[dict] = field(default_factory=list)  # seqgen.score.piano_roll_notes
    musicxml: Path | None = None
    svg: list[str] = field(default_factory=list)


@dataclass
class MelodyOutput:
    melodies: list[Melody]
    primer: list[str]
    dropped: dict[str, int]
    timings: dict
    settings: dict
    steps: list[Steps] | None = None  # with explain: per melody, per token (seqgen.sampling.Steps)
    hidden: np.ndarray | None = None  # with record: (melodies, primer + length, units), see GenerationResult


@dataclass
class LyricsOutput:
    seed: str  # the seed as the model saw it (cleaned)
    texts: list[str]  # generated continuations, seed excluded
    dropped: dict[str, int]
    quality: list[dict]
    timings: dict
    settings: dict
    steps: list[Steps] | None = None  # with explain: per text, per character (seqgen.sampling.Steps)
    hidden: list[np.ndarray] | None = None  # with record: per text, (seed + text characters, units)


def ends_pieces(bundle: Bundle) -> bool:
    """Whether a music bundle learned where pieces end (its corpus was tokenized with start and end tokens)."""
    from seqgen.events import END, START

    return bundle.config["kind"] == "music" and END in bundle.vocab and START in bundle.vocab


def piece_length_cap(bundle: Bundle) -> int:
    """The length cap of a whole piece: the 99th percentile of the training corpus's piece lengths, and one for the
    end token, within the generation cap; the generation cap itself when the bundle keeps no corpus."""
    from seqgen.events import piece_lengths
    from seqgen.sample import max_length_cap

    cap, lengths = max_length_cap(), piece_lengths(bundle.vocab, bundle.corpus_ids)  # none without start and end tokens
    return min(cap, int(np.ceil(np.percentile(lengths, 99))) + 1) if len(lengths) else cap


def melody_length(bundle: Bundle, length: int | None, until_end: bool) -> int:
    """The tokens a melody request may write: ``length``, else 100, or with ``until_end`` :func:`piece_length_cap`."""
    if length is not None:
        return length
    return piece_length_cap(bundle) if until_end else 100


def generate_melody(
    bundle: Bundle,
    out_dir: Path,
    length: int | None = None,
    primer=None,
    mode: str | None = None,
    sampling: SamplingOptions | None = None,
    variations: int = 1,
    rng_seed: int | None = None,
    tempo_bpm: float = 120.0,
    instrument_program: int = 0,
    render_audio: bool = True,
    renderer: str = "auto",
    max_audio_seconds: float | None = None,
    primer_first: bool = False,
    on_token: Callable | None = None,
    on_render: Callable[[int, int], None] | None = None,
    explain: int | None = None,
    record: str | None = None,
    until_end: bool = False,
    **sampling_fields,
) -> MelodyOutput:
    """Phase 1: sample melodies from a music bundle and write their MIDI, WAV and params files into ``out_dir``.

    Args:
        bundle: a loaded music bundle.
        out_dir: folder for ``melody-N.mid/.wav/.json`` (and phase 2's ``.musicxml``).
        length: new tokens per melody (default 100), or with ``until_end`` their
            cap (default :func:`piece_length_cap`).
        primer: None (a random window of the bundle's seed split; with
            ``until_end``, a piece's start token: the model writes the whole
            piece), a score file path (tokenized with the bundle's tokenizer), or tokens.
        until_end: write until the model ends the piece (its end token), at
            most ``length`` tokens; each melody's ``ended`` says whether it did.
            Only for bundles that learned piece ends (:func:`ends_pieces`).
        rng_seed: seeds the primer window and the sampling; None draws one
            (recorded in ``settings`` and ``params.json``).
        mode, sampling, variations, on_token, explain, record, **sampling_fields:
            see :meth:`seqgen.sample.Sampler.generate`.
        tempo_bpm: playback tempo.
        instrument_program: General MIDI program (0 = piano).
        render_audio: also write the WAV.
        renderer: ``auto``, ``fluidsynth`` or ``builtin``.
        max_audio_seconds: a melody lasting longer gets no audio, only its MIDI
            and a ``renderer_note`` (default: see :func:`seqgen.audio.max_audio_seconds`).
        primer_first: also write ``melody-N-primed.wav``, where the primer plays and the
            melody follows.  Primer and melody are played in one pass and
            ``melody-N.wav`` is that audio from the moment the primer ends (so the
            primer's last note may still ring under the first generated one).
        on_render: called as ``on_render(number, count)`` before melody ``number`` (from 1) is rendered.
    """
    from seqgen.music import duration_quarters, midi_notes, write_midi

    if bundle.config["kind"] != "music":
        raise SeqgenError(f"Bundle {bundle.folder.name} is a {bundle.config['kind']} model; pick a music bundle.")
    if not (np.isfinite(tempo_bpm) and 20 <= tempo_bpm <= 400):
        raise SeqgenError(f"Tempo must be between 20 and 400 bpm (got {tempo_bpm}).")
    if not 0 <= int(instrument_program) <= 127:
        raise SeqgenError(f"The General MIDI instrument must be 0–127 (got {instrument_program}).")
    if render_audio:
        from seqgen.audio import AudioTooLong, max_audio_seconds as audio_limit, play_notes

        max_audio_seconds = audio_limit(max_audio_seconds)  # a bad limit fails before sampling
    tokenizer = bundle.config["tokenizer"]
    rng_seed = draw_seed(rng_seed)
    stop_token = None
    if until_end:
        from seqgen.events import END, START

        if not ends_pieces(bundle):
            raise SeqgenError(f"Bundle {bundle.folder.name} was trained without piece ends (tokenizer {tokenizer}), so it "
                              "cannot end a piece: give a length instead, or train on the events tokenizer.")
        stop_token = END
        primer = [START] if primer is None else primer
    length = melody_length(bundle, length, until_end)
    primer_tokens = melody_primer(bundle, primer, rng_seed)
    result = bundle.sampler.generate(primer_tokens, length, sampling, variations=variations, rng_seed=rng_seed,
                                     on_token=on_token, mode=mode, explain=explain, record=record,
                                     stop_token=stop_token, **sampling_fields)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = {
        "bundle": bundle.folder.name, "preset": bundle.config["preset"], "tokenizer": tokenizer, "length": length,
        "mode": result.mode, **result.sampling.to_json(), "variations": variations, "rng_seed": rng_seed,
        "tempo_bpm": tempo_bpm, "instrument_program": int(instrument_program), "primer": result.primer,
        "until_end": bool(until_end),
    }
    melodies = []
    started = time.perf_counter()
    lead_quarters, lead_notes = 0.0, []  # the primer, played first
    if primer_first and render_audio:
        lead_notes = midi_notes(result.primer, tokenizer, tempo_bpm, instrument_program)
        lead_quarters = duration_quarters(result.primer, tokenizer) if lead_notes else 0.0
    for number, (tokens, ids) in enumerate(zip(result.tokens, result.ids), start=1):
        stem = out_dir / f"melody-{number}"
        midi = write_midi(tokens, stem.with_suffix(".mid"), tokenizer, tempo_bpm, instrument_program)
        melody = Melody(tokens=tokens, ids=[int(token_id) for token_id in ids], midi=midi, params=stem.with_suffix(".json"),
                        ended=None if result.ended is None else result.ended[number - 1])
        played = midi_notes(tokens, tokenizer, tempo_bpm, instrument_program, start_quarters=lead_quarters) if render_audio else []
        if render_audio and not played:
            # A short melody can be all rests (timed) or bar lines (events): its MIDI has no notes, which no renderer accepts.
            melody.renderer_note = "the melody has no notes (only rests or bar lines): there is no audio to render"
        elif render_audio:
            if on_render is not None:
                on_render(number, len(result.tokens))
            notes = lead_notes + played
            try:
                rendering = play_notes(notes, renderer, max_seconds=max_audio_seconds, name=midi.name)
            except AudioTooLong as error:
                melody.renderer_note = str(error)
            else:
                rendered = rendering.write(stem.with_suffix(".wav"), start_seconds=lead_quarters * 60.0 / tempo_bpm)
                melody.wav, melody.renderer, melody.renderer_note = rendered.wav_path, rendered.renderer, rendered.fallback_reason
                if lead_notes:
                    melody.primed_wav = rendering.write(stem.with_name(f"{stem.name}-primed.wav")).wav_path
        _write_params(melody, settings, number)
        melodies.append(melody)
    timings = {**result.timings, "audio_ms": (time.perf_counter() - started) * 1000}
    return MelodyOutput(melodies, result.primer, result.dropped, timings, settings, result.steps, result.hidden)


def describe_melodies(bundle: Bundle, output: MelodyOutput, engrave: bool = True) -> MelodyOutput:
    """Phase 2: add each melody's quality report and piano roll notes and, with ``engrave``, MusicXML and SVG.

    ``bundle`` is the one that generated ``output`` (the report compares with
    its corpus).  ``params.json`` is rewritten with the quality report.
    Returns ``output``, completed in place.
    """
    from seqgen.quality import melody_report
    from seqgen.score import engrave_svg, piano_roll_notes, write_musicxml

    settings = output.settings
    if bundle.folder.name != settings["bundle"]:
        raise SeqgenError(f"These melodies come from {settings['bundle']}, not {bundle.folder.name}: describe them with their own model.")
    started = time.perf_counter()
    histogram = bundle.stats.get("pitch_class_histogram")
    for number, melody in enumerate(output.melodies, start=1):
        melody.quality = melody_report(melody.tokens, melody.ids, histogram, bundle.corpus_ids)
        melody.piano_roll = piano_roll_notes(melody.tokens, settings["tokenizer"])
        if engrave:
            melody.musicxml = write_musicxml(melody.tokens, melody.midi.with_suffix(".musicxml"), settings["tokenizer"],
                                             settings["tempo_bpm"], settings["instrument_program"])
            melody.svg = engrave_svg(melody.musicxml)
        _write_params(melody, settings, number)
    output.timings["describe_ms"] = (time.perf_counter() - started) * 1000
    return output


def _write_params(melody: Melody, settings: dict, number: int) -> None:
    """``params.json`` beside the melody: how it was made, its tokens, renderer and (once described) quality."""
    record = {**settings, "variation": number, "tokens": melody.tokens, "ended": melody.ended, "renderer": melody.renderer,
              "renderer_note": melody.renderer_note}
    if melody.quality:
        record["quality"] = melody.quality
    write_json(melody.params, record)


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
    explain: int | None = None,
    record: str | None = None,
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
        rng_seed: None draws one (recorded in ``settings``).
        Other arguments: see :meth:`seqgen.sample.Sampler.generate`; ``steps``
            and ``hidden`` are cut with the texts.
    """
    from seqgen.quality import lyrics_report

    if bundle.config["kind"] != "lyrics":
        raise SeqgenError(f"Bundle {bundle.folder.name} is a {bundle.config['kind']} model; pick a lyrics bundle.")
    if not isinstance(seed_text, str) or not seed_text.strip():
        raise SeqgenError("The seed line is empty: type a few words to start from.")
    if lines is not None and lines < 1:
        raise SeqgenError(f"Lines must be at least 1 (got {lines}).")
    rng_seed = draw_seed(rng_seed)
    tokens, dropped = text_primer(bundle, seed_text)
    if not tokens:
        shown = ", ".join(repr(char) for char in dropped) or "none"
        raise SeqgenError(f"No character of the seed line is in the model's vocabulary (dropped: {shown}).")
    result = bundle.sampler.generate(tokens, length, sampling, variations=variations, rng_seed=rng_seed,
                                     on_token=on_token, mode=mode, explain=explain, record=record, **sampling_fields)
    texts = [cut_text("".join(generated), lines, stop_at_verse_end) for generated in result.tokens]
    steps = None if result.steps is None else [explained[:len(text)] for explained, text in zip(result.steps, texts)]
    primed = len(result.primer)
    hidden = None if result.hidden is None else [row[:primed + len(text)] for row, text in zip(result.hidden, texts)]
    corpus_words = set(bundle.stats["words"]) if "words" in bundle.stats else None
    settings = {"bundle": bundle.folder.name, "preset": bundle.config["preset"], "length": length, "lines": lines,
                "stop_at_verse_end": stop_at_verse_end, "mode": result.mode, **result.sampling.to_json(),
                "variations": variations, "rng_seed": rng_seed}
    for key in list(dropped):
        dropped[key] = int(dropped[key])
    return LyricsOutput("".join(tokens), texts, dict(dropped), [lyrics_report(text, corpus_words) for text in texts], result.timings,
                        settings, steps, hidden)


def cut_text(text: str, lines: int | None, stop_at_verse_end: bool) -> str:
    """Apply the stop rules: after ``lines`` line breaks, or at the first blank line."""
    if stop_at_verse_end and "\n\n" in text:
        text = text[:text.index("\n\n")]
    if lines is not None:
        parts = text.split("\n")
        text = "\n".join(parts[:lines])
    return text


def to_json(output: MelodyOutput | LyricsOutput) -> dict:
    """A JSON-ready summary of a generation, as the CLI prints it (with ``steps`` when it was explained)."""
    if isinstance(output, MelodyOutput):
        summary = {
            "tokens": output.melodies[0].tokens if len(output.melodies) == 1 else [m.tokens for m in output.melodies],
            "primer": output.primer, "dropped": output.dropped, "timings": output.timings, "settings": output.settings,
            "ended": [m.ended for m in output.melodies],  # per variation; null unless until_end
            "renderer": output.melodies[0].renderer, "renderer_note": output.melodies[0].renderer_note,
            "quality": output.melodies[0].quality if len(output.melodies) == 1 else [m.quality for m in output.melodies],
            "files": [{key: str(getattr(m, key)) for key in ("midi", "wav", "musicxml", "params") if getattr(m, key)} for m in output.melodies],
        }
    else:
        summary = {
            "seed": output.seed, "text": output.texts[0] if len(output.texts) == 1 else output.texts, "dropped": output.dropped,
            "quality": output.quality[0] if len(output.quality) == 1 else output.quality, "timings": output.timings, "settings": output.settings,
        }
    if output.steps is not None:
        summary["steps"] = list(output.steps[0]) if len(output.steps) == 1 else [list(steps) for steps in output.steps]
    return summary


def dumps(output) -> str:
    return json.dumps(to_json(output), ensure_ascii=False)

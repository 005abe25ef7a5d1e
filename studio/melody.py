"""Melody tab: generate from a music bundle; listen, see the piano roll and the score, download the files.

Two events answer a click: ``generate_melody`` samples and renders, and returns
the players, tokens and downloads; ``describe_melody`` follows it with the
piano rolls, sheet music and quality report (see :mod:`seqgen.generate`),
reading the melodies from the session's ``gr.State``.
"""

from __future__ import annotations

import html

import gradio as gr

from seqgen.errors import SeqgenError
from seqgen.sources import MUSIC_SUFFIXES
from studio import bundles, insight, pool, step
from studio.common import random_seed, real, request_dir, sampling_options, user_errors, whole

INTRO = """\
Generate a melody from a music model, starting from a primer: a random window of the model's held-out seed set,
your own MIDI file, or tokens you type. **Temperature** reshapes the model's probabilities before each draw: 0 always
takes the most likely token (the reference's argmax, which soon repeats itself), 1 follows the model, higher values
get wilder. Fix the RNG seed to get the same melody again; variations are continuations of one primer side by side.
"""

MAX_SLOTS = 4  # variations shown (each with its player, piano roll and score)
PRIMERS = ("random seed window", "uploaded MIDI", "tokens")
MODES = {"auto": None, "window (the reference)": "window", "stateful (fast)": "stateful"}
INSTRUMENTS = [  # General MIDI programs
    ("Acoustic grand piano", 0), ("Bright piano", 1), ("Harpsichord", 6), ("Celesta", 8), ("Music box", 10),
    ("Vibraphone", 11), ("Marimba", 12), ("Church organ", 19), ("Nylon guitar", 24), ("Violin", 40), ("Cello", 42),
    ("String ensemble", 48), ("Choir aahs", 52), ("Trumpet", 56), ("Clarinet", 71), ("Flute", 73),
]


def renderer_label(melody) -> str:
    if melody.renderer == "fluidsynth":
        return "FluidSynth (General MIDI SoundFont)"
    return "the built-in synth" + (f" (FluidSynth unavailable: {melody.renderer_note})" if melody.renderer_note else "")


def sheet_html(svg_pages: list[str]) -> str:
    """seqgen's own verovio SVG (no user text in it), in a scrollable box."""
    pages = "".join(f'<div style="background:white;margin-bottom:8px">{page}</div>' for page in svg_pages)
    return f'<div class="seqgen-sheet" style="max-height:480px;overflow:auto">{pages}</div>'


def summary_markdown(output, bundle_label: str) -> str:
    primer = output.primer
    shown = " ".join(primer[:24]) + (" …" if len(primer) > 24 else "")
    lines = [f"**{len(output.melodies)} melod{'y' if len(output.melodies) == 1 else 'ies'}** from **{html.escape(bundle_label)}**, "
             f"{output.settings['length']} tokens each, mode `{output.settings['mode']}`, "
             f"{output.timings.get('per_token_ms', 0):.2f} ms per token.",
             f"\nPrimer ({len(primer)} tokens): `{shown}`"]
    if output.dropped:
        dropped = ", ".join(f"`{token}` ×{count}" for token, count in output.dropped.items())
        lines.append(f"\nPrimer tokens the model does not know (skipped): {dropped}")
    return "\n".join(lines)


def primer_input(primer_source, primer_file=None, primer_tokens=None):
    """The primer the form asks for: None (a random seed window), a score file's path, or a token list."""
    if primer_source == "uploaded MIDI":
        if not primer_file:
            raise SeqgenError("Upload a MIDI (or other score) file to use as the primer, or pick another primer.")
        from pathlib import Path

        return Path(primer_file)
    if primer_source == "tokens":
        primer = (primer_tokens or "").split()  # a list: never read as a file name
        if not primer:
            raise SeqgenError("Type some primer tokens (e.g. `C4 E4 G4 4.7.11`), or pick another primer.")
        return primer
    if primer_source in (None, "", PRIMERS[0]):
        return None
    raise SeqgenError(f"Unknown primer {primer_source!r}; choose one of: {', '.join(PRIMERS)}.")


@user_errors
def run_melody(bundle, primer_source, primer_file=None, primer_tokens=None, length=100, temperature=1.0, top_k=0, top_p=1.0,
               repetition_penalty=1.0, variations=1, rng_seed=-1, tempo=120, instrument=0, mode="auto", progress=gr.Progress()):
    """Phase 1: generate and render melodies; return players, downloads, tokens, summary and the state for phase 2."""
    entry = bundles.find(bundle, "music")
    length = whole(length, "Length", minimum=1)
    variations = whole(variations, "Variations", minimum=1)
    if variations > MAX_SLOTS:
        raise SeqgenError(f"The studio shows up to {MAX_SLOTS} variations (got {variations}).")
    primer = primer_input(primer_source, primer_file, primer_tokens)
    if mode not in MODES:
        raise SeqgenError(f"Unknown mode {mode!r}; choose one of: {', '.join(MODES)}.")
    options = dict(length=length, primer=primer, mode=MODES[mode], sampling=sampling_options(temperature, top_k, top_p, repetition_penalty),
                   variations=variations, rng_seed=random_seed(rng_seed), tempo_bpm=real(tempo, "Tempo"),
                   instrument_program=whole(instrument, "Instrument", minimum=0), **insight.GENERATION_OPTIONS)
    progress(0, desc="waiting for a free generator")
    call = pool.submit(generate_in_worker, entry, request_dir("melody"), options)
    for batch in call.events():
        stage, done, total = batch[-1]
        progress((done, total), desc=stage, unit="tokens" if stage == "generating" else "melodies")
    output = call.result()
    audio = []
    for number in range(MAX_SLOTS):
        if number < len(output.melodies):
            melody = output.melodies[number]
            heard = f"rendered with {renderer_label(melody)}" if melody.wav else f"no audio: {melody.renderer_note}"
            audio.append(gr.update(value=str(melody.wav) if melody.wav else None, visible=True, label=f"Melody {number + 1}, {heard}"))
        else:
            audio.append(gr.update(value=None, visible=False))
    tokens = "\n\n".join(f"Melody {number}: {' '.join(melody.tokens)}" for number, melody in enumerate(output.melodies, start=1))
    state = {"entry": entry, "output": output}
    return (*audio, downloads(output), tokens, summary_markdown(output, entry.label), state)


def generate_in_worker(entry, out_dir, options: dict):
    """Phase 1 in a :mod:`studio.pool` worker; emits ``(stage, done, total)`` progress."""
    from seqgen.generate import generate_melody

    length = options["length"]

    def on_token(variation, step, token):
        if variation == 0 and step % 10 == 0:
            pool.emit(("generating", step, length))

    def on_render(number, count):
        pool.emit(("rendering audio", number - 1, count))

    return generate_melody(bundles.load(entry), out_dir, on_token=on_token, on_render=on_render, **options)


@user_errors
def describe_melody(state, progress=gr.Progress()):
    """Phase 2: the downloads with MusicXML, the quality report, piano rolls and sheet music of the last melodies."""
    if not state:
        raise SeqgenError("Generate a melody first: there is nothing to describe yet.")
    progress(0, desc="engraving the score")
    output, figures = pool.submit(describe_in_worker, state["entry"], state["output"]).result()
    rolls, sheets = [], []
    for number in range(MAX_SLOTS):
        if number < len(output.melodies):
            melody = output.melodies[number]
            rolls.append(gr.update(value=figures[number], visible=True))
            sheets.append(gr.update(value=sheet_html(melody.svg), visible=bool(melody.svg)))
        else:
            rolls.append(gr.update(value=None, visible=False))
            sheets.append(gr.update(value="", visible=False))
    quality = {f"melody {number}": melody.quality for number, melody in enumerate(output.melodies, start=1)}
    return (downloads(output), quality, *rolls, *sheets)


def describe_in_worker(entry, output):
    """Phase 2 in a :mod:`studio.pool` worker: the described melodies and their piano roll figures."""
    from seqgen.generate import describe_melodies
    from seqgen.score import piano_roll_figure

    output = describe_melodies(bundles.load(entry), output)
    return output, [piano_roll_figure(melody.piano_roll, title=f"Melody {number}") for number, melody in enumerate(output.melodies, start=1)]


def downloads(output) -> list[str]:
    """Each melody's MIDI, WAV, params JSON and (once described) MusicXML."""
    return [str(path) for melody in output.melodies for path in (melody.midi, melody.wav, melody.params, melody.musicxml) if path]


def refresh(current=None):
    """The music bundles now on disk (a model trained a minute ago included), and the no-model notice."""
    has_any = bool(bundles.list_bundles("music"))
    return bundles.dropdown_update("music", current), gr.update(value=bundles.no_bundle_message("music"), visible=not has_any)


def build() -> dict:
    gr.Markdown(INTRO)
    notice = gr.Markdown(bundles.no_bundle_message("music"), visible=not bundles.list_bundles("music"))
    with gr.Row():
        with gr.Column(scale=1):
            bundle = gr.Dropdown(**bundles.bundle_dropdown("music"), label="Music model", allow_custom_value=True)
            primer_source = gr.Radio(list(PRIMERS), value=PRIMERS[0], label="Primer")
            primer_file = gr.File(file_types=list(MUSIC_SUFFIXES), type="filepath", label="Primer file (MIDI or score)")
            primer_tokens = gr.Textbox(label="Primer tokens", placeholder="C4 E4 G4 4.7.11", max_lines=2)
            with gr.Row():
                length = gr.Number(100, precision=0, label="Length (tokens)")
                temperature = gr.Slider(0, 2, value=1.0, step=0.05, label="Temperature", info="0 = argmax")
            with gr.Row():
                variations = gr.Slider(1, MAX_SLOTS, value=1, step=1, label="Variations")
                rng_seed = gr.Number(-1, precision=0, label="RNG seed", info="-1: different every time")
            with gr.Row():
                tempo = gr.Number(120, label="Tempo (bpm)")
                instrument = gr.Dropdown(INSTRUMENTS, value=0, label="Instrument")
            with gr.Accordion("More sampling options", open=False):
                with gr.Row():
                    top_k = gr.Number(0, precision=0, label="top-k", info="0: off")
                    top_p = gr.Slider(0.05, 1, value=1.0, step=0.05, label="top-p", info="1: off")
                repetition_penalty = gr.Slider(1, 3, value=1.0, step=0.05, label="Repetition penalty", info="1: off")
                mode = gr.Radio(list(MODES), value="auto", label="Mode")
            button = gr.Button("Generate", variant="primary")
        with gr.Column(scale=2):
            summary = gr.Markdown()
            audio, rolls, sheets = [], [], []
            for number in range(MAX_SLOTS):
                audio.append(gr.Audio(type="filepath", format=None, interactive=False, visible=False,
                                      label=f"Melody {number + 1}", elem_classes=["seqgen-audio"]))
            files = gr.File(label="Downloads: MIDI, WAV, params JSON, MusicXML", file_count="multiple", interactive=False)
            tokens = gr.Textbox(label="Tokens", lines=4, buttons=["copy"])
            quality = gr.JSON(label="Quality report", open=True)
    for number in range(MAX_SLOTS):
        with gr.Row():
            rolls.append(gr.Plot(label=f"Piano roll {number + 1}", visible=False))
            sheets.append(gr.HTML(visible=False, label=f"Sheet music {number + 1}"))
    generated = gr.State()  # the last melodies (a MelodyOutput) and their model, for the follow-up event
    button.click(
        run_melody,
        [bundle, primer_source, primer_file, primer_tokens, length, temperature, top_k, top_p, repetition_penalty,
         variations, rng_seed, tempo, instrument, mode],
        [*audio, files, tokens, summary, generated],
        api_name="generate_melody", concurrency_id="generate", concurrency_limit=4,
    ).success(
        # One at a time: engraving never takes the second core from the next class-mate's audio.
        describe_melody, generated, [files, quality, *rolls, *sheets],
        api_name="describe_melody", concurrency_id="describe", concurrency_limit=1,
    )
    insight.build("music", generated)
    step.build("music", bundle, [primer_source, primer_file, primer_tokens], [temperature, top_k, top_p, repetition_penalty], rng_seed,
               primer_input)
    return {"bundle": bundle, "notice": notice, "refresh": refresh}

"""The Play tab's melody: generate from a music bundle; listen, see the piano roll and the score, download the files.

Two events answer a click: ``generate_melody`` samples and renders, and returns
the players (the primer first, by default), tokens and downloads;
``describe_melody`` follows it with the piano rolls, sheet music and quality
report (see :mod:`seqgen.generate`), reading the melodies from the session's
``gr.State``.  Three examples, cached on first use, show what temperature does.
"""

from __future__ import annotations

import html
import time

import gradio as gr

from seqgen.errors import SeqgenError
from seqgen.music import display_token
from seqgen.sources import MUSIC_SUFFIXES
from studio import bundles, insight, pool, step
from studio.common import on_failure, queue_size, random_seed, real, request_dir, sampling_options, user_errors, whole

INTRO = """\
### Hear a melody
Press **Generate**: a model continues a few bars of music (the **primer**, heard first and drawn in grey). **Temperature**
0 always takes the model's likeliest next note and soon repeats itself; 1 follows the model; higher gets wilder.
"""
MAX_SLOTS = 4  # variations shown (each with its player, piano roll and score)
PROGRESS_EVERY_S = 0.25  # how often the progress bar moves: each move is a message the server builds and sends
PRIMERS = ("random seed window", "uploaded MIDI", "tokens")
# Primer examples in each tokenizer's format, made of tokens the shipped models know.
PRIMER_EXAMPLES = {"timed": "C4_4 E4_4 G4_4 E4.G4_2 C4_8 R_2", "seed": "C4 E4 G4 4.7.11",
                   "events": "Bar_None TimeSig_4/4 Position_0 Pitch_48 Duration_2.0.8 Pitch_64 Duration_1.0.8 "
                             "Pitch_72 Duration_1.0.8 Position_8 Pitch_71 Duration_1.0.8"}
PRIMER_FORMATS = {  # how each tokenizer's tokens read, for the token box's hint
    "timed": "PITCHES_SIXTEENTHS: C4_4 is a quarter-note C, R_2 an eighth rest",
    "seed": "pitches and chords, no rhythm",
    "events": "Bar_None starts a bar, Position_8 is beat 2 (32nds from the bar line), then Pitch_60 (MIDI number, C4) "
              "and Duration_1.0.8 (beats.eighths-of-a-beat: a quarter note) for each note starting there",
}
# The temperature examples' primer in the default model's tokens, and how far each example goes.
EXAMPLE_PRIMERS = {
    "timed": "C4_4 D4_4 E4_4 F4_4 G4_8 E4_4 C4_4 D4_4 E4_4 D4_8 R_4",
    # The opening bar of a four-part chorale in C: I, IV, V, I, each voice a quarter note.
    "events": "BOS_None Bar_None TimeSig_4/4 " + " ".join(
        f"Position_{position} " + " ".join(f"Pitch_{pitch} Duration_1.0.8" for pitch in chord)
        for position, chord in ((0, (48, 55, 64, 72)), (8, (53, 57, 65, 72)), (16, (43, 55, 62, 71)), (24, (48, 55, 64, 72)))),
}
EXAMPLE_LENGTHS = {"timed": 100, "events": 400}  # events: about five bars of four voices
EXAMPLE_TEMPERATURES = (0.0, 0.8, 1.3)
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
    """seqgen's own verovio SVG (no user text in it), each page as wide as its column (no box that scrolls inside the page)."""
    pages = "".join(f'<div style="background:white;margin-bottom:8px">{page}</div>' for page in svg_pages)
    return f'<div class="seqgen-sheet">{pages}</div>'


def summary_markdown(output, bundle_label: str, heard: list | None = None) -> str:
    """What was made, how to make it again, and what each player plays."""
    primer = [display_token(token) for token in output.primer]
    shown = " ".join(primer[:24]) + (" …" if len(primer) > 24 else "")
    lines = [f"**{len(output.melodies)} melod{'y' if len(output.melodies) == 1 else 'ies'}** from **{html.escape(bundle_label)}**, "
             f"{output.settings['length']} tokens each, mode `{output.settings['mode']}`, "
             f"{output.timings.get('per_token_ms', 0):.2f} ms per token, RNG seed `{output.settings['rng_seed']}` "
             "(type it in the RNG seed field to make these melodies again).",
             f"\nPrimer ({len(primer)} tokens): `{shown}`\n"]
    for number, melody in enumerate(output.melodies):
        first = "primer first, " if heard and heard[number] and heard[number] != melody.wav else ""
        how = f"{first}rendered with {renderer_label(melody)}" if melody.wav else f"no audio: {melody.renderer_note}"
        if melody.ended is not None:
            how += (f"; the model ended the piece after {len(melody.tokens)} tokens" if melody.ended
                    else f"; the model had not ended the piece at the cap of {output.settings['length']} tokens")
        lines.append(f"- Melody {number + 1}: {html.escape(how)}")
    if output.settings.get("until_end_asked") and not output.settings["until_end"]:
        lines.append(f"\nThis model never learned where pieces end ({output.settings['tokenizer']} tokens), so it wrote "
                     f"{output.settings['length']} tokens instead of whole pieces: models trained on events tokens end them.")
    if output.dropped:
        dropped = ", ".join(f"`{display_token(token)}` ×{count}" for token, count in output.dropped.items())
        lines.append(f"\nPrimer tokens the model does not know (skipped): {dropped}")
    return "\n".join(lines)


def primer_input(primer_source, primer_file=None, primer_tokens=None, tokenizer: str | None = None):
    """The primer the form asks for: None (a random seed window), a score file's path, or a token list (♭ and ♯ read
    back as music21's ``-`` and ``#``); ``tokenizer`` names the model's tokens in the message for an empty primer."""
    if primer_source == "uploaded MIDI":
        if not primer_file:
            raise SeqgenError("Upload a MIDI (or other score) file to use as the primer, or pick another primer.")
        from pathlib import Path

        return Path(primer_file)
    if primer_source == "tokens":
        primer = (primer_tokens or "").replace("♭", "-").replace("♯", "#").split()  # a list: never read as a file name
        if not primer:
            example = (f"for this model's {tokenizer} tokens, e.g. {PRIMER_EXAMPLES[tokenizer]}" if tokenizer in PRIMER_EXAMPLES
                       else " or ".join(f"{name} tokens like {sample}" for name, sample in PRIMER_EXAMPLES.items()))
            raise SeqgenError(f"Type some primer tokens ({example}), or pick another primer.")
        return primer
    if primer_source in (None, "", PRIMERS[0]):
        return None
    raise SeqgenError(f"Unknown primer {primer_source!r}; choose one of: {', '.join(PRIMERS)}.")


def melody_options(length, primer, mode, temperature, top_k, top_p, repetition_penalty, variations, rng_seed, tempo,
                   instrument, until_end=True) -> dict:
    """A melody request's settings (the tab's or the API's), checked, as :func:`seqgen.generate.generate_melody`'s arguments.

    ``length`` 0 is the model's own: 100 tokens, or with ``until_end`` a cap that holds its corpus's long pieces.
    ``until_end`` writes whole pieces with a model that learned where they end (its worker checks; others write
    ``length`` tokens and the summary says so)."""
    from seqgen.sample import max_length_cap

    length = whole(length, "Length", minimum=0, maximum=max_length_cap(), unit="tokens")
    return dict(length=length or None, until_end=bool(until_end), primer=primer, mode=mode,
                sampling=sampling_options(temperature, top_k, top_p, repetition_penalty, kind="music"), variations=variations,
                rng_seed=random_seed(rng_seed), tempo_bpm=real(tempo, "Tempo"),
                instrument_program=whole(instrument, "Instrument", minimum=0))


@user_errors
def run_melody(bundle=None, primer_source=None, primer_file=None, primer_tokens=None, length=0, temperature=1.0, top_k=0, top_p=1.0,
               repetition_penalty=1.0, variations=1, rng_seed=-1, tempo=120, instrument=0, mode="auto", play_primer=True,
               until_end=True, progress=gr.Progress()):
    """Phase 1: generate and render melodies; return players, downloads, tokens, summary and the state for phase 2."""
    entry = bundles.find(bundle, "music")
    variations = whole(variations, "Variations", minimum=1)
    if variations > MAX_SLOTS:
        raise SeqgenError(f"The studio shows up to {MAX_SLOTS} variations (got {variations}).")
    primer = primer_input(primer_source, primer_file, primer_tokens, entry.config["tokenizer"])
    if mode not in MODES:
        raise SeqgenError(f"Unknown mode {mode!r}; choose one of: {', '.join(MODES)}.")
    options = melody_options(length, primer, MODES[mode], temperature, top_k, top_p, repetition_penalty, variations, rng_seed,
                             tempo, instrument, until_end)
    options.update(insight.GENERATION_OPTIONS)
    call = pool.submit(generate_in_worker, entry, request_dir("melody", served=True), options, bool(play_primer), max_waiting=queue_size())
    progress(0, desc=f"waiting for a generator ({call.ahead} ahead)" if call.ahead else "starting")
    for batch in call.events(PROGRESS_EVERY_S):
        stage, done, total = batch[-1]
        progress((done, total), desc=stage, unit="tokens" if stage == "generating" else "melodies")
    output, heard = call.result()
    # Plain values, no gr.update: an update rebuilds the component's config on the server (milliseconds of a
    # shared CPU per player); the Variations slider shows and hides the players.
    audio = [str(heard[number]) if number < len(heard) and heard[number] else None for number in range(MAX_SLOTS)]
    state = {"entry": entry, "output": output, "heard": heard}
    return (*audio, downloads(output, heard), tokens_text(output), summary_markdown(output, entry.label, heard), state)


def generate_pieces(bundle, out_dir, options: dict, **more):
    """:func:`seqgen.generate.generate_melody` with "until the piece ends" kept only for a model that learned where
    pieces end; the settings say it was asked for (``until_end_asked``), so the summary can say why there is no end."""
    from seqgen.generate import ends_pieces, generate_melody

    asked = options["until_end"]
    output = generate_melody(bundle, out_dir, **{**bundles.with_copy_guard(bundle, options), **more,
                                                 "until_end": asked and ends_pieces(bundle)})
    output.settings["until_end_asked"] = asked
    return output


def generate_in_worker(entry, out_dir, options: dict, play_primer: bool):
    """Phase 1 in a :mod:`studio.pool` worker: the melodies and what each player plays (the primer first, if asked);
    emits ``(stage, done, total)`` progress, at most every ``PROGRESS_EVERY_S`` while generating (each event is
    a message through the pool and the server)."""
    from seqgen.generate import ends_pieces, melody_length

    bundle = bundles.load(entry)
    length, last_emit = melody_length(bundle, options["length"], options["until_end"] and ends_pieces(bundle)), 0.0

    def on_token(variation, step, token):
        nonlocal last_emit
        if variation == 0 and time.monotonic() - last_emit >= PROGRESS_EVERY_S:
            pool.emit(("generating", step, length))
            last_emit = time.monotonic()

    def on_render(number, count):
        pool.emit(("rendering audio", number - 1, count))

    output = generate_pieces(bundle, out_dir, options, on_token=on_token, on_render=on_render, primer_first=play_primer)
    return output, [melody.primed_wav or melody.wav for melody in output.melodies]


@user_errors
def describe_melody(state, progress=gr.Progress()):
    """Phase 2: the downloads with MusicXML, the quality report, piano rolls and sheet music of the last melodies."""
    if not state:
        raise SeqgenError("Generate a melody first: there is nothing to describe yet.")
    progress(0, desc="engraving the score")
    output, figures = pool.submit(describe_in_worker, state["entry"], state["output"], state["heard"]).result()
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
    return (downloads(output, state["heard"]), quality, *rolls, *sheets)


def describe_in_worker(entry, output, heard):
    """Phase 2 in a :mod:`studio.pool` worker: the described melodies and their piano roll figures."""
    from seqgen.generate import describe_melodies
    from seqgen.score import piano_roll_figure

    output = describe_melodies(bundles.load(entry), output)
    primer, primer_quarters = primer_roll(output, heard)
    return output, [piano_roll_figure(melody.piano_roll, f"Melody {number}", primer, primer_quarters)
                    for number, melody in enumerate(output.melodies, start=1)]


def primer_roll(output, heard) -> tuple[list[dict], float]:
    """The primer's piano roll notes and length (quarter notes) when it was played first, else nothing."""
    from seqgen.music import duration_quarters
    from seqgen.score import piano_roll_notes

    if all(path == melody.wav for path, melody in zip(heard, output.melodies)):
        return [], 0.0
    tokenizer = output.settings["tokenizer"]
    return piano_roll_notes(output.primer, tokenizer), duration_quarters(output.primer, tokenizer)


def tokens_text(output) -> str:
    """Each melody's tokens, spelled with ♭ and ♯ (the files keep music21's ``B-4``)."""
    return "\n\n".join(f"Melody {number}: {' '.join(display_token(token) for token in melody.tokens)}"
                        for number, melody in enumerate(output.melodies, start=1))


def downloads(output, heard) -> list[str]:
    """Each melody's MIDI, WAV, params JSON, (once described) MusicXML, and the WAV with the primer first."""
    files = [(melody.midi, melody.wav, melody.params, melody.musicxml, primed if primed != melody.wav else None)
             for melody, primed in zip(output.melodies, heard)]
    return [str(path) for group in files for path in group if path]


def refresh(current=None):
    """The music bundles now on disk (a model trained a minute ago included), and the no-model notice."""
    has_any = bool(bundles.list_bundles("music"))
    return bundles.dropdown_update("music", current), gr.update(value=bundles.no_bundle_message("music"), visible=not has_any)


def players(variations):
    """One audio player per variation asked for."""
    count = int(variations or 1)
    return [gr.update(visible=number < count) for number in range(MAX_SLOTS)]


def primer_inputs(primer_source):
    """Show the primer file only for an uploaded primer and the token box only for typed tokens."""
    return gr.update(visible=primer_source == "uploaded MIDI"), gr.update(visible=primer_source == "tokens")


def model_tokenizer(bundle) -> str:
    """The tokenizer of the music model with this label (``timed`` when none matches)."""
    entry = next((entry for entry in bundles.list_bundles("music") if entry.label == bundle), None)
    return entry.config["tokenizer"] if entry else "timed"


def primer_format(bundle) -> dict:
    """The token box's placeholder and hint in the chosen model's token format."""
    tokenizer = model_tokenizer(bundle)
    how = PRIMER_FORMATS.get(tokenizer, "")
    return {"placeholder": PRIMER_EXAMPLES.get(tokenizer, ""), "info": f"this model reads {tokenizer} tokens: {how}"}


def primer_hint(bundle):
    """A ``gr.update`` of the token box for a newly chosen model."""
    return gr.update(**primer_format(bundle))


def example_melody(bundle, primer_source, primer_tokens, temperature, rng_seed):
    """A cached example: one melody and its piano roll, both phases at once.

    Every output is a plain value that is never None (the example cache stores files named plainly, and reads
    an empty field back as an error), so other variations and the sheet music are hidden by :func:`example_views`
    instead; the score's SVG would not fit a field of the cache's CSV file either.
    """
    quiet = lambda *args, **kwargs: None  # noqa: E731 - examples show no progress
    length = EXAMPLE_LENGTHS.get(model_tokenizer(bundle), 100)
    player, *_, tokens, summary, state = run_melody(bundle, primer_source, None, primer_tokens, length=length,
                                                     temperature=temperature, rng_seed=rng_seed, progress=quiet)
    files, quality, roll, *_ = describe_melody(state, progress=quiet)
    return player, files, tokens, summary, quality, roll["value"]


def example_views():
    """An example shows one melody and its piano roll: no other variation, no sheet music."""
    return [gr.update(visible=number == 0) for number in range(MAX_SLOTS)] + [gr.update(visible=False)] * (2 * MAX_SLOTS - 1)


def build() -> dict:
    gr.Markdown(INTRO)
    notice = gr.Markdown(bundles.no_bundle_message("music"), visible=not bundles.list_bundles("music"))
    bundle = gr.Dropdown(**bundles.bundle_dropdown("music"), label="Music model", allow_custom_value=True)
    primer_source = gr.Radio(list(PRIMERS), value=PRIMERS[0], label="Primer")
    primer_file = gr.File(file_types=list(MUSIC_SUFFIXES), type="filepath", label="Primer file (MIDI or score)", visible=False)
    primer_tokens = gr.Textbox(label="Primer tokens", max_lines=2, visible=False, **primer_format(bundle.value))
    temperature = gr.Slider(0, 2, value=1.0, step=0.05, label="Temperature",
                              info="0 = always the likeliest note; 1 with the other options off: the model's recommended sampling")
    with gr.Accordion("More options: length, variations, tempo, instrument, sampling", open=False):
        play_primer = gr.Checkbox(True, label="Play the primer first (grey in the piano roll)")
        until_end = gr.Checkbox(True, label="Until the piece ends",
                                info="a model trained on events tokens writes a whole piece (from its start, or on from your "
                                     "primer) until it ends it; other models write the length")
        with gr.Row():
            length = gr.Number(0, precision=0, label="Length (tokens)", min_width=120,
                               info="0: the model's own (100 tokens; a whole piece's cap)")
            variations = gr.Slider(1, MAX_SLOTS, value=1, step=1, label="Variations", min_width=120)
            rng_seed = gr.Number(-1, precision=0, label="RNG seed", info="-1: different every time", min_width=120)
        with gr.Row():
            tempo = gr.Number(120, label="Tempo (bpm)", min_width=120)
            instrument = gr.Dropdown(INSTRUMENTS, value=0, label="Instrument", min_width=160)
        with gr.Row():
            top_k = gr.Number(0, precision=0, label="top-k", info="0: off", min_width=120)
            top_p = gr.Slider(0.05, 1, value=1.0, step=0.05, label="top-p", info="1: off", min_width=120)
            repetition_penalty = gr.Slider(1, 3, value=1.0, step=0.05, label="Repetition penalty", info="1: off", min_width=120)
        mode = gr.Radio(list(MODES), value="auto", label="Mode")
    button = gr.Button("Generate", variant="primary")
    summary = gr.Markdown(elem_classes=["seqgen-status"])
    audio, rolls, sheets = [], [], []
    for number in range(MAX_SLOTS):
        audio.append(gr.Audio(type="filepath", format=None, interactive=False, visible=number == 0,
                              label=f"Melody {number + 1}", elem_classes=["seqgen-audio"]))
    for number in range(MAX_SLOTS):  # stacked: each view gets the whole width, on a phone too
        rolls.append(gr.Plot(label=f"Piano roll {number + 1}", visible=False))
        sheets.append(gr.HTML(visible=False, label=f"Sheet music {number + 1}"))
    with gr.Accordion("Tokens, files and quality report", open=False):
        tokens = gr.Textbox(label="Tokens", lines=4, buttons=["copy"])
        files = gr.File(label="Downloads: MIDI, WAV, params JSON, MusicXML", file_count="multiple", interactive=False)
        quality = gr.JSON(label="Quality report", open=True)
    generated = gr.State()  # the last melodies (a MelodyOutput) and their model, for the follow-up event
    default = next((entry for entry in bundles.list_bundles("music") if entry.label == bundles.DEFAULT_BUNDLES["music"]), None)
    if default is not None and default.config["tokenizer"] in EXAMPLE_PRIMERS:
        examples = gr.Examples(
            [[default.label, "tokens", EXAMPLE_PRIMERS[default.config["tokenizer"]], value, 7] for value in EXAMPLE_TEMPERATURES],
            [bundle, primer_source, primer_tokens, temperature, rng_seed],
            [audio[0], files, tokens, summary, quality, rolls[0]], example_melody, cache_examples=True, cache_mode="lazy",
            label="What temperature does: one primer, one seed", api_visibility="private",
            example_labels=["temperature 0 (argmax)", "temperature 0.8", "temperature 1.3"],
        )
        examples.dataset.click(example_views, None, [*rolls, *audio[1:], *sheets], api_visibility="private", queue=False)
    variations.change(players, variations, audio, api_visibility="private", queue=False)
    primer_source.change(primer_inputs, primer_source, [primer_file, primer_tokens], api_visibility="private", queue=False)
    bundle.change(primer_hint, bundle, primer_tokens, api_visibility="private", queue=False)
    generating = button.click(
        run_melody,
        [bundle, primer_source, primer_file, primer_tokens, length, temperature, top_k, top_p, repetition_penalty,
         variations, rng_seed, tempo, instrument, mode, play_primer, until_end],
        [*audio, files, tokens, summary, generated],
        # No Gradio limit: requests wait in studio.pool, which says when the class queue is full.
        api_name="generate_melody", concurrency_id="generate", concurrency_limit=None,
    )
    describing = generating.success(
        # One at a time: engraving never takes the second core from the next class-mate's audio.
        describe_melody, generated, [files, quality, *rolls, *sheets],
        api_name="describe_melody", concurrency_id="describe", concurrency_limit=1,
    )
    on_failure(generating, [*audio, files, tokens, quality], summary, hide=(*rolls, *sheets))
    on_failure(describing, [], hide=(*rolls, *sheets))
    insight.build("music", generated)
    step.build("music", bundle, [primer_source, primer_file, primer_tokens], [temperature, top_k, top_p, repetition_penalty], rng_seed,
               primer_input)
    return {"bundle": bundle, "notice": notice, "refresh": refresh}

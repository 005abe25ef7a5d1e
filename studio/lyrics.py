"""The Play tab's verse: complete a seed line with a lyrics bundle; the seed stands out from what the model wrote."""

from __future__ import annotations

import html
import time

import gradio as gr

from seqgen.generate import DEFAULT_SEED_LINE
from studio import bundles, insight, pool, step
from studio.common import on_failure, queue_size, random_seed, sampling_options, user_errors, whole

INTRO = """\
### Complete a verse
Type a line and press **Complete**: a model writes on, one character at a time (your line in **bold orange**).
Compare temperature 0.5 with 1.2, and notice how long verses start repeating themselves.
"""
# 0.8 is not among them: a form left at its defaults uses the model's recommended sampling instead.
EXAMPLE_TEMPERATURES = (0.0, 0.5, 1.3)

SEED_STYLE = "font-weight:700;color:#c2410c"
STREAMING = "Completing the verse…"  # the status line while the characters stream in
STREAM_EVERY_S = 0.25  # how often the page receives the characters sampled so far (4 a second: each update costs the server 1-2 ms)


def completion_html(seed: str, text: str) -> str:
    """The seed (bold, coloured) then the completion, both escaped; line breaks kept."""
    return (f'<div class="seqgen-lyrics" style="white-space:pre-wrap;font-family:Georgia,serif;font-size:1.05em;line-height:1.5">'
            f'<span class="seqgen-seed" style="{SEED_STYLE}">{html.escape(seed)}</span>'
            f'<span class="seqgen-completion">{html.escape(text)}</span></div>')


def dropped_markdown(dropped: dict[str, int], rng_seed: int) -> str:
    """Which seed characters were dropped, and the RNG seed that makes this verse again."""
    again = f"\n\nRNG seed `{rng_seed}`: type it in the RNG seed field to get this verse again."
    if not dropped:
        return "Every character of the seed is in the model's vocabulary." + again
    listed = ", ".join(f"`{char!r}` ×{count}" for char, count in dropped.items())
    return f"Dropped from the seed (not in the model's vocabulary): {listed}" + again


def lyrics_options(length, lines, stop_at_verse_end, temperature, top_k, top_p, repetition_penalty, rng_seed) -> dict:
    """A verse request's settings (the tab's or the API's), checked, as :func:`seqgen.generate.complete_lyrics`'s arguments."""
    from seqgen.sample import max_length_cap

    return dict(length=whole(length, "Length", minimum=1, maximum=max_length_cap(), unit="characters"),
                lines=whole(lines, "Lines", minimum=1, optional=True), stop_at_verse_end=bool(stop_at_verse_end),
                rng_seed=random_seed(rng_seed), sampling=sampling_options(temperature, top_k, top_p, repetition_penalty, kind="lyrics"))


@user_errors
def run_lyrics(bundle=None, seed_line=DEFAULT_SEED_LINE, length=400, lines=None, stop_at_verse_end=False, temperature=0.8,
               rng_seed=None, top_k=0, top_p=1.0, repetition_penalty=1.0):
    """Complete the seed line, streaming the characters as they are sampled; then the quality and dropped characters."""
    from seqgen.generate import cut_text

    options = {**lyrics_options(length, lines, stop_at_verse_end, temperature, top_k, top_p, repetition_penalty, rng_seed),
               **insight.GENERATION_OPTIONS}
    seed_line = seed_line if seed_line is not None else DEFAULT_SEED_LINE
    entry = bundles.find(bundle, "lyrics")
    call = pool.submit(complete_in_worker, entry, seed_line, options, max_waiting=queue_size())
    text = ""
    for batch in call.events(STREAM_EVERY_S):
        text += "".join(batch)
        if not call.future.done():
            shown = cut_text(text, options["lines"], options["stop_at_verse_end"])
            # Values, not gr.skip(): Gradio rebuilds a component's config for every update it gets, a shared CPU's
            # milliseconds per output and per streamed piece (a State's skip costs nothing).
            yield completion_html(seed_line, shown), seed_line + shown, None, STREAMING, gr.skip()
    output = call.result()
    text = output.texts[0]
    yield (completion_html(output.seed, text), output.seed + text, output.quality[0],
           dropped_markdown(output.dropped, output.settings["rng_seed"]), {"entry": entry, "output": output})


def complete_in_worker(entry, seed_line: str, options: dict):
    """The completion in a :mod:`studio.pool` worker; emits the first variation's first character at once, then
    what follows every ``STREAM_EVERY_S``."""
    from seqgen.generate import complete_lyrics

    pending, last_emit = [], 0.0

    def on_token(variation, step, char):
        nonlocal last_emit
        if variation == 0:
            pending.append(char)
            if time.monotonic() - last_emit >= STREAM_EVERY_S:
                pool.emit("".join(pending))
                pending.clear()
                last_emit = time.monotonic()

    return complete_lyrics(bundles.load(entry), seed_line, on_token=on_token, **options)


def refresh(current=None):
    has_any = bool(bundles.list_bundles("lyrics"))
    return bundles.dropdown_update("lyrics", current), gr.update(value=bundles.no_bundle_message("lyrics"), visible=not has_any)


def example_lyrics(bundle, seed_line, temperature, rng_seed):
    """A cached example: the whole verse at once (the last of what the handler streams, without its state)."""
    *_, last = run_lyrics(bundle, seed_line, 400, 0, False, temperature, rng_seed)
    return last[:4]


def build() -> dict:
    gr.Markdown(INTRO)
    notice = gr.Markdown(bundles.no_bundle_message("lyrics"), visible=not bundles.list_bundles("lyrics"))
    bundle = gr.Dropdown(**bundles.bundle_dropdown("lyrics"), label="Lyrics model", allow_custom_value=True)
    seed_line = gr.Textbox(DEFAULT_SEED_LINE, label="Seed line", lines=2)
    temperature = gr.Slider(0, 2, value=0.8, step=0.05, label="Temperature",
                              info="0 = always the likeliest character; 0.8 with the other options off: the model's recommended sampling")
    with gr.Accordion("More options: length, lines, sampling", open=False):
        with gr.Row():
            length = gr.Number(400, precision=0, label="Length (characters)", info="the most, with a stop rule", min_width=120)
            lines = gr.Number(0, precision=0, label="Lines", info="stop after this many; 0: no limit", min_width=120)
            rng_seed = gr.Number(-1, precision=0, label="RNG seed", info="-1: different every time", min_width=120)
        stop_at_verse_end = gr.Checkbox(False, label="Stop at the end of the verse (a blank line)")
        with gr.Row():
            top_k = gr.Number(0, precision=0, label="top-k", info="0: off", min_width=120)
            top_p = gr.Slider(0.05, 1, value=1.0, step=0.05, label="top-p", info="1: off", min_width=120)
            repetition_penalty = gr.Slider(1, 3, value=1.0, step=0.05, label="Repetition penalty", info="1: off", min_width=120)
    button = gr.Button("Complete", variant="primary")
    dropped = gr.Markdown(elem_classes=["seqgen-status"])
    completion = gr.HTML(label="Completion")
    with gr.Accordion("Plain text and quality report", open=False):
        plain = gr.Textbox(label="Plain text", lines=6, buttons=["copy"])
        quality = gr.JSON(label="Quality report")
    if any(entry.label == bundles.DEFAULT_BUNDLES["lyrics"] for entry in bundles.list_bundles("lyrics")):
        gr.Examples(
            [[bundles.DEFAULT_BUNDLES["lyrics"], DEFAULT_SEED_LINE, value, 7] for value in EXAMPLE_TEMPERATURES],
            [bundle, seed_line, temperature, rng_seed], [completion, plain, quality, dropped], example_lyrics,
            cache_examples=True, cache_mode="lazy", label="What temperature does: one seed line, one seed",
            api_visibility="private", example_labels=["temperature 0 (argmax)", "temperature 0.5", "temperature 1.3"],
        )
    generated = gr.State()  # the last completion (a LyricsOutput) and its model, for the views below
    completing = button.click(
        run_lyrics,
        [bundle, seed_line, length, lines, stop_at_verse_end, temperature, rng_seed, top_k, top_p, repetition_penalty],
        [completion, plain, quality, dropped, generated],
        # No Gradio limit: requests wait in studio.pool, which says when the class queue is full.
        api_name="complete_lyrics", concurrency_id="generate", concurrency_limit=None,
    )
    on_failure(completing, [completion, plain, quality], dropped)
    insight.build("lyrics", generated)
    step.build("lyrics", bundle, [seed_line], [temperature, top_k, top_p, repetition_penalty], rng_seed)
    return {"bundle": bundle, "notice": notice, "refresh": refresh}

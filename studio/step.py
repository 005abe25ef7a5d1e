"""Step by hand, under the Melody and Lyrics tabs: see the next token's candidates, pick one or let the model pick.

The tab's own model, primer and sampling fields start a :class:`seqgen.steps.StepSession`,
kept per user in a ``gr.State``; each click sends it to a :mod:`studio.pool`
worker, which adds one token with one stateful cell step (a millisecond) and,
for melodies, renders the melody so far.
"""

from __future__ import annotations

import html
from typing import Callable

import gradio as gr

from seqgen.errors import SeqgenError
from seqgen.steps import CANDIDATES
from studio import bundles, pool
from studio.common import random_seed, request_dir, sampling_options, user_errors
from studio.insight import distribution_figure, percent, shown

NOTES = {
    "music": ("**Step by hand.** Be the sampler: the buttons show the five notes the model finds most likely next, "
              "with the chance the sampling rules give each. Pick one, or let the model draw, and listen to the melody "
              "so far. Does the model follow your choices, or steer back to what it knows?"),
    "lyrics": ("**Step by hand.** Be the sampler: the buttons show the five characters the model finds most likely "
               "next, with the chance the sampling rules give each. Pick one, or let the model draw, and read on. "
               "Try steering it into a word it would never choose, and watch what it predicts after."),
}


def so_far_html(session) -> str:
    """The primer in bold, then the picks; the model's picks in blue, yours in orange."""
    picks = "".join(f'<span style="color:{"#1d4ed8" if by_model else "#c2410c"}">{html.escape(token)}</span>'
                    for token, by_model in zip(session.picked, session.by_model))
    return (f'<div class="seqgen-so-far" style="white-space:pre-wrap;font-family:Georgia,serif;font-size:1.05em">'
            f'<b>{html.escape("".join(session.primer))}</b>{picks}</div>')


def candidate_buttons(session) -> list:
    """One button per candidate: the token and its probability after the sampling rules."""
    after = dict(session.offered["candidates"])
    updates = [gr.update(value=f"{shown(token)}  {percent(after.get(token, 0.0))}", visible=True)
               for token, _ in session.offered["before_temperature"]]
    return updates + [gr.update(visible=False)] * (CANDIDATES - len(updates))


def step_in_worker(entry, session, primer, sampling, rng_seed, token: str | None, out_dir):
    """In a :mod:`studio.pool` worker: start a session (when `session` is None) or add `token` (None: the model draws);
    for melodies also render the melody so far into `out_dir`."""
    from seqgen import steps

    bundle = bundles.load(entry)
    if session is None:
        session = steps.start(bundle, primer, sampling, rng_seed, CANDIDATES)
    else:
        session = steps.advance(bundle, session, token, CANDIDATES)
    if bundle.config["kind"] != "music":
        return session, None, None
    return (session, *render_so_far(session, bundle.config["tokenizer"], out_dir))


def render_so_far(session, tokenizer: str, out_dir) -> tuple[str | None, str | None]:
    """The primer and the picks as a WAV file, or None and why there is no audio."""
    from pathlib import Path

    from seqgen.audio import AudioTooLong, render
    from seqgen.music import REST, write_midi

    tokens = session.primer + session.picked
    if tokenizer == "timed" and all(token.rpartition("_")[0] == REST for token in tokens):
        return None, "only rests so far: nothing to hear yet"
    stem = Path(out_dir) / f"step-{len(session.picked)}"  # a new name each step, so the player reloads
    midi = write_midi(tokens, stem.with_suffix(".mid"), tokenizer)
    try:
        return str(render(midi, stem.with_suffix(".wav")).wav_path), None
    except AudioTooLong as error:
        return None, str(error)


def outputs_of(kind: str, session, audio: str | None, note: str | None) -> tuple:
    """Every view of a session: the text or player and tokens, the candidate buttons, the chart, the state."""
    picks = len(session.picked)
    chart = distribution_figure(session.offered, f"Next token after {picks} pick{'' if picks == 1 else 's'}")
    if kind == "lyrics":
        shown_so_far = (so_far_html(session),)
    else:
        label = "The melody so far" + (f" (no audio: {note})" if note else "")
        tokens = " ".join(map(shown, session.primer)) + "  ‖  " + " ".join(map(shown, session.picked))
        shown_so_far = (gr.update(value=audio, label=label), tokens)
    return (*shown_so_far, *candidate_buttons(session), chart)


def shown_outputs(kind: str, state: dict, call) -> tuple:
    """The views of the session a worker call returns, and the new state."""
    found, audio, note = call.result()
    return (*outputs_of(kind, found, audio, note), {**state, "session": found})


def starter(kind: str, primer_fields: int, primer_of: Callable = lambda text: text) -> Callable:
    """The Start handler: `(model, *primer fields, temperature, top-k, top-p, repetition penalty, RNG seed)` → views."""

    @user_errors
    def begin(label, *values):
        primer_values, sampling_values, seed = values[:primer_fields], values[primer_fields:-1], values[-1]
        state = {"entry": bundles.find(label, kind), "out_dir": request_dir("step") if kind == "music" else None}
        return shown_outputs(kind, state, pool.submit(step_in_worker, state["entry"], None, primer_of(*primer_values),
                                                      sampling_options(*sampling_values), random_seed(seed), None, state["out_dir"]))

    return begin


def picker(kind: str, number: int | None) -> Callable:
    """The handler of candidate button `number` (None: let the model pick): `(state)` → views."""

    @user_errors
    def pick(state):
        if not state:
            raise SeqgenError("Press Start first: it reads the model, the primer and the sampling settings above.")
        token = None if number is None else state["session"].offered["before_temperature"][number][0]
        return shown_outputs(kind, state, pool.submit(step_in_worker, state["entry"], state["session"], None, None, None, token,
                                                      state["out_dir"]))

    return pick


def build(kind: str, bundle, primer_inputs: list, sampling_inputs: list, rng_seed, primer_of: Callable = lambda text: text) -> None:
    """Step mode from the tab's own fields.

    Args:
        kind: "music" or "lyrics".
        bundle: The tab's model dropdown.
        primer_inputs: The tab's primer fields; `primer_of(*values)` turns them into a primer.
        sampling_inputs: Temperature, top-k, top-p and repetition penalty fields.
        rng_seed: The RNG seed field.
    """
    with gr.Accordion("Step by hand", open=False):
        gr.Markdown(NOTES[kind])
        with gr.Row():
            start = gr.Button("Start from the " + ("primer" if kind == "music" else "seed line"), variant="primary")
            model_pick = gr.Button("Let the model pick")
        with gr.Row():
            choices = [gr.Button(visible=False, min_width=60, elem_classes=["seqgen-candidate"]) for _ in range(CANDIDATES)]
        if kind == "lyrics":
            so_far = [gr.HTML(elem_classes=["seqgen-step-text"])]
        else:
            so_far = [gr.Audio(type="filepath", interactive=False, label="The melody so far"),
                      gr.Textbox(label="Tokens: primer ‖ yours", lines=2)]
        chart = gr.Plot(label="The next token's distribution")
    session = gr.State()  # {"entry", "session", "out_dir"}: a few kilobytes per user
    views = [*so_far, *choices, chart, session]
    common = dict(api_visibility="private", concurrency_id="step", concurrency_limit=4)
    start.click(starter(kind, len(primer_inputs), primer_of), [bundle, *primer_inputs, *sampling_inputs, rng_seed], views, **common)
    model_pick.click(picker(kind, None), session, views, **common)
    for number, button in enumerate(choices):
        button.click(picker(kind, number), session, views, **common)

"""Inside the model, under the Melody and Lyrics tabs: why each token came next, and what one LSTM cell does.

:func:`build` adds two views below a tab's outputs and fills them whenever the
tab's ``gr.State`` receives a new generation (``{"entry": …, "output": …}``,
made with :data:`GENERATION_OPTIONS`, so the sampler kept each step's
candidates and the top LSTM layer's hidden states):

- the explanation strip: every new token as a chip, darker when the pick was
  less likely; hovering shows the candidates, clicking draws the selected
  step's distribution before and after temperature;
- the cells: the units ranked by how well they follow a feature
  (:mod:`seqgen.insight`); the Lyrics tab colours the text by the chosen
  cell, the Melody tab draws it under a piano roll.

Only the ranking runs in a worker (it needs the loaded model and, for
melodies, music21's pitches); the HTML and figures are made here, and choosing
another step or cell never leaves the server.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import gradio as gr
import numpy as np

from seqgen.music import display_token
from studio import bundles, pool
from studio.common import user_errors

# What the tabs pass to generate_melody / complete_lyrics: five candidates per step, the top layer's states.
GENERATION_OPTIONS = {"explain": 5, "record": "top"}
NOTES = {
    "music": ("**Why this note?** At every step the model gives each possible next token a probability; the sampling "
              "rules (temperature, top-k, top-p) reshape them, and one is drawn. Each chip below is one note of melody 1: "
              "the darker it is, the less likely it was. Hover a chip to see its rivals, click it to compare the "
              "model's probabilities before and after temperature."),
    "lyrics": ("**Why this letter?** At every step the model gives each character a probability; the sampling rules "
               "(temperature, top-k, top-p) reshape them, and one is drawn. Each chip below is one character of the "
               "completion: the darker it is, the less likely it was. Hover a chip to see its rivals, click it to "
               "compare the model's probabilities before and after temperature."),
}
CELL_NOTES = {
    "music": ("**Inside the LSTM.** The network's memory is a few hundred numbers between −1 and 1, updated after "
              "every note. Some of them, the *cells*, learn to follow something on their own, such as how high the "
              "melody is or where we are in the bar. Pick a cell: the line under the piano roll is its value note by note."),
    "lyrics": ("**Inside the LSTM.** The network's memory is a few hundred numbers between −1 and 1, updated after "
               "every character. Some of them, the *cells*, learn to follow something on their own: how far we are "
               "into the line, whether we are inside a word. Pick a cell: red letters push it up, blue ones down."),
}
STRIP_CSS = """
.seqgen-strip { font-family: ui-monospace, monospace; line-height: 2; white-space: pre-wrap; }
.seqgen-strip .seqgen-step { cursor: pointer; border-radius: 2px; }
.seqgen-strip .seqgen-step:hover, .seqgen-strip .seqgen-step.seqgen-selected { outline: 2px solid #c2410c; }
"""
# A click on a chip selects it here and sends its step number to the server (evt.step).
STRIP_JS = """
element.addEventListener('click', (event) => {
  const chip = event.target.closest('[data-step]');
  if (!chip) return;
  element.querySelectorAll('.seqgen-selected').forEach((old) => old.classList.remove('seqgen-selected'));
  chip.classList.add('seqgen-selected');
  trigger('click', {step: Number(chip.dataset.step)});
});
"""


SHOWN = {" ": "␣", "\n": "↵"}  # tokens a reader could not see


def shown(token: str) -> str:
    """A token as a reader sees it: a space as ␣ and a line break as ↵, ``B-4`` as ``B♭4``, ``Position_12`` as
    ``beat 2½`` (:func:`seqgen.music.display_token`)."""
    return SHOWN.get(token) or display_token(token)


def percent(probability: float) -> str:
    return f"{probability:.0%}" if probability >= 0.01 or probability == 0 else "<1%"


def likeliest(rank: int) -> str:
    """"the most likely", "the 2nd most likely", … "the 11th most likely", "the 21st most likely"."""
    if rank == 1:
        return "the most likely"
    suffix = "th" if 10 <= rank % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(rank % 10, "th")
    return f"the {rank}{suffix} most likely"


def step_title(number: int, step: dict) -> str:
    """The hover text of one step: the pick and its rivals, after the rules and before temperature."""
    after = ", ".join(f"{shown(token)} {percent(p)}" for token, p in step["candidates"])
    before = ", ".join(f"{shown(token)} {percent(p)}" for token, p in step["before_temperature"])
    return (f"step {number}: {shown(step['chosen'])}, {percent(step['probability'])}, {likeliest(step['rank'])}\n"
            f"drawn from: {after}\nmodel, before temperature: {before}")


def strip_html(steps: Sequence[dict], kind: str) -> str:
    """The explanation strip: one chip per step, shaded by how unlikely the pick was, its candidates on hover."""
    chips = []
    for number, step in enumerate(steps, start=1):
        token = step["chosen"]
        text = "↵\n" if token == "\n" else token if kind == "lyrics" else shown(token)
        chips.append(f'<span class="seqgen-step" data-step="{number}" title="{html.escape(step_title(number, step))}" '
                     f'style="background:rgba(234,88,12,{0.75 * (1 - step["probability"]):.2f})">{html.escape(text)}</span>')
    return f'<div class="seqgen-strip">{("" if kind == "lyrics" else " ").join(chips)}</div>'


def distribution_figure(step: dict, title: str):
    """Grouped bars of a step's candidates: the model's probabilities before temperature and after the rules; the pick in orange."""
    import plotly.graph_objects as go

    tokens = [token for token, _ in step["before_temperature"]]
    after = dict(step["candidates"])
    labels = [shown(token) for token in tokens]
    chosen = step.get("chosen")
    layout = {"title": {"text": title}, "barmode": "group", "height": 280, "template": "plotly_white",
              "margin": {"l": 40, "r": 10, "t": 40, "b": 40}, "yaxis": {"title": {"text": "probability"}, "range": [0, 1]},
              "legend": {"orientation": "h", "y": -0.25}}
    return go.Figure([
        go.Bar(x=labels, y=[p for _, p in step["before_temperature"]], name="model, before temperature", marker={"color": "#94a3b8"}),
        go.Bar(x=labels, y=[after.get(token, 0.0) for token in tokens], name="after the sampling rules",
               marker={"color": ["#c2410c" if token == chosen else "#3b6ea5" for token in tokens]}),
    ], layout=layout)


def cell_choices(cells: list[dict], units: int) -> list[tuple[str, int]]:
    """Dropdown choices: the ranked cells first, each once with the feature it follows best, then every other unit."""
    choices, listed = [], set()
    for cell in cells:
        if cell["unit"] not in listed:
            listed.add(cell["unit"])
            choices.append((f"cell {cell['unit']}: {cell['label']} (r = {cell['correlation']:+.2f})", cell["unit"]))
    return choices + [(f"cell {unit}", unit) for unit in range(units) if unit not in listed]


def coloured_text(tokens: list[str], values: np.ndarray, primer_length: int) -> str:
    """Characters on a blue (−1) … white … red (+1) background by one cell's value; the seed in bold."""
    spans = []
    for position, (char, value) in enumerate(zip(tokens, values)):
        colour = f"rgba(220,38,38,{value:.2f})" if value >= 0 else f"rgba(37,99,235,{-value:.2f})"
        weight = "font-weight:700;" if position < primer_length else ""
        spans.append(f'<span title="{value:+.2f}" style="background:{colour};{weight}">{html.escape(char)}</span>')
    return f'<div class="seqgen-cells" style="white-space:pre-wrap;font-family:ui-monospace,monospace;line-height:1.6">{"".join(spans)}</div>'


def cell_figure(view: dict, unit: int):
    """Melody 1's notes as a small piano roll with the cell's value under it, on one time axis (quarter notes)."""
    import plotly.graph_objects as go

    start = view["primer_length"]
    onsets, durations, pitches = view["onsets"][start:], view["durations"][start:], view["pitches"][start:]
    origin = onsets[0] if len(onsets) else 0.0
    bars = [(onset - origin, duration, pitch) for onset, duration, chord in zip(onsets, durations, pitches) for pitch in chord]
    values = view["values"][start:, unit]
    label = next((cell["label"] for cell in view["cells"] if cell["unit"] == unit), None)
    layout = {
        "title": {"text": f"Cell {unit}" + (f", which follows the {label}" if label else "") + ", note by note (melody 1)"},
        "height": 420, "template": "plotly_white", "showlegend": False, "margin": {"l": 50, "r": 10, "t": 40, "b": 40},
        "xaxis": {"title": {"text": "time (quarter notes)"}, "rangemode": "tozero", "anchor": "y2"},
        "yaxis": {"domain": [0.45, 1], "title": {"text": "pitch (MIDI)"}},
        "yaxis2": {"domain": [0, 0.35], "range": [-1.05, 1.05], "title": {"text": f"cell {unit}"}, "zeroline": True},
    }
    return go.Figure([
        go.Bar(orientation="h", base=[bar[0] for bar in bars], x=[bar[1] for bar in bars], y=[bar[2] for bar in bars],
               width=0.8, marker={"color": "#3b6ea5"}, hovertemplate="MIDI %{y}<extra></extra>"),
        go.Scatter(x=np.append(onsets - origin, onsets[-1] - origin + durations[-1]) if len(onsets) else [],
                   y=np.append(values, values[-1]) if len(values) else [], yaxis="y2", mode="lines",
                   line={"shape": "hv", "color": "#c2410c"}, hovertemplate="%{y:+.2f}<extra></extra>"),
    ], layout=layout)


def cells_in_worker(entry, output) -> dict:
    """In a :mod:`studio.pool` worker: the first variation's activations, ranked cells and (melodies) timeline."""
    from seqgen import insight

    bundle = bundles.load(entry)
    found, primer_length = insight.of_generation(bundle, output)
    view = {"tokens": found.tokens, "values": found.values, "cells": found.cells, "primer_length": primer_length, "layer": found.layer}
    if bundle.config["kind"] == "music":
        view["onsets"], view["durations"], view["pitches"] = insight.timeline(found.tokens, bundle.config["tokenizer"])
    return view


def cell_view(kind: str, view: dict, unit: int):
    """The chosen cell on the tab's output: coloured text (lyrics) or a figure under the notes (melodies)."""
    if kind == "lyrics":
        return coloured_text(view["tokens"], view["values"][:, unit], view["primer_length"])
    return cell_figure(view, unit)


def make_show(kind: str):
    """The follow-up of a new generation: the strip (its chart hidden until a step is clicked), the ranked cells and the best one drawn."""

    @user_errors
    def show(state):
        if not state or state["output"].steps is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), None
        steps = state["output"].steps[0]
        view = pool.submit(cells_in_worker, state["entry"], state["output"]).result()
        view["steps"] = steps
        best = view["cells"][0]["unit"] if view["cells"] else 0
        choices = cell_choices(view["cells"], view["values"].shape[1])
        return (strip_html(steps, kind), gr.update(value=None, visible=False), f"{len(steps)} steps: click one to see its distribution.",
                gr.update(choices=choices, value=best, label=f"Cell of {view['layer']} (best-ranked first)"),
                cell_view(kind, view, best), view)

    return show


@user_errors
def select_step(view, evt: gr.EventData):
    """A chip was clicked: that step's distribution."""
    number = int(getattr(evt, "step", 0) or 0)
    if not view or not 1 <= number <= len(view["steps"]):
        return gr.skip(), gr.skip()
    step = view["steps"][number - 1]
    caption = (f"Step {number}: the model drew **{html.escape(shown(step['chosen']))}** with probability "
               f"{percent(step['probability'])}, {likeliest(step['rank'])} after the rules.")
    return gr.update(value=distribution_figure(step, f"Step {number}"), visible=True), caption


def make_select_cell(kind: str):
    """The cell dropdown's handler: `(view, unit)` → the chosen cell drawn."""

    @user_errors
    def select_cell(view, unit):
        if not view or unit is None:
            return gr.skip()
        return cell_view(kind, view, int(unit))

    return select_cell


def build(kind: str, state: gr.State) -> None:
    """The explanation strip and the cell view, filled whenever `state` receives a generation."""
    with gr.Accordion("Inside the model: why each token, and what the cells do", open=True):
        gr.Markdown(NOTES[kind])
        strip = gr.HTML(css_template=STRIP_CSS, js_on_load=STRIP_JS, max_height=260)
        caption = gr.Markdown()
        chart = gr.Plot(label="The selected step's distribution", visible=False)  # until a step is clicked
        gr.Markdown(CELL_NOTES[kind])
        cell = gr.Dropdown(label="Cell", choices=[], interactive=True)
        drawn = gr.HTML() if kind == "lyrics" else gr.Plot(label="The cell under the notes")
    view = gr.State()  # this session's steps and activations: choosing a step or a cell needs no worker
    state.change(make_show(kind), state, [strip, chart, caption, cell, drawn, view], api_visibility="private",
                 concurrency_id="insight", concurrency_limit=4)
    strip.click(select_step, view, [chart, caption], api_visibility="private", queue=False)
    cell.input(make_select_cell(kind), [view, cell], drawn, api_visibility="private", queue=False)

"""The studio's insight views and Step mode, their handlers called in this process on the shared debug bundles.

studio/insight.py follows a generation (the tab's ``gr.State``) with the
explanation strip and the ranked cells; studio/step.py steps a generation by
hand.  Requests run in threads (``SEQGEN_GENERATION_WORKERS=0``, see
conftest); tests/test_browser_insight.py clicks through the same views.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

from studio import insight, lyrics, melody, step

SAMPLING = (0.8, 0, 1.0, 1.0)  # temperature, top-k (off), top-p (off), repetition penalty


@pytest.fixture(scope="module", autouse=True)
def checkpoints(tmp_path_factory, music_bundle_dir, timed_bundle_dir, lyrics_bundle_dir):
    """The studio lists the three debug bundles only."""
    folder = tmp_path_factory.mktemp("insight-checkpoints")
    for name, source in (("debug-music", music_bundle_dir), ("debug-timed", timed_bundle_dir), ("debug-lyrics", lyrics_bundle_dir)):
        shutil.copytree(source, folder / name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEQGEN_CHECKPOINTS", str(folder))
        patch.setenv("SEQGEN_STUDIO_DIR", str(folder.parent / "studio"))
        yield folder


def no_progress(*args, **kwargs) -> None:
    """Stands in for gr.Progress outside a request."""


@pytest.fixture(scope="module")
def verse():
    """A 60-character completion's state, as the Lyrics tab hands it to its views."""
    *_, last = lyrics.run_lyrics("debug-lyrics", "let dance", 60, 0, False, 0.8, 3)
    return last[-1]


def test_the_strip_shows_every_step_and_the_best_cell_colours_the_text(verse):
    output = verse["output"]
    strip, chart, caption, cell, drawn, view = insight.make_show("lyrics")(verse)
    text = output.texts[0]
    assert strip.count('class="seqgen-step"') == len(text) == 60 and 'data-step="60"' in strip
    assert chart == gr.update(value=None, visible=False) and caption.startswith("60 steps")
    first = output.steps[0][0]
    assert f"step 1: {insight.shown(first['chosen'])}" in strip  # the hover text
    # The cells: ranked ones first, then every other unit; the best one is drawn.
    ranked = list(dict.fromkeys(found["unit"] for found in view["cells"]))  # a unit may follow two features: listed once
    assert [unit for _, unit in cell["choices"][:len(ranked)]] == ranked and cell["value"] == ranked[0]
    assert sorted(unit for _, unit in cell["choices"]) == list(range(view["values"].shape[1]))
    assert view["tokens"] == list(output.seed)[-8:] + list(text)  # the window of the seed, then the completion
    assert drawn.count("<span") == len(view["tokens"]) and drawn.count("font-weight:700") == view["primer_length"] == 8
    # Another cell recolours the same text.
    other = cell["choices"][-1][1]
    recoloured = insight.make_select_cell("lyrics")(view, other)
    assert recoloured != drawn and recoloured.count("<span") == len(view["tokens"])


def test_clicking_a_step_draws_its_distribution_with_the_pick_in_orange(verse):
    *_, view = insight.make_show("lyrics")(verse)
    chart, caption = insight.select_step(view, SimpleNamespace(step=3))
    step_three = verse["output"].steps[0][2]
    assert chart["visible"] is True
    before, after = chart["value"].data
    assert list(before.x) == [insight.shown(token) for token, _ in step_three["before_temperature"]]
    assert list(before.y) == [p for _, p in step_three["before_temperature"]]
    orange = [label for label, colour in zip(after.x, after.marker.color) if colour == "#c2410c"]
    assert orange == [insight.shown(step_three["chosen"])] or step_three["rank"] > 5
    assert caption.startswith(f"Step 3: the model drew **{insight.shown(step_three['chosen'])}**")
    assert insight.select_step(view, SimpleNamespace(step=999)) == (gr.skip(), gr.skip())


def test_the_strip_escapes_tokens():
    steps = [{"chosen": "<b>", "rank": 2, "probability": 0.25, "candidates": [["x", 0.75], ["<b>", 0.25]],
              "before_temperature": [["x", 0.7], ["<b>", 0.3]]}]
    strip = insight.strip_html(steps, "music")
    assert "<b>" not in strip and "&lt;b&gt;" in strip and "the 2nd most likely" in strip
    assert [insight.likeliest(rank) for rank in (1, 3, 11, 22)] == ["the most likely", "the 3rd most likely", "the 11th most likely",
                                                                   "the 22nd most likely"]


def test_the_melody_cell_is_drawn_under_its_notes():
    first = melody.run_melody("debug-timed", melody.PRIMERS[0], length=24, rng_seed=4, progress=no_progress)
    state = first[-1]
    *_, figure, view = insight.make_show("music")(state)
    notes, cell = figure.data
    assert cell.yaxis == "y2" and figure.layout.xaxis.anchor == "y2"
    generated = state["output"].melodies[0].tokens
    assert len(cell.y) == len(generated) + 1 and cell.x[0] == 0  # one value per note, from the melody's start
    sounding = [token for token in generated if not token.startswith("R_")]
    assert len(notes.y) == sum(len(re.sub(r"_\d+$", "", token).split(".")) for token in sounding)
    assert {found["feature"] for found in view["cells"]} == {"pitch_height", "bar_position"}


def test_a_generation_without_steps_leaves_the_views_alone(verse):
    plain = {**verse, "output": SimpleNamespace(steps=None)}
    assert insight.make_show("lyrics")(plain)[:5] == (gr.skip(),) * 5


def test_step_by_hand_in_the_lyrics_tab():
    text, *buttons, chart, state = step.starter("lyrics", 1)("debug-lyrics", "let dance", *SAMPLING, 2)
    session = state["session"]
    assert "<b>et dance</b>" in text  # the window: the seed's last 8 characters
    offered = session.offered["before_temperature"]
    assert [button["value"].split()[0] for button in buttons] == [insight.shown(token) for token, _ in offered]
    assert chart.layout.title.text == "Next token after 0 picks"
    # The 2nd candidate, then the model's pick: the text grows by one character each time.
    text, *buttons, chart, state = step.picker("lyrics", 1)(state)
    assert state["session"].picked == [offered[1][0]] and state["session"].by_model == [False]
    text, *_, state = step.picker("lyrics", None)(state)
    assert len(state["session"].picked) == 2 and state["session"].by_model == [False, True]
    assert text.count("<span") == 2
    with pytest.raises(gr.Error, match="Press Start first"):
        step.picker("lyrics", 0)(None)


def test_step_by_hand_in_the_melody_tab_plays_the_melody_so_far():
    start = step.starter("music", 3, melody.primer_input)
    audio, tokens, *buttons, chart, state = start("debug-timed", melody.PRIMERS[0], None, "", *SAMPLING, 6)
    assert audio["value"].endswith("step-0.wav") and Path(audio["value"]).is_file()
    assert tokens.endswith("‖  ") and len(tokens.split()) == 8 + 1  # the window of primer tokens, then the separator
    audio, tokens, *_, state = step.picker("music", 0)(state)
    assert audio["value"].endswith("step-1.wav") and tokens.split("‖")[1].split() == state["session"].picked
    with pytest.raises(gr.Error, match="Type some primer tokens"):
        start("debug-timed", "tokens", None, "", *SAMPLING, 6)


def test_events_steps_read_as_music():
    """The strip and its hover text spell events tokens as people read them."""
    from studio.insight import strip_html

    step = {"chosen": "Position_12", "probability": 0.5, "rank": 1,
            "candidates": [("Position_12", 0.5), ("Pitch_70", 0.3)], "before_temperature": [("Duration_1.4.8", 0.4)]}
    strip = strip_html([step], "music")
    assert ">beat 2½</span>" in strip and "B♭4 30%" in strip and "♩. 40%" in strip and "Position_12" not in strip

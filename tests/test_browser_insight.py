"""Inside the model, in a real browser: the explanation strip, the cells and Step by hand (Playwright, Debian's Chromium).

Uses the studio server of tests/test_app.py with its shipped default models;
screenshots go to ``$SEQGEN_ARTIFACTS`` or ``tests/artifacts/``.  Skipped
only when ``/usr/bin/chromium`` is missing; no browser is ever downloaded.
"""

from __future__ import annotations

import pytest

from test_app import studio  # noqa: F401 - the shared server fixture
from test_browser import ARTIFACTS, CHROMIUM, LAPTOP, browser, open_page  # noqa: F401 - the browser fixtures

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's Chromium is not installed (/usr/bin/chromium; apt-get install chromium)")


def open_accordion(page, label: str) -> None:
    """The verse's accordion: Play shows the melody's column first, then the verse's."""
    page.get_by_role("tabpanel").get_by_text(label, exact=True).last.click()


def test_three_steps_by_hand_grow_the_text(open_page):  # noqa: F811
    page = open_page(LAPTOP)  # it opens on Play: the melody's column, then the verse's
    open_accordion(page, "Step by hand")
    page.get_by_role("button", name="Start from the seed line").click()
    text = page.locator(".seqgen-so-far")
    text.wait_for()
    assert text.inner_text().startswith("let dance for the rest of the night here")
    candidates = page.locator(".seqgen-candidate")
    candidates.first.wait_for(state="visible")
    assert candidates.count() == 5 and "%" in candidates.first.inner_text()
    picks = text.locator("span")
    for number, click in enumerate([candidates.nth(0).click, page.get_by_role("button", name="Let the model pick").click,
                                    candidates.nth(1).click], start=1):
        click()
        page.wait_for_function("n => document.querySelectorAll('.seqgen-so-far span').length === n", arg=number)
    assert picks.count() == 3
    page.screenshot(path=str(ARTIFACTS / "lyrics-step-by-hand.png"), full_page=True)


def test_the_strip_explains_each_character_and_a_cell_colours_the_verse(open_page):  # noqa: F811
    page = open_page(LAPTOP)  # it opens on Play: the melody's column, then the verse's
    page.get_by_role("button", name="Complete", exact=True).click()
    chips = page.locator(".seqgen-strip .seqgen-step")
    chips.first.wait_for(timeout=90_000)
    assert chips.count() == 400  # one chip per generated character
    assert "drawn from:" in chips.nth(4).get_attribute("title")
    chips.nth(4).click()
    page.get_by_text("Step 5: the model drew").wait_for()
    assert "seqgen-selected" in chips.nth(4).get_attribute("class")
    page.get_by_text("model, before temperature").first.wait_for()  # the chart's legend
    coloured = page.locator(".seqgen-cells span")
    assert coloured.count() > 400 and "rgba(" in coloured.nth(3).get_attribute("style")
    page.screenshot(path=str(ARTIFACTS / "lyrics-insight.png"), full_page=True)


def test_the_melody_cell_is_drawn_under_its_notes(open_page):  # noqa: F811
    page = open_page(LAPTOP)  # it opens on Play: the melody's column, then the verse's
    page.get_by_role("button", name="Generate", exact=True).click()
    page.locator(".seqgen-strip .seqgen-step").first.wait_for(timeout=90_000)
    page.get_by_text("note by note (melody 1)").wait_for()  # the cell figure's title
    page.screenshot(path=str(ARTIFACTS / "melody-insight.png"), full_page=True)

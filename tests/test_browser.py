"""The studio in a real browser: Playwright drives Debian's Chromium against the running server.

Visits every tab (a screenshot of each goes to ``$SEQGEN_ARTIFACTS`` or
``tests/artifacts/``), then, with the models each tab opens with, generates a
melody (waiting for an ``<audio>`` element with a source) and completes the
default seed line.  Skipped only when ``/usr/bin/chromium`` is missing;
no browser is ever downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from test_app import studio  # noqa: F401 - the shared server fixture

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("SEQGEN_ARTIFACTS") or Path(__file__).resolve().parent / "artifacts")
TABS = ("Explore", "Train", "Study", "Melody", "Lyrics", "Models")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's Chromium is not installed (/usr/bin/chromium; apt-get install chromium)")


@pytest.fixture(scope="module")
def page(studio):  # noqa: F811
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(studio.url, wait_until="domcontentloaded")
            page.get_by_role("tab", name="Explore", exact=True).wait_for()
            page.errors = errors
            yield page
        finally:
            browser.close()


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()
    page.wait_for_timeout(800)  # the tab's refresh (model lists) lands


def test_every_tab_opens_with_its_introduction(page):
    intros = {"Explore": "stream of", "Train": "unigram baseline", "Study": "loss × optimizer", "Melody": "Temperature",
              "Lyrics": "bold orange", "Models": "model card"}
    for name in TABS:
        open_tab(page, name)
        panel = page.get_by_role("tabpanel")
        assert intros[name] in panel.inner_text(), name
        page.screenshot(path=str(ARTIFACTS / f"tab-{name.lower()}.png"), full_page=True)
    assert not page.errors, page.errors


def test_generate_a_melody_and_play_it(page):
    """One click on a fresh page: the shipped default model makes a melody that plays, then its sheet music appears."""
    open_tab(page, "Melody")
    assert page.get_by_label("Music model").input_value() == "bach-timed"
    page.get_by_role("button", name="Generate", exact=True).click()
    player = page.locator("audio[src], audio source[src]").first
    player.wait_for(state="attached", timeout=90_000)
    source = player.get_attribute("src")
    assert source and (source.startswith("blob:") or "/gradio_api/file=" in source)  # the player may fetch it into a blob
    page.get_by_text("rendered with").first.wait_for()
    page.locator(".seqgen-sheet svg").first.wait_for(timeout=90_000)  # the follow-up event engraves the score
    page.screenshot(path=str(ARTIFACTS / "melody-generated.png"), full_page=True)
    assert not page.errors, page.errors


def test_complete_the_default_seed_line_in_one_click(page):
    """The Lyrics tab opens with the shipped lyrics model and the seed line: one click completes a verse."""
    open_tab(page, "Lyrics")
    assert page.get_by_label("Lyrics model").input_value() == "songs-poems-embed"
    page.get_by_role("button", name="Complete", exact=True).click()
    completion = page.locator(".seqgen-completion").first
    completion.wait_for(timeout=90_000)
    # The verse streams in character by character; the quality report arrives with the last of it.
    page.get_by_text("known_word_share").first.wait_for(timeout=90_000)
    assert len(completion.inner_text().split()) > 20
    page.screenshot(path=str(ARTIFACTS / "lyrics-completed.png"), full_page=True)
    assert not page.errors, page.errors

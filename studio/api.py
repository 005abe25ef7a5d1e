"""Typed API endpoints for scripts: ``/melody`` and ``/lyrics``.

The UI events (``/generate_melody``, ``/complete_lyrics``) answer with updates
for the page's components.  These two take plain typed arguments, every one
optional (the studio's defaults: its default model, a random seed window, the
default seed line, a freshly drawn RNG seed), and return one JSON object:
tokens or text, the files (``gradio_client`` downloads them and gives their
local paths), the settings used (with the RNG seed) and the quality report.
Both call :mod:`seqgen.generate` with a bundle from :mod:`studio.bundles`.
"""

from pathlib import Path
from typing import Any, TypedDict

import gradio as gr

from seqgen.errors import SeqgenError
from seqgen.generate import DEFAULT_SEED_LINE
from studio import bundles, pool
from studio.common import queue_size, request_dir, user_errors, whole
from studio.lyrics import complete_in_worker, lyrics_options
from studio.melody import generate_pieces, melody_options

MAX_VARIATIONS = 4  # as many as the Melody tab shows


class MelodyFiles(TypedDict):
    """Each value is a file (a local path once gradio_client has downloaded it), or None."""

    midi: Any
    wav: Any  # None when there is no audio: see renderer_note
    params: Any  # the settings, tokens and quality report as JSON
    musicxml: Any  # None unless sheet_music was asked for


class Melody(TypedDict):
    tokens: list[str]
    ended: bool | None  # with until_end: whether the model ended the piece itself; else None
    files: MelodyFiles
    renderer: str | None  # "fluidsynth" or "builtin"
    renderer_note: str | None  # why FluidSynth was not used, or why there is no audio
    quality: dict[str, Any]


class MelodyResult(TypedDict):
    model: str
    primer: list[str]
    dropped: dict[str, int]  # primer tokens the model does not know
    settings: dict[str, Any]  # everything needed to make the melodies again, rng_seed included
    melodies: list[Melody]


class LyricsResult(TypedDict):
    model: str
    seed: str  # the seed line as the model saw it (cleaned)
    text: str  # what the model wrote after the seed
    dropped: dict[str, int]  # seed characters the model does not know
    settings: dict[str, Any]
    quality: dict[str, Any]


def file_data(path: Path | None) -> dict | None:
    """A file Gradio serves to the client (copied into its cache), or None."""
    return gr.FileData(path=str(path)).model_dump() if path else None


@user_errors
def melody(model: str | None = None, primer_tokens: str | None = None, length: int = 0, temperature: float = 1.0,
           top_k: int = 0, top_p: float = 1.0, repetition_penalty: float = 1.0, variations: int = 1,
           rng_seed: int | None = None, tempo: float = 120.0, instrument: int = 0, mode: str | None = None,
           sheet_music: bool = False, until_end: bool = True) -> MelodyResult:
    """Generate melodies with a music model (default: the studio's) from primer tokens or a random seed window.

    rng_seed: None or negative draws one (returned in settings); mode: "window", "stateful" or None (the
    model's default); sheet_music: also write MusicXML; until_end: with a model that learned where pieces end
    (events tokens), write whole pieces, ``length`` being their cap, each melody saying whether it ended (other
    models write ``length`` tokens); length 0: the model's own (100 tokens, or a cap that holds its corpus's pieces).
    """
    entry = bundles.find(model, "music")
    variations = whole(variations, "Variations", minimum=1)
    if variations > MAX_VARIATIONS:
        raise SeqgenError(f"At most {MAX_VARIATIONS} variations per request (got {variations}).")
    options = melody_options(length, (primer_tokens or "").split() or None, mode or None, temperature, top_k, top_p,
                             repetition_penalty, variations, rng_seed, tempo, instrument, until_end)
    output = pool.submit(melody_in_worker, entry, request_dir("api-melody", served=True), options, bool(sheet_music),
                         max_waiting=queue_size()).result()
    melodies = [Melody(tokens=item.tokens, ended=item.ended, renderer=item.renderer, renderer_note=item.renderer_note, quality=item.quality,
                       files=MelodyFiles(midi=file_data(item.midi), wav=file_data(item.wav), params=file_data(item.params),
                                         musicxml=file_data(item.musicxml)))
                for item in output.melodies]
    return MelodyResult(model=entry.label, primer=output.primer, dropped=output.dropped, settings=output.settings, melodies=melodies)


@user_errors
def lyrics(model: str | None = None, seed_line: str = DEFAULT_SEED_LINE, length: int = 400, lines: int | None = None,
           stop_at_verse_end: bool = False, temperature: float = 0.8, top_k: int = 0, top_p: float = 1.0,
           repetition_penalty: float = 1.0, rng_seed: int | None = None) -> LyricsResult:
    """Continue a seed line with a lyrics model (default: the studio's).

    length: the most characters; lines: stop after this many lines (None or 0: no limit); rng_seed: None or
    negative draws one (returned in settings).
    """
    entry = bundles.find(model, "lyrics")
    options = lyrics_options(length, lines, stop_at_verse_end, temperature, top_k, top_p, repetition_penalty, rng_seed)
    output = pool.submit(complete_in_worker, entry, seed_line, options, max_waiting=queue_size()).result()
    return LyricsResult(model=entry.label, seed=output.seed, text=output.texts[0], dropped=output.dropped,
                        settings=output.settings, quality=output.quality[0])


def melody_in_worker(entry, out_dir, options: dict, sheet_music: bool):
    """Generate and describe in a :mod:`studio.pool` worker (sheet music only when asked for)."""
    from seqgen.generate import describe_melodies

    loaded = bundles.load(entry)
    return describe_melodies(loaded, generate_pieces(loaded, out_dir, options), engrave=sheet_music)


def build() -> None:
    """Register the endpoints (inside the studio's Blocks); they share the generation tabs' concurrency group."""
    gr.api(melody, api_name="melody", concurrency_id="generate", concurrency_limit=None)  # they wait in studio.pool
    gr.api(lyrics, api_name="lyrics", concurrency_id="generate", concurrency_limit=None)

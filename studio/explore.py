"""Explore tab: a corpus as the network sees it (tokens, counts, the rare-token filter, windows)."""

from __future__ import annotations

import gradio as gr

from seqgen.music import TOKENIZERS
from seqgen.sources import MUSIC_SUFFIXES, LYRICS_SUFFIXES
from seqgen.vocab import FILTER_HELP, FILTERS
from studio.common import user_errors, whole
from studio.corpora import corpus_choices, corpus_kind, load_corpus_for_ui
from studio.worker import fmt

INTRO = """\
A corpus becomes one long stream of **tokens**: notes and chords (`B-4`, `5.8.10`) for music, characters for lyrics.
Tokens seen fewer than *min-count* times are dropped, and the stream is cut into windows of 40 tokens that each
predict the next one: that is the number of training **sequences**. Try the `reference` filter to see the
reference notebook's quirk: some rare tokens survive it.
"""

UPLOAD_TYPES = list(MUSIC_SUFFIXES) + list(LYRICS_SUFFIXES) + [".zip"]
DEFAULT_CORPUS = "mozart"  # the reference's corpus (chopin is one short piece: min-count 100 removes it all)


def filter_info() -> str:
    return " · ".join(f"{name}: {FILTER_HELP[name]}" for name in FILTERS)


def summary_markdown(report: dict) -> str:
    lines = [
        f"**{report['corpus']}** ({report['kind']}, tokenizer `{report['tokenizer']}`): {fmt(report['items'])} items, "
        f"{fmt(report['tokens_total'])} tokens, {fmt(report['vocab_size'])} distinct.",
        "",
        f"- Tokens occurring fewer than {report['min_count']} times: **{fmt(report['rare_tokens'])}**",
        f"- After the `{report['filter']}` filter: **{fmt(report['tokens_after_filter'])}** tokens, "
        f"{fmt(report['vocab_after_filter'])} distinct; rare tokens that survive: **{fmt(report['rare_left'])}**",
        f"- Sequences of {report['window']} tokens (tokens after filter − window): **{fmt(report['sequences'])}**",
    ]
    if report.get("skipped"):
        lines.append(f"- Skipped files: {len(report['skipped'])} (see the table below)")
    for warning in report.get("warnings", []):
        lines.append(f"- ⚠️ {warning}")
    return "\n".join(lines)


def char_list(chars) -> str:
    names = {" ": "␠", "\n": "⏎", "\t": "⇥"}
    return " ".join(f"`{names.get(char, char)}`" if char != "`" else "` ` `" for char in chars) or "none"


def charset_markdown(report: dict) -> str:
    if report["kind"] != "lyrics":
        return ""
    removed = ", ".join(f"`{char!r}` ×{count}" for char, count in report["removed_chars"].items()) or "none"
    mapped = ", ".join(f"`{char!r}` → `{plain!r}`" for char, plain in report["mapped_chars"].items()) or "none"
    return (
        f"**Characters before cleaning** ({len(report['charset_raw'])}): {char_list(report['charset_raw'])}\n\n"
        f"**After cleaning** ({len(report['charset_clean'])}): {char_list(report['charset_clean'])}\n\n"
        f"**Removed**: {removed}\n\n**Mapped to ASCII**: {mapped}"
    )


@user_errors
def run_explore(corpus=DEFAULT_CORPUS, uploads=None, text_column=None, tokenizer="seed", min_count=None, filter_mode="exact",
                window=40, progress=gr.Progress()):
    """Load a corpus and report what the reference printed, with its figures."""
    from seqgen import plots
    from seqgen.corpus import explore

    min_count = whole(min_count, "min-count", minimum=1, optional=True)
    window = whole(window, "Window", minimum=1)
    progress(0, desc="reading the corpus")
    loaded = load_corpus_for_ui(corpus, uploads, tokenizer, text_column,
                                progress=lambda done, total: progress((done, total), desc="parsing scores", unit="files"))
    result = explore(loaded, min_count=min_count, filter_mode=filter_mode, window=window)
    report = result.report
    first = report["first_tokens"]
    first_text = " ".join(first) if report["kind"] == "music" else "".join(first)
    lyrics = report["kind"] == "lyrics"
    skipped = [[item["file"], item["reason"]] for item in report["skipped"]]
    return (
        report,
        summary_markdown(report),
        first_text,
        plots.count_plot(result.counts),
        plots.frequency_kde(result.counts, report["min_count"]),
        plots.top_tokens(result.counts),
        gr.update(value=plots.char_frequencies(result.counts) if lyrics else None, visible=lyrics),
        gr.update(value=charset_markdown(report), visible=lyrics),
        gr.update(value=skipped or [["", "no file was skipped"]]),
    )


def default_min_count(corpus):
    """The reference's 100 for music; 1 keeps every character of a lyrics corpus."""
    from seqgen.corpus import DEFAULT_MIN_COUNT

    return DEFAULT_MIN_COUNT.get(corpus_kind(corpus) or "music", 100)


def build() -> dict:
    gr.Markdown(INTRO)
    with gr.Row():
        with gr.Column(scale=1):
            corpus = gr.Dropdown(corpus_choices(), value=DEFAULT_CORPUS, label="Built-in corpus", allow_custom_value=True,
                                 info="or upload your own below (the upload wins)")
            uploads = gr.File(file_count="multiple", file_types=UPLOAD_TYPES, type="filepath",
                              label="Upload: score files (MIDI, MusicXML, abc, kern), a .zip, or lyrics .csv/.txt")
            text_column = gr.Textbox(label="Lyrics CSV text column", placeholder="Lyrics", max_lines=1)
            tokenizer = gr.Radio(list(TOKENIZERS), value="seed", label="Tokenizer (music)",
                                 info="seed: the reference (pitches only); timed: pitches with durations and rests")
            with gr.Row():
                min_count = gr.Number(100, precision=0, label="min-count", info="rarer tokens are dropped")
                window = gr.Number(40, precision=0, label="Window")
            filter_mode = gr.Radio(list(FILTERS), value="exact", label="Rare-token filter", info=filter_info())
            button = gr.Button("Explore", variant="primary")
        with gr.Column(scale=2):
            summary = gr.Markdown()
            first = gr.Textbox(label="First 50 tokens", lines=3, buttons=["copy"])
            charset = gr.Markdown(visible=False)
            skipped = gr.Dataframe(headers=["file", "reason"], label="Skipped files", interactive=False, wrap=True)
            report = gr.JSON(label="Report (JSON)", open=False)
    with gr.Row():
        counts = gr.Plot(label="Count plot")
        kde = gr.Plot(label="Token frequency KDE")
    with gr.Row():
        top = gr.Plot(label="Top tokens")
        chars = gr.Plot(label="Character frequencies", visible=False)
    corpus.change(default_min_count, corpus, min_count, api_visibility="private", queue=False)
    button.click(
        run_explore, [corpus, uploads, text_column, tokenizer, min_count, filter_mode, window],
        [report, summary, first, counts, kde, top, chars, charset, skipped],
        api_name="explore", concurrency_id="explore", concurrency_limit=2,
    )
    return {"corpus": corpus}

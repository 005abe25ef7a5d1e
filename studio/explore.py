"""Explore tab: a corpus as the network sees it (tokens, counts, the rare-token filter, windows)."""

from __future__ import annotations

import gradio as gr

from seqgen.music import TOKENIZERS, display_token
from seqgen.sources import MUSIC_SUFFIXES, LYRICS_SUFFIXES
from seqgen.vocab import FILTER_HELP, FILTERS
from studio.common import on_failure, user_errors, whole
from studio.corpora import corpus_choices, corpus_kind, load_corpus_for_ui
from studio.worker import fmt

INTRO = """\
**Step 1 of 3.** A network never sees notes or letters, only **tokens**: a corpus becomes one long stream of them
(notes and chords such as `B♭4` or `5.8.10` for music, characters for lyrics). Look at which tokens are common and which
are rare: tokens seen fewer than **min-count** times are dropped, and the stream is cut into windows of 40 tokens that
each predict the next one (the training **sequences**).
"""
RANK_NOTE = """\
Each dot is one token, the most frequent on the left. On these log–log axes a falling, nearly straight line means a few
tokens are very common and most are rare (Zipf's law); the tokens under the dashed min-count line are dropped.
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
    first_text = " ".join(display_token(token) for token in first) if report["kind"] == "music" else "".join(first)
    lyrics = report["kind"] == "lyrics"
    skipped = [[item["file"], item["reason"]] for item in report["skipped"]]
    events = report["tokenizer"] == "events"
    return (
        report,
        summary_markdown(report),
        first_text,
        plots.count_plot(result.counts),
        plots.rank_frequency(result.counts, report["min_count"]),
        plots.top_tokens(result.counts),
        gr.update(value=plots.char_frequencies(result.counts) if lyrics else None, visible=lyrics),
        gr.update(value=charset_markdown(report), visible=lyrics),
        gr.update(value=skipped or [["", "no file was skipped"]]),
        gr.update(value=plots.event_types(result.counts) if events else None, visible=events),
    )


def inputs_that_apply(corpus, uploads):
    """The CSV column only for a CSV upload; the tokenizer unless the corpus is known to be lyrics."""
    suffixes = {str(path).lower().rpartition(".")[2] for path in uploads or []}
    lyrics = corpus_kind(corpus) == "lyrics" if not uploads else not suffixes - {"csv", "txt"}
    return gr.update(visible="csv" in suffixes), gr.update(visible=not lyrics)


def default_min_count(corpus, tokenizer="seed"):
    """The corpus's default rare-token threshold (seqgen.corpus.default_min_count): 100 for seed and timed music,
    1 for events and lyrics."""
    from seqgen.corpus import default_min_count as threshold

    return threshold(corpus_kind(corpus) or "music", tokenizer)


def build() -> dict:
    gr.Markdown(INTRO)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=320):
            corpus = gr.Dropdown(corpus_choices(), value=DEFAULT_CORPUS, label="Built-in corpus", allow_custom_value=True)
            tokenizer = gr.Radio(list(TOKENIZERS), value="seed", label="Tokenizer (music)",
                                 info="seed: the reference (pitches only); timed: pitches with durations and rests; "
                                      "events: every voice's notes with their lengths, bars and beats, whole pieces")
            with gr.Row():
                min_count = gr.Number(100, precision=0, label="min-count", info="rarer tokens are dropped", min_width=120)
                window = gr.Number(40, precision=0, label="Window", min_width=120)
            button = gr.Button("Explore", variant="primary")
            with gr.Accordion("Your own corpus, and the reference's filter", open=False):
                uploads = gr.File(file_count="multiple", file_types=UPLOAD_TYPES, type="filepath",
                                  label="Upload: score files (MIDI, MusicXML, abc, kern), a .zip, or lyrics .csv/.txt (used instead of the list)")
                text_column = gr.Textbox(label="Lyrics CSV text column", placeholder="Lyrics", max_lines=1, visible=False)
                filter_mode = gr.Radio(list(FILTERS), value="exact", label="Rare-token filter", info=filter_info())
        with gr.Column(scale=2, min_width=320):
            summary = gr.Markdown(elem_classes=["seqgen-status"])
            first = gr.Textbox(label="First 50 tokens", lines=3, buttons=["copy"])
            charset = gr.Markdown(visible=False)
            skipped = gr.Dataframe(headers=["file", "reason"], label="Skipped files", interactive=False, wrap=True, max_height=240)
            report = gr.JSON(label="Report (JSON)", open=False)
    with gr.Row(equal_height=False):  # two figures side by side on a laptop, one under the other on a phone
        top = gr.Plot(label="Top tokens", min_width=480)
        with gr.Column(min_width=480):
            ranks = gr.Plot(label="Token counts by rank")
            gr.Markdown(RANK_NOTE)
    with gr.Row(equal_height=False):
        counts = gr.Plot(label="Count plot", min_width=480)
        chars = gr.Plot(label="Character frequencies", visible=False, min_width=480)
    event_types = gr.Plot(label="Events by type: pitch, duration, position", visible=False)
    for trigger in (corpus.change, tokenizer.change):
        trigger(default_min_count, [corpus, tokenizer], min_count, api_visibility="private", queue=False)
    for trigger in (corpus.change, uploads.change):
        trigger(inputs_that_apply, [corpus, uploads], [text_column, tokenizer], api_visibility="private", queue=False)
    exploring = button.click(
        run_explore, [corpus, uploads, text_column, tokenizer, min_count, filter_mode, window],
        [report, summary, first, counts, ranks, top, chars, charset, skipped, event_types],
        api_name="explore", concurrency_id="explore", concurrency_limit=2,
    )
    on_failure(exploring, [report, first, counts, ranks, top, chars, skipped, event_types], summary)
    return {"corpus": corpus}

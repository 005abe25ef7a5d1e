"""Models tab: every bundle the studio can use, with its model card and training curves.

Reads only the bundles' JSON and Markdown files: listing models never loads
a network (nor TensorFlow).
"""

from __future__ import annotations

import gradio as gr

from seqgen.bundle import read_card, read_history
from seqgen.errors import SeqgenError
from studio.bundles import describe, list_bundles
from studio.common import on_failure, persistent_dir, studio_models_dir, user_errors
from studio.worker import fmt

INTRO = """\
Every model the studio can use: the shipped ones in `checkpoints/` and those trained here (`studio/…`). The model card
says what each was trained on; compare its validation cross-entropy with the **unigram baseline** (always guessing
token frequencies): only a model below the baseline has learned more than counts.
"""

COLUMNS = ["model", "source", "kind", "preset", "parameters", "corpus", "epochs", "best val loss", "best val accuracy", "status"]


def row(entry) -> list:
    if entry.config is None:
        return [entry.label, entry.source, "?", "?", None, "?", None, None, None, entry.error]
    config, best = entry.config, entry.config.get("best") or {}
    corpus = config.get("corpus") or {}
    return [entry.label, entry.source, config.get("kind"), config.get("preset"), config.get("parameters"),
            corpus.get("name") if isinstance(corpus, dict) else None, len(read_history(entry.folder)),
            round(best["val_loss"], 4) if isinstance(best.get("val_loss"), (int, float)) else None,
            round(best["val_accuracy"], 4) if isinstance(best.get("val_accuracy"), (int, float)) else None, "ok"]


@user_errors
def show_models(selected=None):
    """The table of bundles, and the card, curves and config of ``selected`` (default: the first)."""
    from seqgen.plots import training_curves

    entries = list_bundles()
    if not entries:
        return [], "No models yet: train a model in the Train tab first.", None, {}
    entry = next((item for item in entries if item.label == selected), None) if selected else entries[0]
    if entry is None:
        raise SeqgenError(f"Bundle {selected!r} not found; models available: {', '.join(item.label for item in entries)}.")
    table = [row(item) for item in entries]
    card = read_card(entry.folder) or f"# {entry.label}\n\n(no model card)"
    if entry.error:
        card += f"\n\n**This bundle cannot be used:** {entry.error}"
    history = read_history(entry.folder)
    figure = training_curves(history) if history else None
    if figure is not None:
        best = (entry.config or {}).get("best") or {}
        figure.update_layout(title=f"{entry.label}: best epoch {best.get('epoch')}, val loss {fmt(best.get('val_loss'))}", height=380)
    return table, card, figure, entry.config or {}


def storage_markdown() -> str:
    """Where models trained here are kept, and whether they survive a restart of the server."""
    folder, persistent = studio_models_dir(), persistent_dir()
    where = f"Models trained here are saved in `{folder}`"
    if persistent is not None and folder.is_relative_to(persistent):
        return where + " on persistent storage: they survive restarts."
    return (where + ". On a Hugging Face Space this folder is lost when the Space restarts, sleeps or is rebuilt; "
            "add persistent storage (`/data`) in the Space's settings to keep them.")


def choices(current=None) -> dict:
    entries = list_bundles()
    labels = [entry.label for entry in entries]
    return {"choices": [(describe(entry), entry.label) for entry in entries],
            "value": current if current in labels else (labels[0] if labels else None)}


def refresh(current=None):
    return gr.update(**choices(current))


def build() -> dict:
    gr.Markdown(INTRO)
    gr.Markdown(storage_markdown())
    with gr.Row():
        bundle = gr.Dropdown(**choices(), label="Model", allow_custom_value=True, scale=3, min_width=240)
        button = gr.Button("Show", scale=1, min_width=80)
    with gr.Row(equal_height=False):
        card = gr.Markdown(min_width=360)
        curves = gr.Plot(label="Training curves", min_width=480)
    table = gr.Dataframe(headers=COLUMNS, label="All models", interactive=False, wrap=True, max_height=400)
    config = gr.JSON(label="Settings", open=False)
    outputs = [table, card, curves, config]
    on_failure(button.click(show_models, bundle, outputs, api_name="models"), outputs)
    on_failure(bundle.select(show_models, bundle, outputs, api_visibility="private"), outputs)
    return {"bundle": bundle, "refresh": refresh, "show": show_models, "outputs": outputs}

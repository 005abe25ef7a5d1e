"""Study tab: the reference's loss × optimizer experiment, with the grid of curves filling in live.

``seqgen.train.run_study`` runs in a worker thread; each run's epochs arrive
as events and redraw the grid.  The study shares the training queue: one
training job (train or study) at a time on the server.
"""

from __future__ import annotations

import shutil
import time

import gradio as gr

from seqgen.errors import SeqgenError
from seqgen.music import TOKENIZERS
from seqgen.presets import KINDS, LOSSES, OPTIMIZERS, STUDY_LOSSES, STUDY_OPTIMIZERS, preset_choices
from seqgen.vocab import FILTERS
from studio.common import on_failure, request_dir, reserve_folder, safe_name, studio_studies_dir, user_errors
from studio.corpora import corpus_choices
from studio.worker import clock, fmt, progress_line, start_job
from studio.explore import UPLOAD_TYPES
from studio.train import check_kind, make_config

INTRO = """\
**Step 3 of 3.** The reference trained one lyrics model with each **loss × optimizer** pair and compared accuracy per
epoch; here every run shares the data, the splits and the initial weights. Expect Adam with cross-entropy to win: MSE and
MAE on softmax outputs learn slowly (weak gradients), and SGD and Adadelta at their default learning rates move slowly.
"""

UPDATE_EVERY_S = 2.0


def results_table(table):
    """The results rounded for reading, the best combination (highest best validation accuracy) highlighted."""
    if table.empty:
        return table, "No run finished."
    score = table["best_val_accuracy"].fillna(table["accuracy"]).fillna(-1.0)
    best = int(score.idxmax())
    row = table.loc[best]
    styled = table.style.format(precision=3).apply(  # three decimals: the table fits its column, or scrolls inside it
        lambda line: ["background-color: #fde68a; font-weight: bold" if line.name == best else "" for _ in line], axis=1)
    text = (f"**Best: {row['loss']} + {row['optimizer']}**: best validation accuracy {fmt(row['best_val_accuracy'])}, "
            f"final training accuracy {fmt(row['accuracy'])} after {row['epochs']} epochs (highlighted).")
    return styled, text


@user_errors
def run_study_ui(corpus="songs-poems", uploads=None, text_column=None, kind="lyrics", preset="seed", tokenizer="seed",
                 losses=STUDY_LOSSES, optimizers=STUDY_OPTIMIZERS, epochs=3, max_windows=2000, batch_size=None, window=40,
                 min_count=None, filter_mode="exact"):
    """Run every pair in a process of its own; stream the status, the grid of curves, then the table."""
    import pandas as pd

    from seqgen.plots import study_figure

    losses, optimizers = [item for item in losses or [] if item], [item for item in optimizers or [] if item]
    if not losses or not optimizers:
        raise SeqgenError("The study needs at least one loss and one optimizer: pick some above.")
    base = make_config(kind, preset, tokenizer, epochs, batch_size, None, None, None, max_windows, window, min_count, filter_mode)
    for loss in losses:  # unknown names fail before the corpus is read
        for optimizer in optimizers:
            make_config(kind, preset, tokenizer, epochs, batch_size, loss, optimizer, None, max_windows, window, min_count, filter_mode)
    check_kind(corpus, uploads, kind)
    folder = reserve_folder(studio_studies_dir(), safe_name(None, f"{corpus if not uploads else 'upload'}-{base.preset}"))
    job = start_job("study", corpus, uploads, tokenizer, text_column, kind, folder, base, losses=losses, optimizers=optimizers)
    histories: dict[str, list[dict]] = {f"{loss}-{optimizer}": [] for loss in losses for optimizer in optimizers}
    started, position, line = time.perf_counter(), 0.0, "Reading the corpus…"
    finished = False
    try:
        yield line, study_figure(histories), None, "", None, job
        shown = time.perf_counter()
        for event in job.events(tick_s=0.5):
            important = False
            if event is not None and "run" in event:
                runs, number = event["runs"], event["run_number"]
                if event["type"] == "epoch":
                    histories[event["run"]].append({key: value for key, value in event.items() if key != "type"})
                    important = True
                if event["type"] in ("batch", "epoch", "start"):
                    total = event.get("epochs") or base.epochs
                    done = event["epoch"] - 1 + event["batch"] / event["batches"] if event["type"] == "batch" else event.get("epoch", 0)
                    position = (number - 1 + min(done, total) / total) / runs
                    line = f"Run {number}/{runs}: **{event['run']}** · " + progress_line(position, time.perf_counter() - started)
            if important or time.perf_counter() - shown >= UPDATE_EVERY_S:
                shown = time.perf_counter()
                yield line, study_figure(histories) if important else gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        finished = True
    finally:
        if not finished:
            job.stop()
    if job.error is not None:
        raise SeqgenError(job.error)
    results = pd.DataFrame(job.result["table"])
    table, best = results_table(results)
    downloads = request_dir("study")
    files = [str(shutil.copy(folder / name, downloads / name)) for name in ("results.csv", "results.json", "curves.html") if (folder / name).exists()]
    verb = "Stopped" if job.result["stopped"] else "Done"
    status = f"{verb}: {len(results)} runs in {clock(time.perf_counter() - started)}."
    yield status, study_figure(histories), gr.update(value=table, visible=True), best, gr.update(value=files, visible=True), None


def build() -> None:
    from studio.train import stop_training

    gr.Markdown(INTRO)
    stop_state = gr.State(None)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=320):
            corpus = gr.Dropdown(corpus_choices("lyrics"), value="songs-poems", label="Corpus", allow_custom_value=True)
            with gr.Row():  # side by side: the buttons stay in the first screen of a laptop
                kind = gr.Radio(list(KINDS), value="lyrics", label="Kind", min_width=140)
                preset = gr.Dropdown(preset_choices("lyrics"), value="seed", label="Preset", allow_custom_value=True, min_width=160)
            loss_choice = gr.Dropdown(list(LOSSES), value=list(STUDY_LOSSES), multiselect=True, label="Losses",
                                      allow_custom_value=True)
            optimizer_choice = gr.Dropdown(list(OPTIMIZERS), value=list(STUDY_OPTIMIZERS), multiselect=True, label="Optimizers",
                                           allow_custom_value=True)
            with gr.Row():
                epochs = gr.Number(3, precision=0, label="Epochs per run", min_width=120)
                max_windows = gr.Number(2000, precision=0, label="Max windows", info="0 or blank: all", min_width=120)
            with gr.Accordion("More settings and your own corpus", open=False):
                tokenizer = gr.Radio(list(TOKENIZERS), value="seed", label="Tokenizer", visible=False)
                uploads = gr.File(file_count="multiple", file_types=UPLOAD_TYPES, type="filepath", label="Upload a corpus (used instead of the list)")
                text_column = gr.Textbox(label="Lyrics CSV text column", placeholder="Lyrics", max_lines=1)
                with gr.Row():
                    batch_size = gr.Number(0, precision=0, label="Batch size", info="0: the preset's default", min_width=100)
                    window = gr.Number(40, precision=0, label="Window", min_width=100)
                    min_count = gr.Number(0, precision=0, label="min-count", info="0: 100 music, 1 lyrics", min_width=100)
                filter_mode = gr.Radio(list(FILTERS), value="exact", label="Rare-token filter")
        with gr.Column(scale=2, min_width=320):
            # The buttons head the results: on a laptop they sit in the first screen, right above the status they change.
            with gr.Row():
                start = gr.Button("Run the study", variant="primary", min_width=120)
                stop = gr.Button("Stop", variant="stop", min_width=100)
            status = gr.Markdown("Each run gets the optimizer's Keras default learning rate, as in the reference.",
                                 elem_classes=["seqgen-status"])
            stop_note = gr.Markdown()
            figure = gr.Plot(label="Accuracy and loss per run (one scale per metric)")
            best = gr.Markdown()
            table = gr.Dataframe(label="Results (the table scrolls sideways to its last columns)", interactive=False,
                                 max_height=420, visible=False)  # shown with the first results
            downloads = gr.File(label="Results files", file_count="multiple", interactive=False, visible=False)

    def kind_changed(kind):
        return (gr.update(choices=corpus_choices(kind), value="songs-poems" if kind == "lyrics" else "mozart"),
                gr.update(choices=preset_choices(kind)), gr.update(visible=kind == "music"), gr.update(visible=kind == "lyrics"))

    kind.change(kind_changed, kind, [corpus, preset, tokenizer, text_column], api_visibility="private")
    studying = start.click(
        run_study_ui,
        [corpus, uploads, text_column, kind, preset, tokenizer, loss_choice, optimizer_choice, epochs, max_windows,
         batch_size, window, min_count, filter_mode],
        [status, figure, table, best, downloads, stop_state],
        api_name="study", concurrency_id="training", concurrency_limit=1, show_progress="minimal",
    )
    on_failure(studying, [figure, best], status, hide=(table, downloads))
    stop.click(stop_training, stop_state, stop_note, api_name="stop_study", concurrency_id="control", concurrency_limit=None)

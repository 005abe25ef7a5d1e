"""Train tab: train a model on a corpus with live curves, an ETA and a Stop button.

``seqgen.train.train`` runs in a process of its own (see :func:`studio.worker.start_job`);
the handler is a generator that turns the trainer's events into UI updates:
at every epoch, and every couple of seconds during a long epoch.  Bundles go
to their own new folder under the studio's models folder, so no run can
overwrite another user's model.
"""

from __future__ import annotations

import os
import shutil
import time
from types import SimpleNamespace
from dataclasses import dataclass, field

import gradio as gr

from seqgen.bundle import is_bundle
from seqgen.card import cut_short
from seqgen.errors import SeqgenError
from seqgen.music import TOKENIZERS
from seqgen.presets import KINDS, LOSSES, OPTIMIZERS, preset_choices
from seqgen.vocab import FILTER_HELP, FILTERS
from studio.common import on_failure, real, reserve_folder, safe_name, studio_models_dir, user_errors, whole
from studio.corpora import corpus_choices, corpus_kind
from studio.worker import clock, fmt, progress_line, start_job
from studio.explore import UPLOAD_TYPES

INTRO = """\
**Step 2 of 3.** Train a model on a corpus: the curves update live and **Stop** keeps the best epoch so far. The dotted
line is the **unigram baseline**, the loss of always guessing tokens by their frequency: a model has learned something
only once it drops below it. The reference `seed` preset reads each token as one number and often sits at the baseline
for a while; the `embed` preset usually drops below it within the first epoch.
"""

DEFAULTS = {"music": ("mozart", "embed"), "lyrics": ("songs-poems", "embed")}
PRESET_DEFAULT = "preset default"
MAX_MINUTES_ENV = "SEQGEN_MAX_TRAIN_MINUTES"  # a server-wide time cap per run (a public Space sets it)
UPDATE_EVERY_S = 2.0  # UI refresh during a long epoch
REPORT_EVERY_BATCHES = 5  # trainer events per this many batches


@dataclass
class Run:
    """What the handler knows about a run in progress, from the trainer's events."""

    name: str
    started: float = field(default_factory=time.perf_counter)
    training_started: float | None = None
    parse: tuple[int, int] | None = None
    start: dict | None = None
    history: list[dict] = field(default_factory=list)
    partial: dict | None = None  # the epoch in progress, for the curves
    position: float = 0.0  # epochs done, fractional
    best: dict | None = None

    def update(self, event: dict) -> bool:
        """Apply one event; True when the curves changed."""
        kind = event.get("type")
        if kind == "parse":
            self.parse = (event["done"], event["total"])
        elif kind == "start":
            self.start, self.training_started = event, time.perf_counter()
            self.position = event["first_epoch"] - 1
        elif kind == "batch":
            self.position = event["epoch"] - 1 + event["batch"] / event["batches"]
            self.partial = {"epoch": self.position, "loss": event.get("loss"), "accuracy": event.get("accuracy"),
                            "unigram_val_loss": self.start["unigram_val_loss"] if self.start else None}
            return True
        elif kind == "epoch":
            record = {key: value for key, value in event.items() if key not in ("type", "best", "epochs")}
            self.history.append(record)
            self.partial, self.position = None, event["epoch"]
            if event.get("best"):
                self.best = record
            return True
        return False

    def curves(self):
        from seqgen.plots import training_curves

        figure = training_curves(self.history + ([self.partial] if self.partial else []))
        figure.update_layout(title=f"{self.name}: training (solid) and validation (dashed)", height=380)
        return figure

    def status(self) -> str:
        if self.start is None:
            if self.parse:
                return f"Reading the corpus: {self.parse[0]}/{self.parse[1]} files · {clock(time.perf_counter() - self.started)}"
            return f"Reading the corpus… {clock(time.perf_counter() - self.started)}"
        first, total = self.start["first_epoch"] - 1, self.start["epochs"]
        fraction = (self.position - first) / max(1, total - first)
        epoch = min(int(self.position) + 1, total)
        line = [f"**{self.name}** · epoch {epoch}/{total}", progress_line(fraction, time.perf_counter() - self.training_started)]
        if self.best:
            line.append(f"best val loss {fmt(self.best.get('val_loss'))} (epoch {self.best['epoch']})")
        details = (f"{self.start['train_windows']:,} training / {self.start['validation_windows']:,} validation windows, "
                   f"vocabulary {self.start['vocab_size']}, {self.start['parameters']:,} parameters, "
                   f"unigram baseline {self.start['unigram_val_loss']:.4f}")
        return " · ".join(line) + "\n\n" + details


def check_kind(corpus, uploads, kind) -> None:
    if not uploads and corpus and corpus_kind(corpus) not in (None, kind):
        raise SeqgenError(f"Corpus {corpus!r} is {corpus_kind(corpus)}, but the model kind is {kind}: pick a {kind} corpus or switch the kind.")


def time_cap(minutes) -> float | None:
    """The run's time cap: the form's minutes (0 or blank: none), never above the server's ``SEQGEN_MAX_TRAIN_MINUTES``."""
    asked = real(minutes, "Time cap", optional=True) or None
    raw = os.environ.get(MAX_MINUTES_ENV, "").strip()
    try:
        server = float(raw) if raw else None
    except ValueError:
        raise SeqgenError(f"{MAX_MINUTES_ENV} must be a number of minutes, got {raw!r}.") from None
    if asked is not None and asked < 0:
        raise SeqgenError(f"The time cap must be a positive number of minutes (got {minutes}).")
    caps = [cap for cap in (asked, server) if cap]
    return min(caps) if caps else None


def make_config(kind, preset, tokenizer, epochs, batch_size, loss, optimizer, learning_rate, max_windows, window, min_count,
                filter_mode, max_minutes=None):
    """A validated TrainConfig from the form (blank fields: the preset's defaults)."""
    from seqgen.train import TrainConfig

    config = TrainConfig(
        kind=kind, preset=preset or "", tokenizer=tokenizer or "seed",
        window=whole(window, "Window", minimum=1), min_count=whole(min_count, "min-count", minimum=1, optional=True),
        filter=filter_mode, epochs=whole(epochs, "Epochs", minimum=1),
        batch_size=whole(batch_size, "Batch size", minimum=1, optional=True),
        loss=None if loss in (None, "", PRESET_DEFAULT) else loss,
        optimizer=None if optimizer in (None, "", PRESET_DEFAULT) else optimizer,
        learning_rate=None if learning_rate in (None, "", 0) else real(learning_rate, "Learning rate"),
        max_windows=whole(max_windows, "Max windows", optional=True), report_every=REPORT_EVERY_BATCHES,
        max_minutes=time_cap(max_minutes),
    )
    config.resolved()  # unknown names and bad numbers fail now, before the corpus is read
    return config


@user_errors
def run_training(corpus, uploads=None, text_column=None, kind="music", preset="embed", tokenizer="seed", epochs=5,
                 batch_size=None, loss=None, optimizer=None, learning_rate=None, max_windows=10000, model_name=None,
                 window=40, min_count=None, filter_mode="exact", max_minutes=None):
    """Train in a process of its own and stream status, curves and finally the result."""
    config = make_config(kind, preset, tokenizer, epochs, batch_size, loss, optimizer, learning_rate, max_windows,
                         window, min_count, filter_mode, max_minutes)
    check_kind(corpus, uploads, kind)
    folder = reserve_folder(studio_models_dir(), safe_name(model_name, f"{corpus if not uploads else 'upload'}-{config.preset}"))
    label = f"studio/{folder.name}"
    try:
        job = start_job("train", corpus, uploads, tokenizer, text_column, kind, folder, config)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    run = Run(label)
    finished = False
    try:
        yield run.status(), run.curves(), None, job
        shown, dirty = time.perf_counter(), False
        for event in job.events(tick_s=0.5):
            dirty = (run.update(event) if event else False) or dirty
            important = event is not None and event.get("type") in ("start", "epoch")
            if important or time.perf_counter() - shown >= UPDATE_EVERY_S:
                yield run.status(), run.curves() if dirty else gr.skip(), gr.skip(), gr.skip()
                shown, dirty = time.perf_counter(), False
        finished = True
    finally:
        if not finished:  # the client went away or cancelled: end the run at the next batch
            job.stop()
    if job.error is not None:
        if not is_bundle(folder):
            shutil.rmtree(folder, ignore_errors=True)
        raise SeqgenError(job.error)
    result = SimpleNamespace(**job.result)
    if not result.best:  # no epoch ended, so no weights were saved
        shutil.rmtree(folder, ignore_errors=True)
        yield "Stopped before the first epoch ended: nothing was saved.", run.curves(), {"bundle": None, "stopped": True}, None
        return
    best = result.best
    epochs = len(result.history)
    reason = result.history[-1].get("stop_reason")
    stopped = cut_short(result.history)  # "stopped during epoch 3 after 40 of 120 batches (…)"
    if stopped:
        verb = stopped[0].upper() + stopped[1:]
    elif result.stopped:
        verb = f"Stopped after epoch {epochs}" + (f" ({reason})" if reason else "")
    else:
        verb = f"Done: {epochs} epoch{'s' if epochs > 1 else ''}"
    status = (f"{verb} in {clock(result.seconds)}. Saved **{label}** (best epoch {best.get('epoch')}: validation loss "
              f"{fmt(best.get('val_loss'))}, accuracy {fmt(best.get('val_accuracy'))}; unigram baseline "
              f"{fmt(result.unigram_val_loss)}). It is now in the Melody/Lyrics and Models tabs.")
    summary = {"bundle": label, "stopped": result.stopped, "epochs": len(result.history), "best": best,
               "parameters": result.parameters, "seconds": round(result.seconds, 2), "unigram_val_loss": result.unigram_val_loss}
    yield status, run.curves(), summary, None


def stop_training(control) -> str:
    """Ask this session's run to stop after the current batch."""
    if control is None:
        return "No training is running in this session."
    control.stop()
    return "Stopping after the current batch; the best epoch so far is kept."


def kind_changed(kind):
    """Corpora and presets of the chosen kind; the tokenizer only for music, the CSV column only for lyrics."""
    corpus, preset = DEFAULTS[kind]
    return (gr.update(choices=corpus_choices(kind), value=corpus),
            gr.update(choices=preset_choices(kind), value=preset),
            gr.update(visible=kind == "music"), gr.update(visible=kind == "lyrics"))


def build() -> dict:
    gr.Markdown(INTRO)
    stop_state = gr.State(None)
    with gr.Row(equal_height=False):
        # The form's first fields and its buttons sit high, beside the status and curves: pressing Train
        # on a laptop shows the run starting without scrolling.
        with gr.Column(scale=1, min_width=320):
            kind = gr.Radio(list(KINDS), value="music", label="Kind")
            corpus = gr.Dropdown(corpus_choices("music"), value=DEFAULTS["music"][0], label="Corpus", allow_custom_value=True)
            preset = gr.Dropdown(preset_choices("music"), value=DEFAULTS["music"][1], label="Preset", allow_custom_value=True,
                                 info="seed = the reference; embed = recommended; debug = tiny, for a quick look")
            with gr.Row():
                epochs = gr.Number(5, precision=0, label="Epochs", min_width=100)
                model_name = gr.Textbox(label="Model name", placeholder="corpus-preset", max_lines=1, min_width=160,
                                        info="taken names get a -2, -3… suffix")
            with gr.Row():
                start = gr.Button("Train", variant="primary", min_width=100)
                stop = gr.Button("Stop", variant="stop", min_width=100)
            with gr.Accordion("Training settings", open=False):
                tokenizer = gr.Radio(list(TOKENIZERS), value="seed", label="Tokenizer")
                with gr.Row():
                    batch_size = gr.Number(0, precision=0, label="Batch size", info="0: the preset's default", min_width=120)
                    learning_rate = gr.Number(0, label="Learning rate", info="0: the preset's default", min_width=120)
                with gr.Row():
                    loss = gr.Dropdown([PRESET_DEFAULT, *LOSSES], value=PRESET_DEFAULT, label="Loss", allow_custom_value=True, min_width=140)
                    optimizer = gr.Dropdown([PRESET_DEFAULT, *OPTIMIZERS], value=PRESET_DEFAULT, label="Optimizer",
                                            allow_custom_value=True, min_width=140)
                with gr.Row():
                    max_windows = gr.Number(10000, precision=0, label="Max windows", info="0 or blank: all", min_width=120)
                    max_minutes = gr.Number(os.environ.get(MAX_MINUTES_ENV) or 0, label="Time cap (minutes)", min_width=120,
                                            info="stops the run and keeps its best epoch; 0: none" + (
                                                f" (this server allows at most {os.environ[MAX_MINUTES_ENV]})" if os.environ.get(MAX_MINUTES_ENV) else ""))
            with gr.Accordion("Corpus settings and your own corpus", open=False):
                uploads = gr.File(file_count="multiple", file_types=UPLOAD_TYPES, type="filepath", label="Upload a corpus (used instead of the list)")
                text_column = gr.Textbox(label="Lyrics CSV text column", placeholder="Lyrics", max_lines=1, visible=False)
                with gr.Row():
                    window = gr.Number(40, precision=0, label="Window", min_width=100)
                    min_count = gr.Number(0, precision=0, label="min-count", info="0: 100 for music, 1 for lyrics", min_width=120)
                filter_mode = gr.Radio(list(FILTERS), value="exact", label="Rare-token filter", info=FILTER_HELP["reference"])
        with gr.Column(scale=2, min_width=320):
            status = gr.Markdown("Pick a corpus and press **Train**. One training job runs at a time; others wait in the queue.",
                                 elem_classes=["seqgen-status"])
            stop_note = gr.Markdown()
            curves = gr.Plot(label="Loss and accuracy")
            result = gr.JSON(label="Result")
    kind.change(kind_changed, kind, [corpus, preset, tokenizer, text_column], api_visibility="private")
    event = start.click(
        run_training,
        [corpus, uploads, text_column, kind, preset, tokenizer, epochs, batch_size, loss, optimizer, learning_rate,
         max_windows, model_name, window, min_count, filter_mode, max_minutes],
        [status, curves, result, stop_state],
        api_name="train", concurrency_id="training", concurrency_limit=1, show_progress="minimal",
    )
    on_failure(event, [curves, result], status)
    stop.click(stop_training, stop_state, stop_note, api_name="stop_training", concurrency_id="control", concurrency_limit=None)
    return {"event": event}

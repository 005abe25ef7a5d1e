"""Keras callbacks of the trainer: progress events for the caller, and the best epoch kept as a bundle.

Set by :func:`seqgen.train.train`; the model and the fit loop know nothing of
listeners, stop controls or files (minGPT's trainer/callback split).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import keras

from seqgen import bundle

Listener = Callable[[dict], None]
RECORDED = ("loss", "accuracy", "last_ce", "val_loss", "val_accuracy", "val_last_ce")


def epoch_record(epoch: int, logs: dict, seconds: float, unigram: float) -> dict:
    """One history entry: the epoch's metrics, its wall time and the unigram baseline."""
    record = {"epoch": epoch, "seconds": round(seconds, 3), "unigram_val_loss": unigram}
    record.update({key: float(logs[key]) for key in RECORDED if key in logs})
    if "val_last_ce" in record:
        record["val_perplexity"] = float(math.exp(min(record["val_last_ce"], 50.0)))
    return record


class TrainingEvents(keras.callbacks.Callback):
    """Sends a ``batch`` event every ``report_every`` batches; ends training once ``stop`` is set or time is up."""

    def __init__(self, listener: Listener, stop, report_every: int, batches: int, max_minutes: float | None = None):
        super().__init__()
        self.listener, self.stop, self.report_every, self.batches = listener, stop, report_every, batches
        self.max_minutes = max_minutes
        self.deadline = None if max_minutes is None else time.perf_counter() + 60 * max_minutes
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        if (batch + 1) % self.report_every == 0 or batch + 1 == self.batches:
            self.listener({"type": "batch", "epoch": self.epoch, "batch": batch + 1, "batches": self.batches,
                           **{key: float(value) for key, value in (logs or {}).items()}})
        if self.deadline is not None and time.perf_counter() > self.deadline:
            self.stop.stop(reason=f"the time cap of {self.max_minutes:g} minutes")
        if self.stop.stopped:  # checked after the listener, which may be the one asking to stop
            self.model.stop_training = True


class BestCheckpoint(keras.callbacks.Callback):
    """After each epoch: record it, save the weights when the validation loss improved, write the bundle's files.

    Args:
        folder: the bundle folder.
        config: the bundle's config (see :func:`seqgen.bundle.make_config`); its ``best`` is updated in place.
        history: the epochs so far (resumed runs start with the saved ones); appended in place.
        saver: an uncompiled twin of the model, so that no optimizer state is saved.
        unigram: the unigram baseline's validation cross-entropy, recorded with each epoch.
        listener: receives the ``epoch`` event once the files are written.
        stop: the run's stop control (a stopped epoch is marked).
        total_epochs: the epoch count the run ends at.
        batches: training batches per epoch (a stopped epoch records how many it ran).
        patience: stop after this many epochs without improvement; None runs them all.
    """

    def __init__(self, folder: Path, config: dict, history: list[dict], saver, unigram: float, listener: Listener, stop,
                 total_epochs: int, batches: int, patience: int | None = None):
        super().__init__()
        self.folder, self.config, self.history, self.saver = Path(folder), config, history, saver
        self.unigram, self.listener, self.stop = unigram, listener, stop
        self.total_epochs, self.batches, self.patience = total_epochs, batches, patience
        self.started = time.perf_counter()
        self.batches_done = 0
        self.wait = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()
        self.batches_done = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches_done = batch + 1

    def on_epoch_end(self, epoch, logs=None):
        record = epoch_record(epoch + 1, logs or {}, time.perf_counter() - self.started, self.unigram)
        record["stopped"] = self.stop.stopped
        record.update(batches_done=self.batches_done, batches=self.batches)
        if self.stop.reason:
            record["stop_reason"] = self.stop.reason
        self.history.append(record)
        best = self.config["best"]
        score = record.get("val_loss", record.get("loss"))
        improved = score is not None and math.isfinite(score) and (not best or score < best.get("score", math.inf))
        if improved:
            best.clear()
            best.update(epoch=epoch + 1, score=score, val_loss=record.get("val_loss"), val_accuracy=record.get("val_accuracy"),
                        val_perplexity=record.get("val_perplexity"), val_cross_entropy=record.get("val_last_ce"),
                        unigram_val_loss=self.unigram, loss=record.get("loss"), accuracy=record.get("accuracy"))
            self.saver.set_weights(self.model.get_weights())
            bundle.save_weights(self.saver, self.folder)
            self.wait = 0
        else:
            self.wait += 1
        bundle.write_progress(self.folder, self.config, self.history)
        self.listener({"type": "epoch", **record, "best": improved, "epochs": self.total_epochs})
        if self.patience and self.wait >= self.patience:
            self.model.stop_training = True

"""Progress on the terminal for the CLI: tqdm bars on stderr, so stdout stays clean for ``--json``."""

from __future__ import annotations

import sys


def progress_bar(description: str):
    """A tqdm progress callback on stderr, and the bar itself (close it when done)."""
    from tqdm import tqdm

    bar = tqdm(total=0, desc=description, unit="file", file=sys.stderr, disable=None, leave=False)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return update, bar



class TrainingProgress:
    """A tqdm bar over all batches of a run (ETA included) fed by trainer events."""

    def __init__(self, label: str = ""):
        from tqdm import tqdm

        self.bar = tqdm(total=0, unit="batch", file=sys.stderr, disable=None, desc=label or "training")
        self.label = label

    def __call__(self, event: dict) -> None:
        if event["type"] == "start":
            self.bar.reset(total=(event["epochs"] - event["first_epoch"] + 1) * event["batches"])
            self.batches = event["batches"]
            self.done_epochs = 0
            print(f"{self.label}{event['train_windows']:,} training windows, {event['validation_windows']:,} validation, "
                  f"{event['parameters']:,} parameters, unigram baseline {event['unigram_val_loss']:.4f}", file=sys.stderr)
        elif event["type"] == "batch":
            self.bar.n = self.done_epochs * self.batches + event["batch"]
            self.bar.set_postfix(epoch=event["epoch"], loss=f"{event.get('loss', float('nan')):.4f}", refresh=False)
            self.bar.refresh()
        elif event["type"] == "epoch":
            self.done_epochs += 1
            self.bar.n = self.done_epochs * self.batches
            self.bar.refresh()
            val = f", val_loss {event['val_loss']:.4f}, val_accuracy {event['val_accuracy']:.4f}" if "val_loss" in event else ""
            self.bar.write(f"{self.label}epoch {event['epoch']}/{event['epochs']}: loss {event['loss']:.4f}, accuracy {event['accuracy']:.4f}{val}"
                           f"{' (best, saved)' if event['best'] else ''}", file=sys.stderr)
        elif event["type"] == "end":
            self.bar.close()

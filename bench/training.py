"""Training benchmarks on the built-in Mozart corpus.

    python bench/training.py [--budget-s 240] [--throughput-windows 4096] [--json]

1. Throughput (windows/s) of the `seed` preset through seqgen's trainer
   (tf.data, integer targets) against the reference way: `model.fit` on
   in-memory NumPy arrays with one-hot targets.  Same model, same windows,
   same batch size; the first (compiling) epoch is not timed.
2. Learning per CPU second: the `seed` preset and the improved `embed` preset
   each train for the same process CPU-time budget on identical splits; we
   report the best validation cross-entropy of the next token after a full
   window (comparable across presets) and the unigram baseline.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from seqgen.corpus import load_corpus  # noqa: E402
from seqgen.train import StopControl, TrainConfig, make_dataset, prepare_data, train  # noqa: E402


class EpochTimer:
    """Keras callback recording wall time per epoch."""

    def __init__(self):
        import keras

        outer = self

        class Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                outer.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                outer.seconds.append(time.perf_counter() - outer.start)

        self.seconds: list[float] = []
        self.callback = Callback()


def throughput(corpus, windows: int, epochs: int) -> dict:
    """Windows per second: seqgen's tf.data trainer vs model.fit on NumPy one-hot arrays."""
    import keras

    from seqgen.models import build_model, make_accuracy_metric, make_loss, make_optimizer

    config = TrainConfig(kind="music", preset="seed", max_windows=windows, validation_fraction=0.0, seed_fraction=0.01).resolved()
    data = prepare_data(corpus, config)
    starts = data.starts[data.splits.train]
    vocab_size = len(data.vocab)
    results = {}

    def fit(model, make_inputs, shuffle):
        timer = EpochTimer()
        model.fit(*make_inputs(), epochs=epochs, callbacks=[timer.callback], shuffle=shuffle, verbose=0)
        return len(starts) / statistics.median(timer.seconds[1:])

    # The reference: materialise every window and a one-hot target matrix, then fit.
    keras.utils.set_random_seed(0)
    reference = build_model("music", "seed", vocab_size, config.window)
    reference.compile(optimizer=make_optimizer("adamax", 0.01), loss="categorical_crossentropy", metrics=["accuracy"])
    inputs = np.stack([data.ids[s:s + config.window] for s in starts])[..., None] / float(vocab_size)
    targets = keras.utils.to_categorical(data.ids[starts + config.window], vocab_size)
    results["reference_windows_per_s"] = fit(reference, lambda: (inputs, targets, config.batch_size), shuffle=True)

    keras.utils.set_random_seed(0)
    model = build_model("music", "seed", vocab_size, config.window)
    model.compile(optimizer=make_optimizer("adamax", 0.01), loss=make_loss("categorical_crossentropy"), metrics=[make_accuracy_metric()])
    dataset = make_dataset(data.ids, starts, config.window, "scaled", "last", vocab_size, config.batch_size, shuffle=True)
    results["seed_windows_per_s"] = fit(model, lambda: (dataset,), shuffle=False)  # tf.data shuffles
    results["throughput_ratio"] = results["seed_windows_per_s"] / results["reference_windows_per_s"]
    results["throughput_windows"] = int(len(starts))
    return results


def learning_in_budget(corpus, preset: str, budget_s: float, out: Path) -> dict:
    """Train ``preset`` until ``budget_s`` process CPU seconds are spent; return its best validation numbers."""
    stop = StopControl()
    cpu_start = time.process_time()

    def listener(event):
        if time.process_time() - cpu_start > budget_s:
            stop.stop()

    config = TrainConfig(kind="music", preset=preset, epochs=1000, report_every=1)
    result = train(corpus, out / preset, config, listener=listener, stop=stop, overwrite=True)
    best = min(result.history, key=lambda record: record["val_last_ce"])
    return {
        "val_loss": best["val_last_ce"],
        "val_accuracy_last": best.get("val_accuracy"),
        "epochs": len(result.history),
        "cpu_s": time.process_time() - cpu_start,
        "unigram_val_loss": result.unigram_val_loss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="mozart")
    parser.add_argument("--budget-s", type=float, default=240.0, help="process CPU seconds per preset")
    parser.add_argument("--throughput-windows", type=int, default=4096)
    parser.add_argument("--throughput-epochs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    corpus = load_corpus(args.corpus, tokenizer="seed")
    result = {"corpus": args.corpus, **throughput(corpus, args.throughput_windows, args.throughput_epochs)}
    with tempfile.TemporaryDirectory(prefix="seqgen-bench-train-") as folder:
        seed = learning_in_budget(corpus, "seed", args.budget_s, Path(folder))
        improved = learning_in_budget(corpus, "embed", args.budget_s, Path(folder))
    result.update(
        budget_s=args.budget_s,
        seed_val_loss=seed["val_loss"],
        improved_val_loss=improved["val_loss"],
        unigram_val_loss=seed["unigram_val_loss"],
        seed_epochs=seed["epochs"],
        improved_epochs=improved["epochs"],
        seed_cpu_s=seed["cpu_s"],
        improved_cpu_s=improved["cpu_s"],
    )
    result = {key: round(value, 4) if isinstance(value, float) else value for key, value in result.items()}
    print(json.dumps(result) if args.json else "\n".join(f"{key}: {value}" for key, value in result.items()))


if __name__ == "__main__":
    main()

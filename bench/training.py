"""Training benchmarks on the built-in Mozart corpus.

    python bench/training.py [--budget-s 240] [--throughput-windows 4096] [--json]

1. Throughput (windows/s) of the `seed` preset (with ``--throughput-only``:
   of every melody preset) through seqgen's trainer (tf.data, integer
   targets) against the reference way: `model.fit` on in-memory NumPy arrays
   with one-hot targets.  Same model, same windows, same batch size; the two
   train epoch by epoch in turn, after one untimed (compiling) epoch each.
2. Learning per CPU second: the `seed` preset and the improved `embed` preset
   each train for the same process CPU-time budget on identical splits; we
   report the best validation cross-entropy of the next token after a full
   window (comparable across presets) and the unigram baseline.
3. With ``--tokenizers``: learning per CPU second of `timed` against `events`
   tokens (the `embed` preset, the same budget each) on the Bach chorales and
   on a user-style piano folder (bench/reading.py's 21 MIDI files).  Token
   losses of two tokenizers do not compare, so each model is judged at the end
   on the musicality of its generations (``seqgen evaluate``'s table: each
   measure beside corpus windows and a unigram sampler) and their mean distance
   to the corpus (0: like its windows, 1: as far as the unigram sampler).
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/reading.py's piano folder

import numpy as np  # noqa: E402

from seqgen.corpus import load_corpus  # noqa: E402
from seqgen.train import StopControl, TrainConfig, make_dataset, prepare_data, train  # noqa: E402


def timed_epoch(model, *args, **kwargs) -> tuple[float, float]:
    """Wall and process-CPU seconds of one ``model.fit`` epoch (the compiled train function is reused)."""
    started, cpu = time.perf_counter(), time.process_time()
    model.fit(*args, epochs=1, verbose=0, **kwargs)
    return time.perf_counter() - started, time.process_time() - cpu


def throughput(corpus, windows: int, epochs: int, preset: str = "seed") -> dict:
    """Windows per second of one preset: seqgen's tf.data trainer against ``model.fit`` on NumPy one-hot arrays.

    Same model, windows and batch size.  The two train epoch by epoch in turn,
    in alternating order, after one untimed (compiling) epoch each.  The ratio
    is of windows per second of process CPU time (every thread's): this
    machine's CPU is throttled in bursts, so an epoch's wall time is either
    about 13 or about 20.5 s whatever trains, and wall-time medians measured
    which run was throttled more (a ratio of 0.62 on 2026-12-07, 0.85 to 1.18
    on 2026-12-08; see RESULTS.md).  Wall-time rates are reported beside it.
    """
    import keras

    from seqgen.models import build_model, make_accuracy_metric, make_loss, make_optimizer
    from seqgen.presets import get_preset

    spec = get_preset("music", preset)
    config = TrainConfig(kind="music", preset=preset, max_windows=windows, validation_fraction=0.0, seed_fraction=0.01).resolved()
    data = prepare_data(corpus, config)
    starts = data.starts[data.splits.train]
    vocab_size, window = len(data.vocab), config.window

    # The reference: materialise every window and one-hot targets, then fit.
    inputs = np.stack([data.ids[s:s + window] for s in starts])
    if spec.input_mode == "scaled":
        inputs = inputs[..., None] / float(vocab_size)
    targets = np.stack([data.ids[s + 1:s + window + 1] for s in starts]) if spec.target_mode == "sequence" else data.ids[starts + window]
    models = {}
    for name in ("reference", "seqgen"):
        keras.utils.set_random_seed(0)
        models[name] = build_model("music", preset, vocab_size, window)
    models["reference"].compile(optimizer=make_optimizer(config.optimizer, config.learning_rate), loss="categorical_crossentropy",
                                metrics=["accuracy"])
    models["seqgen"].compile(optimizer=make_optimizer(config.optimizer, config.learning_rate),
                             loss=make_loss("categorical_crossentropy"), metrics=[make_accuracy_metric()])
    dataset = make_dataset(data.ids, starts, window, spec.input_mode, spec.target_mode, vocab_size, config.batch_size, shuffle=True)
    runs = {"reference": lambda: timed_epoch(models["reference"], inputs, keras.utils.to_categorical(targets, vocab_size),
                                             batch_size=config.batch_size, shuffle=True),
            "seqgen": lambda: timed_epoch(models["seqgen"], dataset)}  # tf.data shuffles
    for run in runs.values():
        run()  # compiles
    wall, cpu = {name: [] for name in runs}, {name: [] for name in runs}
    for epoch in range(epochs):
        for name in (("reference", "seqgen") if epoch % 2 == 0 else ("seqgen", "reference")):
            seconds, cpu_seconds = runs[name]()
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)
    rate = {name: len(starts) / statistics.median(cpu[name]) for name in runs}
    wall_rate = {name: len(starts) / statistics.median(wall[name]) for name in runs}
    return {f"{preset}_reference_windows_per_cpu_s": rate["reference"], f"{preset}_seqgen_windows_per_cpu_s": rate["seqgen"],
            f"{preset}_throughput_ratio": rate["seqgen"] / rate["reference"],
            f"{preset}_wall_ratio": wall_rate["seqgen"] / wall_rate["reference"], f"{preset}_throughput_windows": int(len(starts)),
            f"{preset}_epoch_wall_s": {name: [round(value, 2) for value in values] for name, values in wall.items()},
            f"{preset}_epoch_cpu_s": {name: [round(value, 2) for value in values] for name, values in cpu.items()}}


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


def tokenizer_learning(budget_s: float, generations: int, out: Path) -> dict:
    """``timed`` against ``events`` on bach and on the piano folder, each for ``budget_s`` CPU seconds; musicality at the end."""
    from reading import build_folder

    from seqgen.bundle import load_bundle
    from seqgen.evaluate import corpus_distance, evaluate_bundle

    piano = out / "piano"
    piano.mkdir(parents=True, exist_ok=True)
    build_folder(piano)
    results = {}
    for name, source in (("bach", "bach"), ("piano", str(piano))):
        for tokenizer in ("timed", "events"):
            corpus = load_corpus(source, tokenizer=tokenizer)
            stop, cpu_start = StopControl(), time.process_time()

            def listener(event, cpu_start=cpu_start, stop=stop):
                if time.process_time() - cpu_start > budget_s:
                    stop.stop()

            # min-count 1: a timed vocabulary of a piano folder is thousands of rare chord tokens; keep them all.
            config = TrainConfig(kind="music", preset="embed", tokenizer=tokenizer, min_count=1, epochs=1000, report_every=1,
                                 stride=8)  # the same for both: every token a target five times an epoch
            folder = out / f"{name}-{tokenizer}"
            result = train(corpus, folder, config, listener=listener, stop=stop, overwrite=True)
            table = evaluate_bundle(load_bundle(folder), generations=generations, rng_seed=0)["musicality"]
            defined = {name: row for name, row in table.items() if None not in (row["generated"], row["corpus"], row["unigram"])}
            results[f"{name}_{tokenizer}"] = {
                "tokens": len(corpus.tokens), "epochs": len(result.history), "cpu_s": time.process_time() - cpu_start,
                "musicality": {measure: {key: None if value is None else round(value, 3) for key, value in row.items()}
                               for measure, row in table.items()},
                # 0: like the corpus windows, 1: as far from them as the unigram sampler (seqgen.evaluate.corpus_distance)
                "distance_to_corpus": round(corpus_distance(defined), 3) if defined else None,
            }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="mozart")
    parser.add_argument("--budget-s", type=float, default=240.0, help="process CPU seconds per preset")
    parser.add_argument("--throughput-windows", type=int, default=4096)
    parser.add_argument("--throughput-epochs", type=int, default=6, help="timed epochs of each, in turn")
    parser.add_argument("--throughput-only", action="store_true", help="only part 1, for every preset")
    parser.add_argument("--tokenizers", action="store_true", help="only part 3: timed against events (see the docstring)")
    parser.add_argument("--generations", type=int, default=20, help="part 3: generations measured per model")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.tokenizers:
        with tempfile.TemporaryDirectory(prefix="seqgen-bench-tokenizers-") as folder:
            result = {"budget_s": args.budget_s, **tokenizer_learning(args.budget_s, args.generations, Path(folder))}
        print(json.dumps(result) if args.json else json.dumps(result, indent=1))
        return
    corpus = load_corpus(args.corpus, tokenizer="seed")
    result = {"corpus": args.corpus}
    for preset in ("seed", "seed-dropout", "embed") if args.throughput_only else ("seed",):
        result.update(throughput(corpus, args.throughput_windows, args.throughput_epochs, preset))
    if args.throughput_only:
        print(json.dumps(result) if args.json else json.dumps(result, indent=1))
        return
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

"""Training: corpus → vocabulary → windows → tf.data → ``model.fit`` → bundle.

:func:`train` reads as its pipeline: resolve the settings (a new run, or
the bundle being resumed) → prepare the data → fit.  The trainer knows
nothing of any UI.  The caller passes a ``listener`` that receives plain dict
events (``start``, ``batch`` every ``report_every`` batches, ``epoch``,
``end``) and a :class:`StopControl` whose ``stop()`` ends training at the
next batch.  The callbacks in :mod:`seqgen.callbacks` send the events and
keep the best epoch by validation loss: :mod:`seqgen.bundle` writes it
atomically as soon as it is reached, so a stop, a crash or ``kill -9``
leaves the best complete checkpoint so far.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from seqgen import bundle
from seqgen.corpus import Corpus, default_min_count
from seqgen.errors import SeqgenError
from seqgen.files import write_json
from seqgen.presets import KERAS_LEARNING_RATES, LOSSES, OPTIMIZERS, STUDY_LOSSES, STUDY_OPTIMIZERS, check_kind, get_preset
from seqgen.vocab import FILTERS, Vocab, apply_filter
from seqgen.windows import SPLITS, Splits, gather_windows, make_splits, window_starts

STRATEGIES = ("auto", "mirrored", "multi-worker")
SEED_WINDOWS_KEPT = 200  # seed-split windows stored in the bundle to start generation

Listener = Callable[[dict], None]


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved in the bundle's config."""

    kind: str = "music"  # "music" or "lyrics": picks the preset family
    preset: str = "seed"  # a name from seqgen.presets.PRESETS
    tokenizer: str = "seed"  # music tokenizer (seed, timed, events); lyrics are always characters
    window: int = 40  # tokens of context per example, as in the reference
    min_count: int | None = None  # rare-token threshold; None = seqgen.corpus.default_min_count
    filter: str = "exact"  # "exact" or the reference's quirky "reference" loop
    epochs: int = 10  # epochs to run now (added on top when resuming)
    batch_size: int | None = None  # None = the preset's default
    loss: str | None = None  # None = the preset's default
    optimizer: str | None = None  # None = the preset's default
    learning_rate: float | None = None  # None = the preset's default
    max_windows: int | None = None  # random subset of windows, for quick runs
    stride: int = 1  # tokens between window starts (1: every window, the reference)
    validation_fraction: float = 0.1  # of the non-seed windows, for model selection
    seed_fraction: float = 0.2  # the reference's train_test_split(test_size=0.2)
    split: str | None = None  # "random" (the reference's, overlapping) or held-out "blocks"; None = the preset's
    seed: int = 42  # one seed for splits, shuffling and initial weights
    early_stopping: int | None = None  # patience in epochs; None = run all epochs
    max_minutes: float | None = None  # time cap: stop at the first batch past it, keeping the best epoch
    strategy: str = "auto"  # tf.distribute strategy
    report_every: int = 20  # batches between "batch" events

    def resolved(self) -> "TrainConfig":
        """A copy with preset defaults filled in, validated."""
        check_kind(self.kind)
        preset = get_preset(self.kind, self.preset)
        config = replace(
            self,
            batch_size=self.batch_size if self.batch_size is not None else preset.batch_size,
            loss=self.loss or preset.loss,
            optimizer=self.optimizer or preset.optimizer,
            learning_rate=self.learning_rate if self.learning_rate is not None else preset.learning_rate,
            min_count=self.min_count if self.min_count is not None else default_min_count(self.kind, self.tokenizer),
            split=self.split or preset.split,
        )
        if config.loss not in LOSSES:
            raise SeqgenError(f"Unknown loss {config.loss!r}; valid losses: {', '.join(LOSSES)}.")
        if config.optimizer not in OPTIMIZERS:
            raise SeqgenError(f"Unknown optimizer {config.optimizer!r}; valid optimizers: {', '.join(OPTIMIZERS)}.")
        if config.filter not in FILTERS:
            raise SeqgenError(f"Unknown filter {config.filter!r}; choose one of: {', '.join(FILTERS)}.")
        if config.split not in SPLITS:
            raise SeqgenError(f"Unknown split {config.split!r}; choose one of: {', '.join(SPLITS)}.")
        if config.strategy not in STRATEGIES:
            raise SeqgenError(f"Unknown strategy {config.strategy!r}; choose one of: {', '.join(STRATEGIES)}.")
        if not isinstance(config.epochs, int) or config.epochs < 1:
            raise SeqgenError(f"Epochs must be a positive integer (got {config.epochs}).")
        if config.batch_size < 1:
            raise SeqgenError(f"Batch size must be at least 1 (got {config.batch_size}).")
        if not (math.isfinite(config.learning_rate) and config.learning_rate > 0):
            raise SeqgenError(f"Learning rate must be a positive number (got {config.learning_rate}).")
        if config.window < 1:
            raise SeqgenError(f"The window must be at least 1 token (got {config.window}).")
        if not isinstance(config.stride, int) or config.stride < 1:
            raise SeqgenError(f"The stride must be a positive whole number of tokens (got {config.stride}).")
        if config.max_windows is not None and config.max_windows < 10:
            raise SeqgenError(f"max-windows must be at least 10 (got {config.max_windows}).")
        if config.max_minutes is not None and not (math.isfinite(config.max_minutes) and config.max_minutes > 0):
            raise SeqgenError(f"The time cap must be a positive number of minutes (got {config.max_minutes}).")
        if not isinstance(config.report_every, int) or config.report_every < 1:
            raise SeqgenError(f"report_every must be a positive number of batches (got {config.report_every}).")
        return config


class StopControl:
    """A thread-safe flag: ``stop()`` from any thread ends training at the next batch."""

    def __init__(self):
        self._event = threading.Event()
        self.reason: str | None = None  # why, when it was not the user (the time cap)

    def stop(self, reason: str | None = None) -> None:
        if not self._event.is_set():
            self.reason = reason
        self._event.set()

    @property
    def stopped(self) -> bool:
        return self._event.is_set()


@dataclass
class PreparedData:
    """An encoded corpus, its vocabulary and its window splits."""

    vocab: Vocab
    ids: np.ndarray  # (num_tokens,) int32
    starts: np.ndarray  # window start positions in use, (num_windows,)
    splits: Splits  # indices into ``starts``
    corpus: dict  # description saved in the bundle


def prepare_data(corpus: Corpus, config: TrainConfig, vocab: Vocab | None = None) -> PreparedData:
    """Filter, encode and split a corpus for training.

    Args:
        corpus: the tokenized corpus.
        config: a resolved config (filter, window, splits, max_windows, seed).
        vocab: reuse this vocabulary (when resuming); every kept token must be in it.
    """
    kept, _ = apply_filter(corpus.tokens, config.min_count, config.filter)
    if not kept:
        most, most_count = Counter(corpus.tokens).most_common(1)[0]
        raise SeqgenError(f"{{--min-count}} {config.min_count} removed every token of corpus {corpus.name!r}: its most frequent "
                          f"token {most!r} occurs only {most_count} times; lower {{--min-count}} to {most_count} or less.")
    fresh = Vocab.from_tokens(kept)
    if vocab is not None and fresh.tokens != vocab.tokens:
        added = sorted(set(fresh.tokens) - set(vocab.tokens))[:5]
        missing = sorted(set(vocab.tokens) - set(fresh.tokens))[:5]
        raise SeqgenError(
            f"Cannot resume: the corpus gives a different vocabulary ({len(fresh)} tokens) than the bundle ({len(vocab)}); "
            f"new: {added}, missing: {missing}. Use the same corpus, tokenizer and min-count."
        )
    vocab = vocab or fresh
    if len(vocab) < 2:
        raise SeqgenError(f"Corpus {corpus.name!r} has only one distinct token after filtering; nothing to learn.")
    ids = np.asarray(vocab.encode(kept), dtype=np.int32)
    starts = window_starts(len(ids), config.window, config.max_windows, config.seed, config.stride)
    splits = make_splits(config.split, starts, len(ids), config.window, config.seed_fraction, config.validation_fraction, config.seed)
    description = {
        "name": corpus.name,
        "items": corpus.items,
        "tokens": int(len(ids)),
        "filter": config.filter,
        "min_count": config.min_count,
    }
    return PreparedData(vocab, ids, starts, splits, description)


def corpus_stats(kind: str, data: PreparedData) -> dict:
    """What quality reports compare generations with: the pitch-class histogram (music) or the training words (lyrics)."""
    from seqgen.quality import pitch_class_histogram, words

    tokens = data.vocab.decode(data.ids)
    if kind == "music":
        return {"pitch_class_histogram": pitch_class_histogram(tokens)}
    return {"words": sorted(set(words("".join(tokens))))}


def make_dataset(ids, starts, window, input_mode, target_mode, vocab_size, batch_size, shuffle=False, seed=0):
    """A ``tf.data`` pipeline of (inputs, integer targets) built batch by batch.

    Windows are gathered from the encoded corpus per batch, as
    :func:`seqgen.windows.gather_windows` does; targets stay integer ids (the
    loss one-hots a batch when it must), so nothing the size of the corpus
    times the vocabulary is ever materialised.
    """
    import tensorflow as tf

    corpus = tf.constant(ids, dtype=tf.int32)
    offsets = tf.range(window + 1, dtype=tf.int32)
    dataset = tf.data.Dataset.from_tensor_slices(np.asarray(starts, dtype=np.int32))
    if shuffle:
        dataset = dataset.shuffle(len(starts), seed=seed, reshuffle_each_iteration=True)

    def gather(batch_starts):
        sequences = tf.gather(corpus, batch_starts[:, None] + offsets[None, :])  # (batch, window + 1)
        inputs = sequences[:, :window]
        targets = sequences[:, window] if target_mode == "last" else sequences[:, 1:]
        if input_mode == "scaled":  # the reference's index / vocabulary size, one float feature
            inputs = tf.cast(inputs, tf.float32)[..., None] / float(vocab_size)
        return inputs, targets

    return dataset.batch(batch_size).map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def unigram_cross_entropy(train_targets: np.ndarray, eval_targets: np.ndarray, vocab_size: int) -> float:
    """Cross-entropy of always predicting the training frequencies (add-one smoothed)."""
    counts = np.bincount(train_targets, minlength=vocab_size).astype(float) + 1.0
    log_probs = np.log(counts / counts.sum())
    return float(-log_probs[eval_targets].mean())


def make_strategy(name: str):
    """The tf.distribute strategy for ``auto``, ``mirrored`` or ``multi-worker``.

    ``auto`` mirrors over several GPUs when present, else uses the default
    strategy.  ``mirrored`` uses every GPU, or every logical CPU device when
    there is no GPU.  ``multi-worker`` reads the cluster from ``TF_CONFIG``.
    """
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if name == "mirrored":
        devices = [device.name for device in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    return tf.distribute.MultiWorkerMirroredStrategy()


@dataclass
class TrainResult:
    """What a finished (or stopped) run left behind."""

    folder: Path
    history: list[dict]
    best: dict
    stopped: bool
    parameters: int
    seconds: float
    unigram_val_loss: float


def resolve_run(corpus: Corpus, out_dir: Path, config: TrainConfig, resume: bool, overwrite: bool):
    """The run's resolved settings and, when resuming, the bundle it continues.

    Resuming takes the bundle's architecture, corpus settings and splits (so
    validation losses stay comparable with the saved best and no earlier
    training window turns up in the validation set; bundles older than the
    ``split`` setting used the random split); loss, optimizer, learning rate
    and batch size may be changed.

    Returns:
        ``(config, previous)``: a resolved :class:`TrainConfig` and the loaded bundle or None.
    """
    previous = None
    if resume:
        previous = bundle.load_bundle(out_dir)
        saved = previous.config
        if saved["kind"] != corpus.kind:
            raise SeqgenError(f"Cannot resume: {out_dir} holds a {saved['kind']} model but the corpus is {corpus.kind}.")
        config = replace(
            config, kind=saved["kind"], preset=saved["preset"], tokenizer=saved["tokenizer"], window=saved["window"],
            min_count=saved["corpus"]["min_count"], filter=saved["corpus"]["filter"],
            **{key: saved["training"][key] if getattr(config, key) is None else getattr(config, key)
               for key in ("loss", "optimizer", "learning_rate", "batch_size")},
            **{key: saved["training"][key] for key in ("max_windows", "stride", "validation_fraction", "seed_fraction", "seed")
               if key in saved["training"]},
            split=saved["training"].get("split", "random"),
        )
    else:
        replace(config, kind=corpus.kind).resolved()  # bad names fail before anything else
        if bundle.is_bundle(out_dir) and not overwrite:
            try:
                old = bundle.read_config(out_dir)
                what = f"preset {old.get('preset')!r} on corpus {old.get('corpus', {}).get('name')!r}"
            except SeqgenError:
                what = "a model"
            raise SeqgenError(
                f"{out_dir} already holds a model ({what}). Choose another --out, --resume to continue it, or --overwrite to replace it."
            )
        if out_dir.exists() and not out_dir.is_dir():
            raise SeqgenError(f"{out_dir} exists and is not a folder.")
    config = replace(config, kind=corpus.kind).resolved()
    if corpus.kind == "music" and corpus.tokenizer != config.tokenizer:
        raise SeqgenError(f"The corpus was tokenized with {corpus.tokenizer!r} but the model uses {config.tokenizer!r}.")
    return config, previous


def compiled_model(config: TrainConfig, vocab_size: int, previous=None):
    """The preset's model, compiled for the run (with the resumed bundle's weights), inside the run's strategy."""
    import keras

    from seqgen.models import build_model, make_accuracy_metric, make_last_step_metric, make_loss, make_optimizer

    keras.utils.set_random_seed(config.seed)
    with make_strategy(config.strategy).scope():
        model = build_model(config.kind, config.preset, vocab_size, config.window)
        if previous is not None:
            model.set_weights(previous.model.get_weights())
        model.compile(optimizer=make_optimizer(config.optimizer, config.learning_rate),
                      loss=make_loss(config.loss, sparse_targets=True),
                      metrics=[make_accuracy_metric(), make_last_step_metric()])
    return model


def train(
    corpus: Corpus,
    out_dir: Path,
    config: TrainConfig,
    listener: Listener | None = None,
    stop: StopControl | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> TrainResult:
    """Train a model on ``corpus`` and keep its best epoch as a bundle in ``out_dir``.

    Args:
        corpus: a tokenized corpus (see :func:`seqgen.corpus.load_corpus`).
        out_dir: the bundle folder.
        config: the run's settings; preset defaults fill the blanks.
        listener: receives ``start``/``batch``/``epoch``/``end`` event dicts.
        stop: ``stop.stop()`` ends training at the next batch.
        resume: continue the bundle in ``out_dir`` (same corpus and vocabulary);
            ``config.epochs`` more epochs are run and appended to its history.
        overwrite: replace a bundle that already exists in ``out_dir``.
    """
    from seqgen.callbacks import BestCheckpoint, TrainingEvents
    from seqgen.models import build_model

    out_dir = Path(out_dir)
    listener = listener or (lambda event: None)
    stop = stop or StopControl()
    config, previous = resolve_run(corpus, out_dir, config, resume, overwrite)
    preset = get_preset(config.kind, config.preset)
    data = prepare_data(corpus, config, vocab=previous.vocab if previous else None)
    vocab_size = len(data.vocab)
    model = compiled_model(config, vocab_size, previous)
    parameters = int(model.count_params())

    train_starts, val_starts, seed_starts = (data.starts[split] for split in (data.splits.train, data.splits.validation, data.splits.seed))
    dataset_args = dict(ids=data.ids, window=config.window, input_mode=preset.input_mode, target_mode=preset.target_mode,
                        vocab_size=vocab_size, batch_size=config.batch_size)
    train_data = make_dataset(starts=train_starts, shuffle=True, seed=config.seed, **dataset_args)
    val_data = make_dataset(starts=val_starts, **dataset_args) if len(val_starts) else None
    unigram = unigram_cross_entropy(gather_windows(data.ids, train_starts, config.window)[1],
                                    gather_windows(data.ids, val_starts if len(val_starts) else train_starts, config.window)[1],
                                    vocab_size)

    history = list(previous.history) if previous else []
    first_epoch, total_epochs = len(history), len(history) + config.epochs
    batches = math.ceil(len(train_starts) / config.batch_size)
    windows = {"train_windows": int(len(train_starts)), "validation_windows": int(len(val_starts)), "seed_windows": int(len(seed_starts))}
    lowercase = corpus.kind == "lyrics" and not any(char.isupper() for char in data.vocab.tokens)
    bundle_config = bundle.make_config(out_dir.name, asdict(config), preset, vocab_size, parameters, data.corpus, lowercase,
                                       windows, dict(previous.config["best"]) if previous else {})
    if previous is None:
        seeds = [data.vocab.decode(row) for row in gather_windows(data.ids, seed_starts[:SEED_WINDOWS_KEPT], config.window)[0]]
        bundle.start_bundle(out_dir, data.vocab, seeds, data.ids, corpus_stats(corpus.kind, data))
    else:
        bundle.forget_quality(out_dir)
    # An uncompiled twin for saving: the bundle carries weights, not optimizer state.
    saver = build_model(config.kind, config.preset, vocab_size, config.window)
    callbacks = [
        TrainingEvents(listener, stop, config.report_every, batches, config.max_minutes),
        BestCheckpoint(out_dir, bundle_config, history, saver, unigram, listener, stop, total_epochs, batches, config.early_stopping),
    ]
    listener({"type": "start", "epochs": total_epochs, "first_epoch": first_epoch + 1, "batches": batches, **windows,
              "parameters": parameters, "vocab_size": vocab_size, "unigram_val_loss": unigram})
    started = time.perf_counter()
    model.fit(train_data, validation_data=val_data, epochs=total_epochs, initial_epoch=first_epoch,
              callbacks=callbacks, shuffle=False, verbose=0)  # tf.data shuffles
    seconds = time.perf_counter() - started
    best = dict(bundle_config["best"])
    listener({"type": "end", "stopped": stop.stopped, "reason": stop.reason, "best": best, "seconds": seconds, "folder": str(out_dir)})
    return TrainResult(out_dir, history, best, stop.stopped, parameters, seconds, unigram)


def run_study(
    corpus: Corpus,
    out_dir: Path,
    base: TrainConfig,
    losses: tuple[str, ...] = STUDY_LOSSES,
    optimizers: tuple[str, ...] = STUDY_OPTIMIZERS,
    listener: Listener | None = None,
    stop: StopControl | None = None,
):
    """The reference's loss × optimizer study: one run per pair, on identical data.

    Every run shares the corpus, splits, seed and initial weights (same
    ``base.seed``); only the loss and the optimizer change.  Each run's bundle
    and history go to ``out_dir/LOSS-OPTIMIZER``; the results table is
    written as ``results.json`` and ``results.csv``, and the curves as
    ``curves.html``.

    Returns:
        A pandas DataFrame, one row per run.
    """
    import pandas as pd

    from seqgen.plots import study_figure

    listener = listener or (lambda event: None)
    stop = stop or StopControl()
    out_dir = Path(out_dir)
    if not losses or not optimizers:
        raise SeqgenError("The study needs at least one loss and one optimizer.")
    runs = [(loss, optimizer) for loss in losses for optimizer in optimizers]
    for loss, optimizer in runs:  # fail on a bad name before any training
        replace(base, kind=corpus.kind, loss=loss, optimizer=optimizer, learning_rate=None).resolved()
    rows, histories = [], {}
    for number, (loss, optimizer) in enumerate(runs, start=1):
        if stop.stopped:
            break
        name = f"{loss}-{optimizer}"
        # Without a learning rate each optimizer starts from its Keras default, as in the reference.
        config = replace(base, loss=loss, optimizer=optimizer, learning_rate=base.learning_rate or KERAS_LEARNING_RATES[optimizer])

        def forward(event, name=name, number=number):
            listener({**event, "run": name, "run_number": number, "runs": len(runs)})

        result = train(corpus, out_dir / name, config, listener=forward, stop=stop, overwrite=True)
        histories[name] = result.history
        last = result.history[-1] if result.history else {}
        rows.append({
            "loss": loss, "optimizer": optimizer,
            "final_loss": last.get("loss"), "best_loss": min((h["loss"] for h in result.history), default=None),
            "accuracy": last.get("accuracy"), "val_accuracy": last.get("val_accuracy"),
            "best_val_accuracy": max((h.get("val_accuracy", float("nan")) for h in result.history), default=None),
            "val_cross_entropy": last.get("val_last_ce"), "wall_s": round(result.seconds, 2), "epochs": len(result.history),
        })
    table = pd.DataFrame(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "results.csv", index=False)
    write_json(out_dir / "results.json", table.to_dict(orient="records"))
    study_figure(histories).write_html(out_dir / "curves.html", include_plotlyjs="cdn")
    return table

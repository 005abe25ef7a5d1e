"""Training: corpus → vocabulary → windows → tf.data → ``model.fit`` → bundle.

The trainer knows nothing of any UI.  The caller passes a ``listener`` that
receives plain dict events (``start``, ``batch`` every ``report_every``
batches, ``epoch``, ``end``) and a :class:`StopControl` whose ``stop()`` ends
training at the next batch.  The best epoch by validation loss is written to
the bundle atomically as soon as it is reached, so a stop, a crash or
``kill -9`` leaves the best complete checkpoint so far.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from seqgen.cache import write_atomic
from seqgen.bundle import FORMAT, FORMAT_VERSION, is_bundle, load_bundle, model_card, read_json, save_weights, write_json
from seqgen.corpus import DEFAULT_MIN_COUNT, Corpus
from seqgen.errors import SeqgenError
from seqgen.vocab import FILTERS, Vocab, apply_filter
from seqgen.windows import Splits, count_windows, split_windows

STRATEGIES = ("auto", "mirrored", "multi-worker")
SEED_WINDOWS_KEPT = 200  # seed-split windows stored in the bundle to start generation

Listener = Callable[[dict], None]


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved in the bundle's config.json."""

    kind: str = "music"  # "music" or "lyrics": picks the preset family
    preset: str = "seed"  # a name from seqgen.models.PRESETS
    tokenizer: str = "seed"  # music tokenizer; lyrics are always characters
    window: int = 40  # tokens of context per example, as in the reference
    min_count: int | None = None  # rare-token threshold; None = 100 music, 1 lyrics
    filter: str = "exact"  # "exact" or the reference's quirky "reference" loop
    epochs: int = 10  # epochs to run now (added on top when resuming)
    batch_size: int | None = None  # None = the preset's default
    loss: str | None = None  # None = the preset's default
    optimizer: str | None = None  # None = the preset's default
    learning_rate: float | None = None  # None = the preset's default
    max_windows: int | None = None  # random subset of windows, for quick runs
    validation_fraction: float = 0.1  # of the non-seed windows, for model selection
    seed_fraction: float = 0.2  # the reference's train_test_split(test_size=0.2)
    seed: int = 42  # one seed for splits, shuffling and initial weights
    early_stopping: int | None = None  # patience in epochs; None = run all epochs
    strategy: str = "auto"  # tf.distribute strategy
    report_every: int = 20  # batches between "batch" events

    def resolved(self) -> "TrainConfig":
        """A copy with preset defaults filled in, validated."""
        from seqgen.models import LOSSES, OPTIMIZERS, get_preset

        if self.kind not in ("music", "lyrics"):
            raise SeqgenError(f"Unknown kind {self.kind!r}; choose music or lyrics.")
        preset = get_preset(self.kind, self.preset)
        config = replace(
            self,
            batch_size=self.batch_size if self.batch_size is not None else preset.batch_size,
            loss=self.loss or preset.loss,
            optimizer=self.optimizer or preset.optimizer,
            learning_rate=self.learning_rate if self.learning_rate is not None else preset.learning_rate,
            min_count=self.min_count if self.min_count is not None else DEFAULT_MIN_COUNT[self.kind],
        )
        if config.loss not in LOSSES:
            raise SeqgenError(f"Unknown loss {config.loss!r}; valid losses: {', '.join(LOSSES)}.")
        if config.optimizer not in OPTIMIZERS:
            raise SeqgenError(f"Unknown optimizer {config.optimizer!r}; valid optimizers: {', '.join(OPTIMIZERS)}.")
        if config.filter not in FILTERS:
            raise SeqgenError(f"Unknown filter {config.filter!r}; choose one of: {', '.join(FILTERS)}.")
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
        if config.max_windows is not None and config.max_windows < 10:
            raise SeqgenError(f"max-windows must be at least 10 (got {config.max_windows}).")
        if not isinstance(config.report_every, int) or config.report_every < 1:
            raise SeqgenError(f"report_every must be a positive number of batches (got {config.report_every}).")
        return config


class StopControl:
    """A thread-safe flag: ``stop()`` from any thread ends training at the next batch."""

    def __init__(self):
        self._event = threading.Event()

    def stop(self) -> None:
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
        raise SeqgenError(f"min-count {config.min_count} removed every token of corpus {corpus.name!r}; lower --min-count.")
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
    total = count_windows(len(ids), config.window)
    if total == 0:
        raise SeqgenError(
            f"The window ({config.window} tokens) is longer than the corpus ({len(ids)} tokens after filtering). "
            "Use a smaller window or a bigger corpus."
        )
    starts = np.arange(total)
    if config.max_windows is not None and config.max_windows < total:
        rng = np.random.default_rng(config.seed)
        starts = np.sort(rng.choice(total, size=config.max_windows, replace=False))
    splits = split_windows(len(starts), config.seed_fraction, config.validation_fraction, config.seed)
    description = {
        "name": corpus.name,
        "items": corpus.items,
        "tokens": int(len(ids)),
        "filter": config.filter,
        "min_count": config.min_count,
    }
    return PreparedData(vocab, ids, starts, splits, description)


def write_corpus_stats(out_dir: Path, kind: str, data: PreparedData) -> None:
    """What the quality report compares generations with, so it never needs the corpus.

    Both: the encoded stream (``corpus.npy``, for the longest copied n-gram and
    for comparing generations with corpus windows).  Music: the pitch-class
    histogram.  Lyrics: the training words.
    """
    import io

    from seqgen.quality import pitch_class_histogram, words

    tokens = data.vocab.decode(data.ids)
    buffer = io.BytesIO()
    np.save(buffer, data.ids.astype(np.int32), allow_pickle=False)
    write_atomic(out_dir / "corpus.npy", buffer.getvalue())
    if kind == "music":
        write_json(out_dir / "stats.json", {"pitch_class_histogram": pitch_class_histogram(tokens)})
    else:
        write_json(out_dir / "stats.json", {"words": sorted(set(words("".join(tokens))))})


def make_dataset(ids, starts, window, input_mode, target_mode, vocab_size, batch_size, shuffle=False, seed=0):
    """A ``tf.data`` pipeline of (inputs, integer targets) built batch by batch.

    Windows are gathered from the encoded corpus per batch; targets stay
    integer ids (the loss one-hots a batch when it must), so nothing the size
    of the corpus times the vocabulary is ever materialised.
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


def last_step_cross_entropy(y_true, y_pred):
    """Cross-entropy of the prediction after the full window, comparable across presets."""
    import keras

    if len(y_pred.shape) == 3:
        y_true, y_pred = y_true[:, -1], y_pred[:, -1, :]
    return keras.losses.sparse_categorical_crossentropy(y_true, y_pred)


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
    extra: dict = field(default_factory=dict)


def _epoch_record(epoch: int, logs: dict, seconds: float, unigram: float) -> dict:
    record = {"epoch": epoch, "seconds": round(seconds, 3), "unigram_val_loss": unigram}
    for key in ("loss", "accuracy", "last_ce", "val_loss", "val_accuracy", "val_last_ce"):
        if key in logs:
            record[key] = float(logs[key])
    if "val_last_ce" in record:
        record["val_perplexity"] = float(math.exp(min(record["val_last_ce"], 50.0)))
    return record


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
    import keras

    from seqgen.models import build_model, get_preset, make_accuracy_metric, make_loss, make_optimizer

    out_dir = Path(out_dir)
    listener = listener or (lambda event: None)
    stop = stop or StopControl()
    previous = None
    if not resume:
        replace(config, kind=corpus.kind).resolved()  # bad names fail before anything else
    if resume:
        previous = load_bundle(out_dir)
        saved = previous.config
        if saved["kind"] != corpus.kind:
            raise SeqgenError(f"Cannot resume: {out_dir} holds a {saved['kind']} model but the corpus is {corpus.kind}.")
        config = replace(
            config, kind=saved["kind"], preset=saved["preset"], tokenizer=saved["tokenizer"], window=saved["window"],
            min_count=saved["corpus"]["min_count"], filter=saved["corpus"]["filter"],
            **{key: saved["training"][key] if config.__dict__[key] is None else config.__dict__[key]
               for key in ("loss", "optimizer", "learning_rate", "batch_size")},
            # The same windows and splits as before, so validation losses stay comparable with the
            # saved best and no earlier training window turns up in the validation set.
            **{key: saved["training"][key] for key in ("max_windows", "validation_fraction", "seed_fraction", "seed")
               if key in saved["training"]},
        )
    elif is_bundle(out_dir) and not overwrite:
        old = read_json(out_dir / "config.json")
        what = f"preset {old.get('preset')!r} on corpus {old.get('corpus', {}).get('name')!r}" if isinstance(old, dict) else "a model"
        raise SeqgenError(
            f"{out_dir} already holds a model ({what}). Choose another --out, --resume to continue it, or --overwrite to replace it."
        )
    elif out_dir.exists() and not out_dir.is_dir():
        raise SeqgenError(f"{out_dir} exists and is not a folder.")
    config = replace(config, kind=corpus.kind).resolved()
    if corpus.kind == "music" and corpus.tokenizer != config.tokenizer:
        raise SeqgenError(f"The corpus was tokenized with {corpus.tokenizer!r} but the model uses {config.tokenizer!r}.")
    preset = get_preset(config.kind, config.preset)
    data = prepare_data(corpus, config, vocab=previous.vocab if previous else None)
    vocab_size = len(data.vocab)

    keras.utils.set_random_seed(config.seed)
    strategy = make_strategy(config.strategy)
    with strategy.scope():
        model = build_model(config.kind, config.preset, vocab_size, config.window)
        if previous is not None:
            model.set_weights(previous.model.get_weights())
        model.compile(
            optimizer=make_optimizer(config.optimizer, config.learning_rate),
            loss=make_loss(config.loss, sparse_targets=True),
            metrics=[make_accuracy_metric(), keras.metrics.MeanMetricWrapper(last_step_cross_entropy, name="last_ce")],
        )
    # An uncompiled twin for saving: the bundle carries weights, not optimizer state.
    saver = build_model(config.kind, config.preset, vocab_size, config.window)

    train_starts = data.starts[data.splits.train]
    val_starts = data.starts[data.splits.validation]
    seed_starts = data.starts[data.splits.seed]
    dataset_args = dict(ids=data.ids, window=config.window, input_mode=preset.input_mode, target_mode=preset.target_mode, vocab_size=vocab_size, batch_size=config.batch_size)
    train_data = make_dataset(starts=train_starts, shuffle=True, seed=config.seed, **dataset_args)
    val_data = make_dataset(starts=val_starts, **dataset_args) if len(val_starts) else None
    unigram = unigram_cross_entropy(data.ids[train_starts + config.window], data.ids[(val_starts if len(val_starts) else train_starts) + config.window], vocab_size)

    history = list(previous.history) if previous else []
    best = dict(previous.config["best"]) if previous else {}
    first_epoch = len(history)
    batches = math.ceil(len(train_starts) / config.batch_size)
    config_json = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": out_dir.name,
        "kind": config.kind,
        "preset": config.preset,
        "description": preset.description,
        "tokenizer": config.tokenizer if config.kind == "music" else "char",
        "window": config.window,
        "vocab_size": vocab_size,
        "input_mode": preset.input_mode,
        "target_mode": preset.target_mode,
        "lowercase": corpus.kind == "lyrics" and not any(char.isupper() for char in data.vocab.tokens),
        "parameters": int(model.count_params()),
        "corpus": data.corpus,
        "training": {
            **{key: value for key, value in asdict(config).items() if key not in ("kind", "preset", "tokenizer", "window", "min_count", "filter")},
            "train_windows": int(len(train_starts)),
            "validation_windows": int(len(val_starts)),
            "seed_windows": int(len(seed_starts)),
        },
        "best": best,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "quality.json").unlink(missing_ok=True)  # measured on other weights
    if previous is None:
        # Overwriting: retire the old bundle before writing the new vocabulary, so that a crash before
        # the first saved epoch cannot leave the old config and weights beside the new vocab.json.
        for stale in ("config.json", "model.keras"):
            (out_dir / stale).unlink(missing_ok=True)
        seeds = [data.vocab.decode(data.ids[start:start + config.window]) for start in seed_starts[:SEED_WINDOWS_KEPT]]
        write_json(out_dir / "seeds.json", seeds)
        write_corpus_stats(out_dir, corpus.kind, data)
        write_json(out_dir / "vocab.json", data.vocab.to_json())

    class Events(keras.callbacks.Callback):
        """Forwards progress to the listener, honours the stop control and keeps the best epoch."""

        def __init__(self):
            super().__init__()
            self.started = time.perf_counter()
            self.epoch_started = self.started
            self.wait = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.current_epoch = epoch + 1
            self.epoch_started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if (batch + 1) % config.report_every == 0 or batch + 1 == batches:
                listener({"type": "batch", "epoch": self.current_epoch, "batch": batch + 1, "batches": batches,
                          **{key: float(value) for key, value in (logs or {}).items()}})
            if stop.stopped:  # checked after the listener, which may be the one asking to stop
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            record = _epoch_record(epoch + 1, logs or {}, time.perf_counter() - self.epoch_started, unigram)
            record["stopped"] = stop.stopped
            history.append(record)
            score = record.get("val_loss", record.get("loss"))
            improved = score is not None and math.isfinite(score) and (not best or score < best.get("score", math.inf))
            if improved:
                best.clear()
                best.update(epoch=epoch + 1, score=score, val_loss=record.get("val_loss"), val_accuracy=record.get("val_accuracy"),
                            val_perplexity=record.get("val_perplexity"), val_cross_entropy=record.get("val_last_ce"), unigram_val_loss=unigram, loss=record.get("loss"), accuracy=record.get("accuracy"))
                saver.set_weights(self.model.get_weights())
                save_weights(saver, out_dir)
                self.wait = 0
            else:
                self.wait += 1
            write_json(out_dir / "config.json", config_json)
            write_json(out_dir / "history.json", history)
            write_atomic(out_dir / "README.md", model_card(config_json, history).encode("utf-8"))
            listener({"type": "epoch", **record, "best": improved, "epochs": first_epoch + config.epochs})
            if config.early_stopping and self.wait >= config.early_stopping:
                self.model.stop_training = True

    events = Events()
    listener({"type": "start", "epochs": first_epoch + config.epochs, "first_epoch": first_epoch + 1, "batches": batches,
              "train_windows": int(len(train_starts)), "validation_windows": int(len(val_starts)),
              "parameters": int(model.count_params()), "vocab_size": vocab_size, "unigram_val_loss": unigram})
    started = time.perf_counter()
    model.fit(train_data, validation_data=val_data, epochs=first_epoch + config.epochs, initial_epoch=first_epoch,
              callbacks=[events], shuffle=False, verbose=0)  # tf.data shuffles
    seconds = time.perf_counter() - started
    result = TrainResult(out_dir, history, dict(best), stop.stopped, int(model.count_params()), seconds, unigram)
    listener({"type": "end", "stopped": stop.stopped, "best": dict(best), "seconds": seconds, "folder": str(out_dir)})
    return result


def run_study(
    corpus: Corpus,
    out_dir: Path,
    base: TrainConfig,
    losses: tuple[str, ...] = ("categorical_crossentropy", "mse", "mae"),
    optimizers: tuple[str, ...] = ("adam", "sgd", "adadelta"),
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
        # learning_rate=None: each optimizer starts from its Keras default, as in the reference.
        config = replace(base, loss=loss, optimizer=optimizer, learning_rate=base.learning_rate or default_learning_rate(optimizer))

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


def default_learning_rate(optimizer: str) -> float:
    """Keras' default learning rate for each optimizer (Adadelta's is 0.001 in Keras 3)."""
    return {"adam": 0.001, "sgd": 0.01, "adadelta": 0.001, "adamax": 0.001}[optimizer]

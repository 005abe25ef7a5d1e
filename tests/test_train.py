"""Tests for seqgen.train: tf.data windows, listener events, stop control, determinism,
resume, bad inputs, the unigram baseline, the loss × optimizer study and distribution.

Every run is tiny: the ``debug``/``debug-last`` presets on a synthetic melody of a
few hundred tokens, one to four epochs.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import itertools  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from seqgen.bundle import is_bundle, load_bundle, read_card  # noqa: E402
from seqgen.corpus import Corpus  # noqa: E402
from seqgen.errors import SeqgenError  # noqa: E402
from seqgen.train import (  # noqa: E402
    StopControl,
    TrainConfig,
    make_dataset,
    prepare_data,
    run_study,
    train,
    unigram_cross_entropy,
)

REPO_ROOT = Path(__file__).resolve().parents[1]

# A short tune with uneven token frequencies (E4, G4, F4, A4 twice per bar), so the
# unigram baseline is not uniform and a model that reads context can beat it.
MELODY = "C4 E4 G4 C5 G4 E4 D4 F4 A4 D5 A4 F4".split()
WINDOW = 16


def melody_corpus(length: int = 600, extra: tuple[str, ...] = (), name: str = "melody", kind: str = "music") -> Corpus:
    tokens = list(itertools.islice(itertools.cycle(MELODY), length)) + list(extra)
    return Corpus(name, kind, "seed" if kind == "music" else "char", 1, tokens)


def tiny_config(**overrides) -> TrainConfig:
    settings = dict(kind="music", preset="debug", window=WINDOW, min_count=1, max_windows=300, epochs=1, seed=42)
    settings.update(overrides)
    return TrainConfig(**settings)


# --- tf.data ---------------------------------------------------------------------------


@pytest.mark.parametrize("input_mode", ["ids", "scaled"])
@pytest.mark.parametrize("target_mode", ["last", "sequence"])
def test_make_dataset_gives_integer_targets_and_right_shapes(input_mode, target_mode):
    vocab_size, window = 7, 5
    ids = (np.arange(60) * 3 % vocab_size).astype(np.int32)
    starts = np.array([0, 3, 5, 10, 21, 40, 54])  # 54 + 5 = 59: the last window whose target exists
    dataset = make_dataset(ids, starts, window, input_mode, target_mode, vocab_size, batch_size=4)
    batches = list(dataset.as_numpy_iterator())
    assert [len(inputs) for inputs, _ in batches] == [4, 3]
    inputs = np.concatenate([batch[0] for batch in batches])
    targets = np.concatenate([batch[1] for batch in batches])

    expected_windows = np.stack([ids[start:start + window] for start in starts])
    if input_mode == "ids":
        assert inputs.shape == (len(starts), window)
        assert np.issubdtype(inputs.dtype, np.integer)
        np.testing.assert_array_equal(inputs, expected_windows)
    else:
        assert inputs.shape == (len(starts), window, 1)
        assert inputs.dtype == np.float32
        np.testing.assert_allclose(inputs[..., 0], expected_windows / vocab_size, rtol=1e-6)

    # Targets are integer ids, never one-hot.
    assert np.issubdtype(targets.dtype, np.integer)
    if target_mode == "last":
        assert targets.shape == (len(starts),)
        np.testing.assert_array_equal(targets, ids[starts + window])
    else:
        assert targets.shape == (len(starts), window)
        np.testing.assert_array_equal(targets, np.stack([ids[start + 1:start + window + 1] for start in starts]))


def test_make_dataset_shuffle_is_a_permutation_and_seeded():
    ids = np.arange(40, dtype=np.int32) % 5
    starts = np.arange(30)

    def first_column(seed):
        data = make_dataset(ids, starts, 4, "ids", "last", 5, batch_size=8, shuffle=True, seed=seed)
        return np.concatenate([inputs[:, 0] for inputs, _ in data.as_numpy_iterator()])

    # Window i starts with ids[i]; a shuffled epoch still holds every window once, in a seeded order.
    shuffled = first_column(3)
    assert sorted(shuffled) == sorted(ids[starts])
    np.testing.assert_array_equal(first_column(3), shuffled)
    assert not np.array_equal(first_column(4), shuffled)


# --- unigram baseline ------------------------------------------------------------------


def test_unigram_cross_entropy_matches_hand_computation():
    train_targets = np.array([0, 0, 1, 2])
    eval_targets = np.array([0, 2, 3])
    # add-one smoothing: counts 2+1, 1+1, 1+1, 0+1 = 3, 2, 2, 1 out of 8
    expected = -(math.log(3 / 8) + math.log(2 / 8) + math.log(1 / 8)) / 3
    assert unigram_cross_entropy(train_targets, eval_targets, 4) == pytest.approx(expected, rel=1e-12)


# One reference run shared by the event, baseline, determinism and resume tests: tracing a
# model costs seconds, later epochs fractions of a second.
REFERENCE = dict(epochs=3, report_every=3, optimizer="adamax", learning_rate=0.02, batch_size=12, seed=42)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "bundle"
    events = []
    result = train(melody_corpus(), out, tiny_config(**REFERENCE), listener=events.append)
    return {"out": out, "events": events, "result": result}


@pytest.fixture
def reference_copy(reference_run, tmp_path):
    """A private copy of the reference bundle, for tests that change it."""
    import shutil

    return Path(shutil.copytree(reference_run["out"], tmp_path / "bundle"))


def test_start_event_reports_unigram_baseline_and_model_beats_it(reference_run):
    corpus = melody_corpus()
    config = tiny_config(**REFERENCE)
    events, result = reference_run["events"], reference_run["result"]

    # The same baseline, computed independently from the run's splits.
    data = prepare_data(corpus, replace(config, kind="music").resolved())
    train_targets = data.ids[data.starts[data.splits.train] + WINDOW]
    val_targets = data.ids[data.starts[data.splits.validation] + WINDOW]
    counts = np.bincount(train_targets, minlength=len(data.vocab)) + 1.0
    expected = float(-np.log(counts / counts.sum())[val_targets].mean())

    start = events[0]
    assert start["type"] == "start"
    assert start["unigram_val_loss"] == pytest.approx(expected, rel=1e-9)
    assert result.unigram_val_loss == pytest.approx(expected, rel=1e-9)
    assert all(record["unigram_val_loss"] == pytest.approx(expected) for record in result.history)
    # On a tune that repeats every 12 notes, a few epochs of a tiny LSTM beat token counts.
    assert result.history[-1]["val_loss"] < expected
    assert result.history[-1]["val_last_ce"] < expected
    assert result.best["val_loss"] < result.best["unigram_val_loss"]


# --- events, stop control, determinism ------------------------------------------------------


def test_listener_events_arrive_in_order(reference_run):
    events, result = reference_run["events"], reference_run["result"]
    types = [event["type"] for event in events]
    assert types[0] == "start" and types[-1] == "end"
    assert types.count("start") == 1 and types.count("end") == 1 and types.count("epoch") == 3

    start = events[0]
    batches = start["batches"]
    assert start["epochs"] == 3 and start["first_epoch"] == 1
    assert start["train_windows"] + start["validation_windows"] < 300  # the seed split is held out
    assert batches == math.ceil(start["train_windows"] / 12)
    assert start["parameters"] == result.parameters and start["vocab_size"] == len(set(MELODY))

    for epoch in (1, 2, 3):
        epoch_index = next(i for i, event in enumerate(events) if event["type"] == "epoch" and event["epoch"] == epoch)
        batch_events = [event for event in events if event["type"] == "batch" and event["epoch"] == epoch]
        # every report_every batches, plus the last batch of the epoch; all before the epoch event
        assert [event["batch"] for event in batch_events] == sorted({*range(3, batches + 1, 3), batches})
        assert all(events.index(event) < epoch_index for event in batch_events)
        assert all(event["batches"] == batches and math.isfinite(event["loss"]) for event in batch_events)
        record = events[epoch_index]
        for key in ("loss", "accuracy", "val_loss", "val_accuracy", "val_perplexity", "unigram_val_loss", "seconds", "best"):
            assert key in record, key
        assert record["epochs"] == 3
        assert record["val_perplexity"] == pytest.approx(math.exp(record["val_last_ce"]))
    # epoch events come in epoch order, after the start and before the end
    assert [event["epoch"] for event in events if event["type"] == "epoch"] == [1, 2, 3]
    assert events[-1]["stopped"] is False
    assert events[-1]["folder"] == str(reference_run["out"])
    assert events[-1]["best"] == result.best
    assert result.stopped is False and len(result.history) == 3


def test_stop_on_first_batch_ends_training_in_epoch_one(tmp_path):
    stop = StopControl()
    events = []

    def listener(event):
        events.append(event)
        if event["type"] == "batch":
            stop.stop()

    out = tmp_path / "bundle"
    result = train(melody_corpus(), out, tiny_config(epochs=5, report_every=1), listener=listener, stop=stop)
    assert result.stopped is True
    assert len(result.history) == 1 and result.history[0]["stopped"] is True
    batches = events[0]["batches"]
    batch_events = [event for event in events if event["type"] == "batch"]
    assert {event["epoch"] for event in batch_events} == {1}
    assert len(batch_events) < batches  # the epoch was cut short
    assert events[-1]["type"] == "end" and events[-1]["stopped"] is True
    bundle = load_bundle(out)
    assert bundle.config["best"]["epoch"] == 1
    assert len(bundle.history) == 1
    # The record and the card say the epoch was cut short, and by whom.
    record = bundle.history[0]
    assert (record["batches_done"], record["batches"]) == (1, batches)
    card = read_card(out)
    assert f"| epochs | 1, stopped during epoch 1 after 1 of {batches} batches (stopped by the user) |" in card


def test_the_time_cap_stops_a_run_and_keeps_its_best_epoch(tmp_path):
    events = []
    out = tmp_path / "bundle"
    # 6 ms: the first batch (which traces the graph) already takes longer.
    result = train(melody_corpus(), out, tiny_config(epochs=50, max_minutes=0.0001), listener=events.append)
    assert result.stopped is True and len(result.history) == 1
    record = result.history[0]
    assert record["stop_reason"] == "the time cap of 0.0001 minutes"
    assert record["batches_done"] == 1 < record["batches"]
    assert events[-1]["reason"] == "the time cap of 0.0001 minutes"
    bundle = load_bundle(out)
    assert bundle.config["best"]["epoch"] == 1 and bundle.config["training"]["max_minutes"] == 0.0001
    assert f"stopped during epoch 1 after 1 of {record['batches']} batches (the time cap of 0.0001 minutes)" in read_card(out)


@pytest.mark.parametrize("minutes", [0, -1, math.nan])
def test_a_time_cap_must_be_positive(tmp_path, minutes):
    with pytest.raises(SeqgenError, match="The time cap must be a positive number of minutes"):
        train(melody_corpus(), tmp_path / "bundle", tiny_config(max_minutes=minutes))


def test_same_seed_same_history_other_seed_differs(reference_run, tmp_path):
    corpus = melody_corpus()

    def losses(history):
        return [(record["loss"], record["val_loss"]) for record in history]

    first = losses(reference_run["result"].history)
    same = train(corpus, tmp_path / "same", tiny_config(**REFERENCE))
    assert losses(same.history) == first
    other = train(corpus, tmp_path / "other", tiny_config(**{**REFERENCE, "seed": 43}))
    assert losses(other.history) != first


# --- resume ----------------------------------------------------------------------------


def test_resume_appends_epochs_keeps_records_and_hyper_parameters(reference_run, reference_copy):
    corpus = melody_corpus()
    out = reference_copy
    first = reference_run["result"]
    seeds_before = (out / "seeds.json").read_bytes()
    events = []
    # No loss, optimizer, learning rate or batch size given: the bundle's are kept; the windows and
    # splits are the bundle's too, whatever max_windows and seed say now.
    second = train(corpus, out, tiny_config(epochs=2, max_windows=None, seed=7), listener=events.append, resume=True)
    assert len(second.history) == 5
    assert second.history[:3] == first.history
    assert [record["epoch"] for record in second.history] == [1, 2, 3, 4, 5]
    assert events[0]["first_epoch"] == 4 and events[0]["epochs"] == 5
    assert events[0]["batches"] == math.ceil(events[0]["train_windows"] / 12)
    original_start = reference_run["events"][0]
    for key in ("train_windows", "validation_windows", "unigram_val_loss", "batches"):
        assert events[0][key] == original_start[key], key
    assert [event["epoch"] for event in events if event["type"] == "epoch"] == [4, 5]
    # Resumed training starts from the saved weights, not from scratch.
    assert second.history[3]["loss"] < first.history[0]["loss"]

    bundle = load_bundle(out)
    assert len(bundle.history) == 5 and bundle.history[:3] == first.history
    assert bundle.config["best"]["epoch"] in (1, 2, 3, 4, 5)
    training = bundle.config["training"]
    assert (training["batch_size"], training["learning_rate"], training["optimizer"]) == (12, 0.02, "adamax")
    assert (training["max_windows"], training["seed"]) == (300, 42)
    assert (out / "seeds.json").read_bytes() == seeds_before


def test_resume_with_another_vocabulary_is_refused(reference_copy):
    out = reference_copy
    history_before = (out / "history.json").read_bytes()
    other = melody_corpus(extra=("B7",) * 3)
    with pytest.raises(SeqgenError, match="vocabulary") as error:
        train(other, out, tiny_config(epochs=1), resume=True)
    assert "B7" in str(error.value) and "9 tokens" in str(error.value) and "(8)" in str(error.value)
    assert (out / "history.json").read_bytes() == history_before


def test_resume_without_a_bundle_is_refused(tmp_path):
    with pytest.raises(SeqgenError, match="not found"):
        train(melody_corpus(), tmp_path / "nothing", tiny_config(), resume=True)


def test_resume_with_another_kind_is_refused(reference_copy):
    with pytest.raises(SeqgenError, match="music model but the corpus is lyrics"):
        train(melody_corpus(kind="lyrics"), reference_copy, tiny_config(kind="lyrics"), resume=True)


# --- bad inputs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"preset": "huge"}, r"Unknown music preset 'huge'; valid presets: 'seed', 'seed-dropout', 'embed', 'debug', 'debug-last'"),
        ({"loss": "hinge"}, r"Unknown loss 'hinge'; valid losses: categorical_crossentropy, mse, mae"),
        ({"optimizer": "rmsprop"}, r"Unknown optimizer 'rmsprop'; valid optimizers: adam, sgd, adadelta, adamax"),
        ({"epochs": 0}, r"Epochs must be a positive integer \(got 0\)"),
        ({"epochs": -3}, r"Epochs must be a positive integer \(got -3\)"),
        ({"epochs": 1.5}, r"Epochs must be a positive integer"),
        ({"strategy": "tpu"}, r"Unknown strategy 'tpu'; choose one of: auto, mirrored, multi-worker"),
        ({"filter": "fuzzy"}, r"Unknown filter 'fuzzy'"),
        ({"learning_rate": 0.0}, r"Learning rate must be a positive number"),
        ({"learning_rate": float("nan")}, r"Learning rate must be a positive number"),
        ({"batch_size": 0}, r"Batch size must be at least 1 \(got 0\)"),
        ({"batch_size": -4}, r"Batch size must be at least 1"),
        ({"window": 0}, r"window must be at least 1"),
        ({"max_windows": 5}, r"max-windows must be at least 10"),
        ({"report_every": 0}, r"report_every must be a positive number"),
        ({"kind": "video"}, r"Unknown kind 'video'"),
    ],
)
def test_bad_config_is_refused_before_anything_is_written(tmp_path, overrides, message):
    out = tmp_path / "bundle"
    corpus = melody_corpus(kind="video") if overrides.get("kind") == "video" else melody_corpus()
    with pytest.raises(SeqgenError, match=message):
        train(corpus, out, tiny_config(**overrides))
    assert not out.exists()


def test_window_longer_than_corpus_is_refused(tmp_path):
    out = tmp_path / "bundle"
    with pytest.raises(SeqgenError, match=r"window \(700 tokens\) is not shorter than the corpus \(600 tokens"):
        train(melody_corpus(), out, tiny_config(window=700))
    assert not out.exists()


def test_too_few_windows_to_split_is_refused(tmp_path):
    with pytest.raises(SeqgenError, match="too few"):
        train(melody_corpus(length=WINDOW + 1), tmp_path / "bundle", tiny_config())


def test_corpus_empty_after_filtering_is_refused(tmp_path):
    out = tmp_path / "bundle"
    with pytest.raises(SeqgenError, match=r"min-count 100000 removed every token .*lower --min-count"):
        train(melody_corpus(), out, tiny_config(min_count=100_000))
    assert not out.exists()


def test_single_token_corpus_is_refused(tmp_path):
    corpus = Corpus("drone", "music", "seed", 1, ["C4"] * 300)
    with pytest.raises(SeqgenError, match="only one distinct token"):
        train(corpus, tmp_path / "bundle", tiny_config())


def test_tokenizer_mismatch_is_refused(tmp_path):
    with pytest.raises(SeqgenError, match="tokenized with 'seed' but the model uses 'timed'"):
        train(melody_corpus(), tmp_path / "bundle", tiny_config(tokenizer="timed"))


def test_output_path_that_is_a_file_is_refused(tmp_path):
    out = tmp_path / "bundle"
    out.write_text("not a folder")
    with pytest.raises(SeqgenError, match="is not a folder"):
        train(melody_corpus(), out, tiny_config())


def test_existing_bundle_is_left_untouched_without_overwrite(reference_copy):
    out = reference_copy
    before = {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in out.iterdir()}
    with pytest.raises(SeqgenError, match=r"already holds a model \(preset 'debug' on corpus 'melody'\).*--overwrite"):
        train(melody_corpus(extra=("B7",) * 3, name="other"), out, tiny_config(preset="debug-last", epochs=1))
    after = {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in out.iterdir()}
    assert after == before


def test_overwrite_crash_then_overwrite_again(reference_copy):
    """--overwrite replaces a bundle; a crash before the new run's first epoch must not
    leave the old config and weights beside the new vocabulary."""
    out = reference_copy
    other = melody_corpus(extra=("B7",) * 3, name="other")

    def crash(event):
        if event["type"] == "batch":
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):  # listener errors propagate
        train(other, out, tiny_config(epochs=1, report_every=1), listener=crash, overwrite=True)
    assert not is_bundle(out)
    with pytest.raises(SeqgenError, match="config.json is missing"):
        load_bundle(out)

    train(other, out, tiny_config(preset="debug-last", epochs=1), overwrite=True)
    bundle = load_bundle(out)
    assert bundle.config["preset"] == "debug-last" and bundle.config["corpus"]["name"] == "other"
    assert "B7" in bundle.vocab and len(bundle.history) == 1


# --- other run settings ---------------------------------------------------------------------


def test_early_stopping_follows_its_patience(tmp_path):
    # At this learning rate the weights hardly move, so validation loss soon stops improving.
    patience = 2
    result = train(melody_corpus(), tmp_path / "bundle",
                   tiny_config(epochs=30, early_stopping=patience, learning_rate=1e-9, optimizer="sgd"))
    losses = [record["val_loss"] for record in result.history]
    wait, expected = 0, len(losses)
    for epoch, loss in enumerate(losses):
        wait = 0 if epoch == 0 or loss < min(losses[:epoch]) else wait + 1
        if wait >= patience:
            expected = epoch + 1
            break
    assert len(losses) == expected < 30
    assert result.stopped is False  # early stopping is not a user stop


def test_lyrics_corpus_trains_and_records_lowercase(tmp_path):
    text = "let us dance for the rest of the night here\n" * 20
    corpus = Corpus("verse", "lyrics", "char", 1, list(text))
    out = tmp_path / "bundle"
    train(corpus, out, tiny_config(kind="lyrics", epochs=1))
    bundle = load_bundle(out)
    assert bundle.config["kind"] == "lyrics" and bundle.config["tokenizer"] == "char"
    assert bundle.config["lowercase"] is True
    assert set(bundle.vocab.tokens) == set(text)


# --- the loss × optimizer study --------------------------------------------------------


def test_run_study_writes_results_curves_and_histories(tmp_path):
    import pandas as pd

    events = []
    out = tmp_path / "study"
    table = run_study(
        melody_corpus(), out, tiny_config(preset="debug-last", epochs=1, max_windows=200),
        losses=("categorical_crossentropy", "mse"), optimizers=("adam", "sgd"), listener=events.append,
    )
    assert len(table) == 4
    for path in (out / "results.csv", out / "results.json", out / "curves.html"):
        assert path.is_file(), path
    columns = {"loss", "optimizer", "final_loss", "best_loss", "accuracy", "val_accuracy", "wall_s"}
    csv = pd.read_csv(out / "results.csv")
    assert len(csv) == 4 and columns <= set(csv.columns)
    rows = json.loads((out / "results.json").read_text())
    assert len(rows) == 4 and all(columns <= set(row) for row in rows)
    assert {(row["loss"], row["optimizer"]) for row in rows} == {
        ("categorical_crossentropy", "adam"), ("categorical_crossentropy", "sgd"), ("mse", "adam"), ("mse", "sgd"),
    }
    for row in rows:
        assert math.isfinite(row["final_loss"]) and row["best_loss"] <= row["final_loss"]
        assert 0.0 <= row["accuracy"] <= 1.0 and 0.0 <= row["val_accuracy"] <= 1.0 and row["wall_s"] >= 0
        run = out / f"{row['loss']}-{row['optimizer']}"
        history = json.loads((run / "history.json").read_text())
        assert len(history) == 1
        config = load_bundle(run).config
        assert (config["training"]["loss"], config["training"]["optimizer"]) == (row["loss"], row["optimizer"])
    # MSE on a softmax is a far smaller number than cross-entropy.
    by_run = {(row["loss"], row["optimizer"]): row for row in rows}
    assert by_run[("mse", "adam")]["final_loss"] < by_run[("categorical_crossentropy", "adam")]["final_loss"]
    assert "plotly" in (out / "curves.html").read_text().lower()
    runs = {event["run"] for event in events}
    assert len(runs) == 4 and all(event["runs"] == 4 for event in events)
    # Every run starts from the same data and initial weights: same split sizes.
    starts = [event for event in events if event["type"] == "start"]
    assert len({(event["train_windows"], event["validation_windows"]) for event in starts}) == 1


def test_run_study_refuses_bad_names_before_training(tmp_path):
    out = tmp_path / "study"
    with pytest.raises(SeqgenError, match="Unknown loss 'hinge'; valid losses: categorical_crossentropy, mse, mae"):
        run_study(melody_corpus(), out, tiny_config(preset="debug-last"), losses=("mse", "hinge"), optimizers=("adam",))
    with pytest.raises(SeqgenError, match="valid optimizers: adam, sgd, adadelta, adamax"):
        run_study(melody_corpus(), out, tiny_config(preset="debug-last"), losses=("mse",), optimizers=("nadam",))
    with pytest.raises(SeqgenError, match="at least one loss"):
        run_study(melody_corpus(), out, tiny_config(preset="debug-last"), losses=(), optimizers=("adam",))
    assert not out.exists()


# --- distribution --------------------------------------------------------------------------


MIRRORED_SCRIPT = """
import itertools, json, math, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
from seqgen.bundle import load_bundle
from seqgen.corpus import Corpus
from seqgen.train import TrainConfig, make_strategy, train
out = sys.argv[1]
corpus = Corpus("melody", "music", "seed", 1, list(itertools.islice(itertools.cycle({melody!r}), 600)))
strategy = make_strategy("mirrored")
config = TrainConfig(kind="music", preset="debug", window={window}, min_count=1, max_windows=200, epochs=1, strategy="mirrored")
result = train(corpus, out, config)
bundle = load_bundle(out)
print("RESULT " + json.dumps({{
    "replicas": strategy.num_replicas_in_sync,
    "devices": len(tf.config.list_logical_devices("CPU")),
    "loss": result.history[-1]["loss"],
    "val_loss": result.history[-1]["val_loss"],
    "strategy": bundle.config["training"]["strategy"],
}}))
"""


@pytest.fixture(scope="module", autouse=True)
def mirrored_process(tmp_path_factory, request):
    """Started with the module, so it runs while the in-process tests do; collected by its test."""
    if not any(item.module is request.module and "mirrored" in item.name for item in request.session.items):
        yield None  # the mirrored test is not selected: start nothing
        return
    out = tmp_path_factory.mktemp("mirrored") / "bundle"
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), environment.get("PYTHONPATH", "")]))
    environment["PYTHONWARNINGS"] = "ignore"
    process = subprocess.Popen([sys.executable, "-c", MIRRORED_SCRIPT.format(melody=MELODY, window=WINDOW), str(out)],
                               cwd=str(REPO_ROOT), env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield process
    if process.poll() is None:
        process.kill()
    process.communicate()


def test_mirrored_strategy_over_two_logical_cpus(mirrored_process):
    stdout, stderr = mirrored_process.communicate(timeout=300)
    assert mirrored_process.returncode == 0, stderr[-3000:]
    line = next(line for line in stdout.splitlines() if line.startswith("RESULT "))
    report = json.loads(line[len("RESULT "):])
    assert report["devices"] == 2
    assert report["replicas"] == 2
    assert math.isfinite(report["loss"]) and math.isfinite(report["val_loss"])
    assert report["strategy"] == "mirrored"


def test_a_stride_keeps_every_token_with_fewer_windows():
    corpus = melody_corpus()
    every = prepare_data(corpus, replace(tiny_config(**REFERENCE), kind="music", max_windows=None).resolved())
    strided = prepare_data(corpus, replace(tiny_config(**REFERENCE), kind="music", max_windows=None, stride=5).resolved())
    assert np.array_equal(strided.starts, every.starts[::5])
    assert set(np.concatenate([np.arange(start, start + WINDOW) for start in strided.starts])) >= set(range(len(every.ids) - WINDOW - 5))
    with pytest.raises(SeqgenError, match="stride must be a positive whole number"):
        replace(tiny_config(**REFERENCE), kind="music", stride=0).resolved()

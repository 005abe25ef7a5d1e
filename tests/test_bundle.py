"""Tests for seqgen.bundle: what a run leaves, reloading it exactly, refusing damaged or
unsafe bundles with a clear message, and surviving ``kill -9`` mid-training."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import itertools  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import zipfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import seqgen.models  # noqa: E402
import seqgen.bundle  # noqa: E402
from seqgen.bundle import CONFIG_SCHEMA, check_config, load_bundle, save_weights  # noqa: E402
from seqgen.corpus import Corpus  # noqa: E402
from seqgen.errors import SeqgenError  # noqa: E402
from seqgen.models import build_model  # noqa: E402
from seqgen.train import TrainConfig, train  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
MELODY = "C4 E4 G4 C5 G4 E4 D4 F4 A4 D5 A4 F4".split()
WINDOW = 16
BUNDLE_FILES = {"model.keras", "vocab.json", "config.json", "history.json", "README.md", "seeds.json", "stats.json", "corpus.npy"}


def melody_corpus(length: int = 600) -> Corpus:
    return Corpus("melody", "music", "seed", 1, list(itertools.islice(itertools.cycle(MELODY), length)))


def tiny_config(**overrides) -> TrainConfig:
    settings = dict(kind="music", preset="debug", window=WINDOW, min_count=1, max_windows=300, epochs=1, seed=42)
    settings.update(overrides)
    return TrainConfig(**settings)


def seed_windows(bundle) -> np.ndarray:
    """The bundle's seed windows as ids, shape (num_seeds, window)."""
    return np.array([bundle.vocab.encode(window) for window in bundle.seeds], dtype=np.int32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 1-epoch debug run, with the trained model and every weight set written to the bundle captured."""
    out = tmp_path_factory.mktemp("trained") / "bundle"
    built, saved = [], []
    real_build, real_save = seqgen.models.build_model, seqgen.bundle.save_weights

    def spy_build(*args, **kwargs):
        model = real_build(*args, **kwargs)
        built.append(model)
        return model

    def spy_save(model, folder):
        saved.append([weight.copy() for weight in model.get_weights()])
        real_save(model, folder)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(seqgen.models, "build_model", spy_build)
        patch.setattr(seqgen.bundle, "save_weights", spy_save)
        result = train(melody_corpus(), out, tiny_config())
    return {"out": out, "result": result, "trained_model": built[0], "saved": saved}


@pytest.fixture
def bundle_copy(trained, tmp_path):
    return Path(shutil.copytree(trained["out"], tmp_path / "bundle"))


def edit_config(folder: Path, **changes) -> None:
    path = folder / "config.json"
    config = json.loads(path.read_text())
    for key, value in changes.items():
        if value is KeyError:
            del config[key]
        else:
            config[key] = value
    path.write_text(json.dumps(config))


# --- a run's bundle ------------------------------------------------------------------------


def test_bundle_holds_every_file_and_a_valid_config(trained):
    out, result = trained["out"], trained["result"]
    assert {path.name for path in out.iterdir()} == BUNDLE_FILES  # no temporary files left behind
    config = json.loads((out / "config.json").read_text())
    assert check_config(config, out) is config
    assert set(CONFIG_SCHEMA) <= set(config)
    assert (config["kind"], config["preset"], config["tokenizer"], config["window"]) == ("music", "debug", "seed", WINDOW)
    assert (config["input_mode"], config["target_mode"]) == ("ids", "sequence")
    assert config["vocab_size"] == len(set(MELODY)) == len(json.loads((out / "vocab.json").read_text())["tokens"])
    assert config["parameters"] == result.parameters == build_model("music", "debug", config["vocab_size"], WINDOW).count_params()
    assert config["corpus"] == {"name": "melody", "items": 1, "tokens": 600, "filter": "exact", "min_count": 1}
    training = config["training"]
    assert (training["loss"], training["optimizer"], training["learning_rate"], training["batch_size"]) == (
        "categorical_crossentropy", "adam", 0.01, 16)
    assert training["train_windows"] + training["validation_windows"] + training["seed_windows"] == 300
    assert config["best"]["epoch"] == 1 and config["best"]["val_loss"] == result.history[0]["val_loss"]

    history = json.loads((out / "history.json").read_text())
    assert history == result.history and len(history) == 1

    seeds = json.loads((out / "seeds.json").read_text())
    assert len(seeds) == training["seed_windows"] and all(len(window) == WINDOW for window in seeds)
    assert all(set(window) <= set(MELODY) for window in seeds)

    card = (out / "README.md").read_text()
    assert "preset `debug`" in card
    assert f"{result.parameters:,} parameters" in card
    assert "unigram baseline" in card and "| best epoch | 1 |" in card


def test_reloaded_bundle_predicts_like_the_trained_model(trained):
    bundle = load_bundle(trained["out"])
    assert bundle.config["preset"] == "debug" and len(bundle.vocab) == 8 and len(bundle.seeds) > 0
    windows = seed_windows(bundle)
    # One epoch: the last epoch is the best, so the bundle is the trained model itself.
    trained_model = trained["trained_model"]
    assert [weight.shape for weight in bundle.model.get_weights()] == [weight.shape for weight in trained_model.get_weights()]
    for loaded, live in zip(bundle.model.get_weights(), trained_model.get_weights()):
        np.testing.assert_array_equal(loaded, live)
    expected = trained_model.predict(windows, verbose=0)
    np.testing.assert_allclose(bundle.model.predict(windows, verbose=0), expected, rtol=1e-6, atol=1e-7)
    # ... and the weights it wrote at its best epoch, put into a freshly built model, predict the same.
    fresh = build_model("music", "debug", len(bundle.vocab), WINDOW)
    fresh.set_weights(trained["saved"][-1])
    np.testing.assert_allclose(fresh.predict(windows, verbose=0), expected, rtol=1e-6, atol=1e-7)
    assert expected.shape == (len(windows), WINDOW, 8)


def test_bundle_keeps_the_best_epoch_not_the_last(tmp_path, monkeypatch):
    """When the last epoch is worse, model.keras keeps the weights of the best validation epoch."""
    saved, built = [], []
    real_save, real_build = seqgen.bundle.save_weights, seqgen.models.build_model

    def spy_save(model, folder):
        saved.append([weight.copy() for weight in model.get_weights()])
        real_save(model, folder)
        if len(saved) == 1:
            # Wipe the live model after its first save: with all-zero weights only the output bias can
            # learn, so epoch 2 is sure to be worse than epoch 1.
            trained_model = built[0]
            trained_model.set_weights([np.zeros_like(weight) for weight in trained_model.get_weights()])

    def spy_build(*args, **kwargs):
        built.append(real_build(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(seqgen.bundle, "save_weights", spy_save)
    monkeypatch.setattr(seqgen.models, "build_model", spy_build)
    result = train(melody_corpus(), tmp_path / "bundle", tiny_config(epochs=2))
    assert result.history[1]["val_loss"] > result.history[0]["val_loss"]
    assert len(saved) == 1  # one save per improvement, none for the worse epoch
    bundle = load_bundle(tmp_path / "bundle")
    assert bundle.config["best"]["epoch"] == result.best["epoch"] == 1
    assert len(bundle.history) == 2
    for loaded, kept in zip(bundle.model.get_weights(), saved[0]):
        np.testing.assert_array_equal(loaded, kept)
    final = built[0].get_weights()  # the trained model after its worse last epoch
    assert any(not np.array_equal(loaded, last) for loaded, last in zip(bundle.model.get_weights(), final))


def test_load_bundle_never_deserializes_a_whole_model(trained, monkeypatch):
    import keras
    from keras.src.saving import saving_api, saving_lib

    def forbidden(*args, **kwargs):
        raise AssertionError("load_bundle must not deserialize the archive's model config")

    for module in (keras.models, keras.saving, saving_api, saving_lib):
        monkeypatch.setattr(module, "load_model", forbidden)
    bundle = load_bundle(trained["out"])
    windows = seed_windows(bundle)
    np.testing.assert_allclose(bundle.model.predict(windows, verbose=0),
                               trained["trained_model"].predict(windows, verbose=0), rtol=1e-6, atol=1e-7)


def test_seeds_file_is_optional(bundle_copy):
    (bundle_copy / "seeds.json").unlink()
    assert load_bundle(bundle_copy).seeds == []


def test_leftover_temporary_files_do_not_confuse_loading(trained, bundle_copy):
    """What a kill during an atomic write leaves: half-written hidden temp siblings."""
    (bundle_copy / ".model.k3j2x.keras").write_bytes((bundle_copy / "model.keras").read_bytes()[:100])
    (bundle_copy / ".config.json.a8s7.tmp").write_bytes(b'{"format": "seqgen-bun')
    (bundle_copy / ".history.json.zz1.tmp").write_bytes(b"")
    bundle = load_bundle(bundle_copy)
    for loaded, live in zip(bundle.model.get_weights(), trained["trained_model"].get_weights()):
        np.testing.assert_array_equal(loaded, live)


def test_failed_save_keeps_the_previous_model(bundle_copy):
    before = (bundle_copy / "model.keras").read_bytes()
    model = build_model("music", "debug", 8, WINDOW)

    def broken_save(path, overwrite=True):
        Path(path).write_bytes(b"PK\x03\x04half a zip")
        raise OSError("disk full")

    model.save = broken_save
    with pytest.raises(OSError, match="disk full"):
        save_weights(model, bundle_copy)
    assert (bundle_copy / "model.keras").read_bytes() == before
    assert {path.name for path in bundle_copy.iterdir()} == BUNDLE_FILES
    load_bundle(bundle_copy)


# --- loading errors ----------------------------------------------------------------------


def test_missing_folder(tmp_path):
    with pytest.raises(SeqgenError, match=r"not found \(no such folder\)"):
        load_bundle(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(SeqgenError, match="not found"):
        load_bundle(tmp_path / "file")


@pytest.mark.parametrize("name", ["config.json", "vocab.json", "history.json"])
def test_missing_json_file(bundle_copy, name):
    (bundle_copy / name).unlink()
    with pytest.raises(SeqgenError, match=f"{name} is missing"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize("name", ["config.json", "vocab.json", "history.json", "seeds.json"])
def test_garbage_json_file(bundle_copy, name):
    (bundle_copy / name).write_bytes(b"\x00\xff\xfegarbage{{")
    with pytest.raises(SeqgenError, match=f"{name} is corrupt"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2, 3]", "config.json must hold a JSON object"),
        ('{"format": "keras"}', r"not a seqgen bundle config \(format 'keras'\)"),
        ("null", "config.json must hold a JSON object"),
    ],
)
def test_config_that_is_not_a_bundle_config(bundle_copy, content, message):
    (bundle_copy / "config.json").write_text(content)
    with pytest.raises(SeqgenError, match=message):
        load_bundle(bundle_copy)


@pytest.mark.parametrize("key", [key for key in CONFIG_SCHEMA if key != "format"])
def test_config_missing_a_key(bundle_copy, key):
    edit_config(bundle_copy, **{key: KeyError})
    with pytest.raises(SeqgenError, match=f"config.json lacks '{key}'"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("window", "16", "'window' must be int, got str"),
        ("window", 16.0, "'window' must be int, got float"),
        ("vocab_size", True, "'vocab_size' must be int, got bool"),
        ("training", [], "'training' must be dict, got list"),
        ("preset", None, "'preset' must be str, got NoneType"),
    ],
)
def test_config_with_a_wrong_type(bundle_copy, key, value, message):
    edit_config(bundle_copy, **{key: value})
    with pytest.raises(SeqgenError, match=message):
        load_bundle(bundle_copy)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"preset": "gigantic"}, r"Unknown music preset 'gigantic'; valid presets: 'seed', 'seed-dropout', 'embed', 'debug', 'debug-last'"),
        ({"kind": "video"}, r"Unknown kind 'video'; valid kinds: 'music', 'lyrics'"),
        ({"preset": "debug-last"}, "preset 'debug-last' no longer matches the bundle's input/target modes"),
        ({"format_version": 99}, "format version 99 is newer than this seqgen"),
        ({"window": 0}, "window or vocab_size out of range"),
        ({"vocab_size": 1}, "window or vocab_size out of range"),
    ],
)
def test_config_with_bad_values(bundle_copy, changes, message):
    edit_config(bundle_copy, **changes)
    with pytest.raises(SeqgenError, match=message):
        load_bundle(bundle_copy)


def test_vocab_of_another_size(bundle_copy):
    vocab = json.loads((bundle_copy / "vocab.json").read_text())
    vocab["tokens"] = vocab["tokens"][:-1]
    (bundle_copy / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(SeqgenError, match="vocab.json holds 7 tokens but the model was trained on 8"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"words": ["a", "b"]}, r"vocab.json: A vocabulary must be stored as \{'tokens'"),
        ({"tokens": ["a", 1]}, r"vocab.json: A vocabulary must be stored as \{'tokens'"),
        ({"tokens": ["a", "a", "b", "c", "d", "e", "f", "g"]}, "same token twice"),
    ],
)
def test_malformed_vocab(bundle_copy, content, message):
    (bundle_copy / "vocab.json").write_text(json.dumps(content))
    with pytest.raises(SeqgenError, match=message):
        load_bundle(bundle_copy)


def test_history_that_is_not_a_list(bundle_copy):
    (bundle_copy / "history.json").write_text('{"epoch": 1}')
    with pytest.raises(SeqgenError, match="history.json must hold a list of epochs"):
        load_bundle(bundle_copy)


def test_missing_model(bundle_copy):
    (bundle_copy / "model.keras").unlink()
    with pytest.raises(SeqgenError, match="model.keras is missing"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize("keep", [0, 10, 200, -30])
def test_truncated_model(bundle_copy, keep):
    data = (bundle_copy / "model.keras").read_bytes()
    (bundle_copy / "model.keras").write_bytes(data[:keep])
    with pytest.raises(SeqgenError, match="model.keras is corrupt"):
        load_bundle(bundle_copy)


def test_model_that_is_not_a_zip(bundle_copy):
    (bundle_copy / "model.keras").write_text("this is not a Keras archive\n" * 20)
    with pytest.raises(SeqgenError, match=r"model.keras is corrupt \(not a Keras zip archive\)"):
        load_bundle(bundle_copy)


def test_model_with_flipped_bytes(bundle_copy):
    path = bundle_copy / "model.keras"
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("model.weights.h5")
    middle = info.header_offset + 30 + len(info.filename) + info.compress_size // 2  # inside the weights data
    data[middle] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(SeqgenError, match="model.keras is corrupt"):
        load_bundle(bundle_copy)


def test_zip_without_weights(bundle_copy):
    with zipfile.ZipFile(bundle_copy / "model.keras", "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("metadata.json", "{}")
    with pytest.raises(SeqgenError, match=r"model.keras is corrupt \(weights missing or damaged\)"):
        load_bundle(bundle_copy)


def write_hdf5(path: Path) -> None:
    import h5py

    with h5py.File(path, "w") as handle:
        handle.attrs["keras_version"] = "2.15.0"
        handle.create_dataset("model_weights/dense/kernel", data=np.zeros((2, 2)))


def test_hdf5_file_named_model_keras_is_refused(bundle_copy):
    write_hdf5(bundle_copy / "model.keras")
    with pytest.raises(SeqgenError, match=r"legacy HDF5 \(\.h5\) models are refused.*CVE-2025-9905"):
        load_bundle(bundle_copy)


def test_legacy_h5_beside_the_archive_is_refused(bundle_copy):
    write_hdf5(bundle_copy / "model.h5")
    with pytest.raises(SeqgenError, match=r"legacy HDF5 \(\.h5\) models are refused"):
        load_bundle(bundle_copy)


def test_legacy_h5_instead_of_the_archive_is_refused(bundle_copy):
    (bundle_copy / "model.keras").unlink()
    write_hdf5(bundle_copy / "model.h5")
    with pytest.raises(SeqgenError, match=r"legacy HDF5 \(\.h5\) models are refused"):
        load_bundle(bundle_copy)


@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_weights_of_another_preset_are_refused(bundle_copy):
    save_weights(build_model("music", "debug-last", 8, WINDOW), bundle_copy)
    with pytest.raises(SeqgenError, match="the weights in model.keras do not fit preset 'debug'"):
        load_bundle(bundle_copy)


@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_weights_of_another_vocabulary_size_are_refused(bundle_copy):
    save_weights(build_model("music", "debug", 12, WINDOW), bundle_copy)
    with pytest.raises(SeqgenError, match="the weights in model.keras do not fit preset 'debug'"):
        load_bundle(bundle_copy)


# --- kill -9 ---------------------------------------------------------------------------


KILL_SCRIPT = """
import itertools, json, sys, time
import keras
import seqgen.bundle
from seqgen.corpus import Corpus
from seqgen.train import TrainConfig, train

mode, out = sys.argv[1], sys.argv[2]
melody = {melody!r}
corpus = Corpus("melody", "music", "seed", 1, list(itertools.islice(itertools.cycle(melody), 600)))
saves = 0
real_save = seqgen.bundle.save_weights

def hanging_save(model, folder):
    # On the third save, write half an archive to the temporary file, then hang there.
    global saves
    saves += 1
    if mode == "write" and saves == 3:
        def half_save(path, overwrite=True):
            open(path, "wb").write(b"PK\\x03\\x04" + b"half" * 100)
            print(json.dumps({{"type": "writing", "path": str(path)}}), flush=True)
            time.sleep(600)
        model.save = half_save
    real_save(model, folder)

seqgen.bundle.save_weights = hanging_save

def listener(event):
    if event["type"] == "batch":
        time.sleep(0.02)  # epochs long enough to be killed in the middle of one
    print(json.dumps({{"type": event["type"], "epoch": event.get("epoch"), "batch": event.get("batch"),
                       "best": event.get("best")}}), flush=True)

config = TrainConfig(kind="music", preset="debug", window={window}, min_count=1, max_windows=300, epochs=500,
                     report_every=1, learning_rate=0.003)
train(corpus, out, config, listener=listener)
"""


def run_until_killed(tmp_path: Path, mode: str, kill_when) -> tuple[Path, list[dict]]:
    """Train in a subprocess, SIGKILL it when ``kill_when(event, events)`` says so; return the folder and events."""
    out = tmp_path / "bundle"
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), environment.get("PYTHONPATH", "")]))
    environment["PYTHONWARNINGS"] = "ignore"
    script = KILL_SCRIPT.format(melody=MELODY, window=WINDOW)
    process = subprocess.Popen([sys.executable, "-c", script, mode, str(out)], cwd=str(REPO_ROOT), env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(240, process.kill)  # never hang the suite
    watchdog.start()
    events = []
    try:
        for line in process.stdout:
            if not line.startswith("{"):
                continue
            event = json.loads(line)
            events.append(event)
            if kill_when(event, events):
                assert (out / "model.keras").is_file()
                os.kill(process.pid, signal.SIGKILL)
                break
        process.wait(timeout=60)
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
        stderr = process.stderr.read()
        process.stdout.close()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL, f"the training process was not killed (rc {process.returncode}): {stderr[-3000:]}"
    return out, events


@pytest.fixture(scope="module", autouse=True)
def kill_scenarios(tmp_path_factory, request):
    """Both kill scenarios, started with the module so they run while the in-process tests do."""
    from concurrent.futures import ThreadPoolExecutor

    if not any(item.module is request.module and "kill_9" in item.name for item in request.session.items):
        yield {}  # no kill test selected: start nothing
        return
    scenarios = {
        # In the middle of epoch 3: model.keras exists since epoch 1, and epoch 2 has passed too.
        "epoch": lambda event, events: event["type"] == "batch" and event["epoch"] == 3 and event["batch"] == 5,
        # The third save hangs half-way through writing its temporary file; the kill lands there.
        "write": lambda event, events: event["type"] == "writing",
    }
    with ThreadPoolExecutor(len(scenarios)) as pool:
        yield {mode: pool.submit(run_until_killed, tmp_path_factory.mktemp(f"kill-{mode}"), mode, when)
               for mode, when in scenarios.items()}


@pytest.fixture
def killed_runs(kill_scenarios):
    return {mode: future.result() for mode, future in kill_scenarios.items()}


def test_kill_9_mid_epoch_leaves_a_loadable_bundle(killed_runs):
    out, events = killed_runs["epoch"]
    finished = [event for event in events if event["type"] == "epoch"]
    assert [event["epoch"] for event in finished] == [1, 2]
    bundle = load_bundle(out)
    assert [record["epoch"] for record in bundle.history] == [1, 2]
    best_epoch = max(event["epoch"] for event in finished if event["best"])
    assert bundle.config["best"]["epoch"] == best_epoch
    predictions = bundle.model.predict(seed_windows(bundle), verbose=0)
    assert np.all(np.isfinite(predictions))
    np.testing.assert_allclose(predictions.sum(axis=-1), 1.0, rtol=1e-4)
    assert {path.name for path in out.iterdir() if not path.name.startswith(".")} == BUNDLE_FILES


def test_kill_9_while_writing_the_model_keeps_the_previous_one(killed_runs):
    out, events = killed_runs["write"]
    saved_epochs = [event["epoch"] for event in events if event["type"] == "epoch" and event["best"]]
    assert len(saved_epochs) == 2  # the third improvement was being written
    bundle = load_bundle(out)
    assert bundle.config["best"]["epoch"] == saved_epochs[-1]
    assert np.all(np.isfinite(bundle.model.predict(seed_windows(bundle), verbose=0)))
    leftovers = [path.name for path in out.iterdir() if path.name not in BUNDLE_FILES]
    assert leftovers and all(name.startswith(".model.") for name in leftovers)  # the half-written temp file, ignored

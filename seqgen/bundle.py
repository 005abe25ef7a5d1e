"""Checkpoint bundles: the one owner of the bundle format.

A bundle is a folder that generation needs nothing else for: ``model.keras``
(weights, no optimizer state), ``vocab.json``, ``config.json`` (kind,
preset, tokenizer, window, hyper-parameters, corpus, best epoch),
``history.json`` (one record per epoch), ``seeds.json`` (windows of the seed
split, to start generation), ``stats.json`` and ``corpus.npy`` (what quality
reports compare with), a ``README.md`` model card and, once measured with
``seqgen evaluate``, ``quality.json`` and (``--sweep``) ``sampling.json``:
the recommended sampling settings and the sweep that chose them.  This
module assembles, writes, reads, lists and looks up bundles; nothing else
names their files.

Every file is written to a temporary sibling and renamed into place, so a
crash or ``kill -9`` leaves the previous complete file.  Loading checks
``config.json`` against a schema and reads the archive's weights with h5py
and its layer list as plain JSON (:func:`read_layers`), without TensorFlow:
generation runs on NumPy, so a process that only generates never imports it.
The archive's config is never deserialized into Keras objects, because Keras'
``safe_mode`` has been bypassed repeatedly (CVE-2025-1550, CVE-2025-8747,
CVE-2025-9906) and HDF5 model files ignore it (CVE-2025-9905); a Keras model,
when one is needed (resuming training, the Keras engine), is rebuilt from
seqgen's preset table and given those weights.  Legacy ``.h5`` full models
are refused.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seqgen.card import model_card
from seqgen.errors import SeqgenError
from seqgen.files import atomic_path, write_atomic, write_json
from seqgen.numpy_lstm import SavedLayer
from seqgen.presets import Preset, get_preset
from seqgen.sampling import SamplingOptions
from seqgen.vocab import Vocab

FORMAT = "seqgen-bundle"
FORMAT_VERSION = 1

CONFIG = "config.json"
VOCAB = "vocab.json"
WEIGHTS = "model.keras"
HISTORY = "history.json"
SEEDS = "seeds.json"
STATS = "stats.json"
CORPUS = "corpus.npy"
CARD = "README.md"
QUALITY = "quality.json"
SAMPLING = "sampling.json"
FILES = (CONFIG, VOCAB, WEIGHTS, HISTORY)  # what every bundle has
WEIGHTED_LAYERS = ("Embedding", "LSTM", "Dense")  # the preset layers that must have weights in the archive

# config.json schema: key -> accepted types.
CONFIG_SCHEMA = {
    "format": str,
    "format_version": int,
    "kind": str,
    "preset": str,
    "tokenizer": str,
    "window": int,
    "vocab_size": int,
    "input_mode": str,
    "target_mode": str,
    "training": dict,
    "corpus": dict,
    "best": dict,
    "parameters": int,
}
# Settings that config.json keeps at its top level or under "corpus"; the rest go under "training".
_NOT_TRAINING = ("kind", "preset", "tokenizer", "window", "min_count", "filter")


def checkpoints_dir() -> Path:
    """The shipped bundles: ``$SEQGEN_CHECKPOINTS``, else the copy installed with the package (``seqgen/checkpoints``
    in a wheel), else the ``checkpoints/`` folder of this checkout."""
    if os.environ.get("SEQGEN_CHECKPOINTS"):
        return Path(os.environ["SEQGEN_CHECKPOINTS"])
    package = Path(__file__).resolve().parent
    installed = package / "checkpoints"
    return installed if installed.is_dir() else package.parent / "checkpoints"


def _read_json(path: Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SeqgenError(f"Bundle {Path(path).parent}: {Path(path).name} is missing.") from None
    except (OSError, ValueError) as error:
        raise SeqgenError(f"Bundle {Path(path).parent}: {Path(path).name} is corrupt ({error}).") from None


def is_bundle(folder: Path) -> bool:
    return (Path(folder) / CONFIG).is_file()


def check_config(config, folder: Path) -> dict:
    """Validate ``config.json`` against the schema and the preset table."""
    if not isinstance(config, dict):
        raise SeqgenError(f"Bundle {folder}: {CONFIG} must hold a JSON object.")
    if config.get("format") != FORMAT:
        raise SeqgenError(f"Bundle {folder}: {CONFIG} is not a seqgen bundle config (format {config.get('format')!r}).")
    for key, kind in CONFIG_SCHEMA.items():
        if key not in config:
            raise SeqgenError(f"Bundle {folder}: {CONFIG} lacks {key!r}.")
        if not isinstance(config[key], kind) or (kind is int and isinstance(config[key], bool)):
            raise SeqgenError(f"Bundle {folder}: {CONFIG} {key!r} must be {kind.__name__}, got {type(config[key]).__name__}.")
    if config["format_version"] > FORMAT_VERSION:
        raise SeqgenError(f"Bundle {folder}: format version {config['format_version']} is newer than this seqgen ({FORMAT_VERSION}); upgrade seqgen.")
    preset = get_preset(config["kind"], config["preset"])
    if (preset.input_mode, preset.target_mode) != (config["input_mode"], config["target_mode"]):
        raise SeqgenError(f"Bundle {folder}: preset {preset.name!r} no longer matches the bundle's input/target modes.")
    if not 1 <= config["window"] <= 10_000 or not 2 <= config["vocab_size"] <= 1_000_000:
        raise SeqgenError(f"Bundle {folder}: window or vocab_size out of range in {CONFIG}.")
    return config


def _starts_with(path: Path, magic: bytes) -> bool:
    with open(path, "rb") as handle:
        return handle.read(len(magic)) == magic


def check_archive(path: Path) -> None:
    """Refuse anything that is not a Keras 3 zip archive (legacy HDF5 included)."""
    if any(path.parent.glob("*.h5")) or (path.is_file() and _starts_with(path, b"\x89HDF")):
        raise SeqgenError(
            f"Bundle {path.parent}: legacy HDF5 (.h5) models are refused; they bypass Keras safe mode (CVE-2025-9905). "
            "Retrain with seqgen to get a .keras bundle."
        )
    if not path.is_file():
        raise SeqgenError(f"Bundle {path.parent}: {WEIGHTS} is missing.")
    if not zipfile.is_zipfile(path):
        raise SeqgenError(f"Bundle {path.parent}: {WEIGHTS} is corrupt (not a Keras zip archive).")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError) as error:
        raise SeqgenError(f"Bundle {path.parent}: {WEIGHTS} is corrupt ({error}).") from None
    if bad is not None or "model.weights.h5" not in names:
        raise SeqgenError(f"Bundle {path.parent}: {WEIGHTS} is corrupt (weights missing or damaged).")


@dataclass(eq=False)
class Bundle:
    """A loaded bundle: the rebuilt model and everything needed to use it."""

    folder: Path
    config: dict
    vocab: Vocab
    history: list[dict]
    layers: list[SavedLayer]  # the model's layers and weights, read without TensorFlow
    seeds: list[list[str]]
    stats: dict  # corpus statistics for quality reports (may be empty)
    corpus_ids: np.ndarray | None  # the encoded training stream
    recommended_sampling: dict = field(default_factory=dict)  # sampling.json: {"settings": …, "sweep": …}

    @functools.cached_property
    def model(self):
        """The Keras model, rebuilt from the preset table with these weights (imports TensorFlow: only for training
        and the Keras engine; generation runs on :attr:`layers`)."""
        from seqgen.models import build_model

        model = build_model(self.config["kind"], self.config["preset"], self.config["vocab_size"], self.config["window"])
        weights = {layer.name: layer.weights for layer in self.layers}
        for layer in model.layers:
            if layer.weights:
                layer.set_weights(weights[layer.name])
        return model

    def default_sampling(self, **overrides) -> SamplingOptions:
        """The bundle's recommended sampling settings (else the kind's defaults), with ``overrides`` on top."""
        settings = self.recommended_sampling.get("settings", {})
        return SamplingOptions.for_kind(self.config["kind"], **{**settings, **overrides})

    @functools.cached_property
    def sampler(self):
        """This bundle's :class:`seqgen.sample.Sampler`, built once: weights are unpacked once, not per request."""
        from seqgen.sample import Sampler

        return Sampler(self)


def _h5_name(class_name: str, used: dict[str, int]) -> str:
    """The name Keras 3 saves a model's layer under in ``model.weights.h5``: its class in snake case, numbered
    from the second of a class on (``lstm``, ``lstm_1``), in the model's layer order."""
    name = re.sub("([a-z])([A-Z])", r"\1_\2", re.sub("(.)([A-Z][a-z]+)", r"\1_\2", class_name)).lower()
    used[name] = used.get(name, -1) + 1
    return f"{name}_{used[name]}" if used[name] else name


def _arrays(group) -> list[np.ndarray]:
    """A saved layer's weights in ``get_weights()`` order: its own ``vars/0, 1, …``, then its cell's."""
    arrays = []
    for path in ("vars", "cell/vars"):
        if path in group:
            arrays += [np.asarray(group[path][key]) for key in sorted(group[path], key=int)]
    return arrays


def read_layers(archive: Path, preset: Preset) -> list[SavedLayer]:
    """The layers of ``model.keras`` as plain data: each one's class and config from the archive's config.json
    (read as JSON, never deserialized) and its weights from model.weights.h5 (h5py).  No TensorFlow.

    Raises:
        SeqgenError: If the archive holds another preset's model or cannot be read.
    """
    import h5py

    folder = archive.parent
    try:
        with zipfile.ZipFile(archive) as opened:
            model_config = json.loads(opened.read("config.json"))["config"]
            with h5py.File(io.BytesIO(opened.read("model.weights.h5")), "r") as weights:
                used: dict[str, int] = {}
                layers = []
                for layer in model_config["layers"]:
                    group = weights["layers"][_h5_name(layer["class_name"], used)]
                    arrays = _arrays(group)
                    if layer["class_name"] in WEIGHTED_LAYERS and not arrays:
                        raise ValueError(f"layer {layer['config']['name']!r} has no weights")
                    layers.append(SavedLayer(layer["config"]["name"], layer["class_name"], layer["config"], arrays))
    except (KeyError, TypeError, ValueError, OSError, zipfile.BadZipFile) as error:
        raise SeqgenError(f"Bundle {folder}: {WEIGHTS} is corrupt (its layers cannot be read: {error}).") from None
    if model_config.get("name") != preset.model_name:
        raise SeqgenError(f"Bundle {folder}: the weights in {WEIGHTS} do not fit preset {preset.name!r} "
                          f"(they are a {model_config.get('name')!r} model).")
    return layers


def _check_sizes(layers: list[SavedLayer], vocab_size: int, preset: Preset, folder: Path) -> None:
    """The vocabulary-sized weights (embedding rows, output columns) hold ``vocab_size`` tokens."""
    by_name = {layer.name: layer for layer in layers}  # read_layers saw that each of these has its weights
    sizes = {"output": by_name["output"].weights[0].shape[-1] if "output" in by_name else None}
    if preset.input_mode == "ids":
        sizes["embedding"] = by_name["embedding"].weights[0].shape[0] if "embedding" in by_name else None
    wrong = {name: size for name, size in sizes.items() if size != vocab_size}
    if wrong:
        found = ", ".join(f"{name} {size}" for name, size in wrong.items())
        raise SeqgenError(f"Bundle {folder}: the weights in {WEIGHTS} do not fit preset {preset.name!r} "
                          f"(the vocabulary holds {vocab_size} tokens; {found}).")


def load_bundle(folder: Path) -> Bundle:
    """Load and validate a bundle folder; SeqgenError says what is wrong.  Imports no TensorFlow."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SeqgenError(f"Bundle {folder} not found (no such folder).")
    config = check_config(_read_json(folder / CONFIG), folder)
    try:
        vocab = Vocab.from_json(_read_json(folder / VOCAB))
    except SeqgenError as error:
        raise SeqgenError(f"Bundle {folder}: {VOCAB}: {error}") from None
    if len(vocab) != config["vocab_size"]:
        raise SeqgenError(
            f"Bundle {folder}: {VOCAB} holds {len(vocab)} tokens but the model was trained on {config['vocab_size']}."
        )
    history = _read_json(folder / HISTORY)
    if not isinstance(history, list):
        raise SeqgenError(f"Bundle {folder}: {HISTORY} must hold a list of epochs.")
    seeds = _read_json(folder / SEEDS) if (folder / SEEDS).exists() else []
    stats = _read_json(folder / STATS) if (folder / STATS).exists() else {}
    corpus_ids = None
    if (folder / CORPUS).exists():
        try:
            corpus_ids = np.load(folder / CORPUS, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise SeqgenError(f"Bundle {folder}: {CORPUS} is corrupt ({error}).") from None
    recommended = read_sampling(folder) or {}
    archive = folder / WEIGHTS
    check_archive(archive)
    preset = get_preset(config["kind"], config["preset"])
    layers = read_layers(archive, preset)
    _check_sizes(layers, config["vocab_size"], preset, folder)
    return Bundle(folder, config, vocab, history, layers, seeds, stats, corpus_ids, recommended)


# --- reading without loading a model ---------------------------------------------------------


def read_config(folder: Path) -> dict:
    """A bundle's ``config.json`` as stored (not checked against the preset table)."""
    config = _read_json(Path(folder) / CONFIG)
    if not isinstance(config, dict):
        raise SeqgenError(f"Bundle {folder}: {CONFIG} must hold a JSON object.")
    return config


def read_history(folder: Path) -> list[dict]:
    """The epochs recorded so far; [] when the history is missing or unreadable (listing must not fail)."""
    try:
        history = json.loads((Path(folder) / HISTORY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return history if isinstance(history, list) else []


def read_card(folder: Path) -> str | None:
    """The model card's Markdown, or None when there is none."""
    path = Path(folder) / CARD
    return path.read_text(encoding="utf-8") if path.is_file() else None


def read_quality(folder: Path) -> dict | None:
    """The stored ``quality.json``, or None before ``seqgen evaluate`` ran."""
    path = Path(folder) / QUALITY
    return _read_json(path) if path.exists() else None


def read_sampling(folder: Path) -> dict | None:
    """The stored ``sampling.json`` (``settings`` and the ``sweep`` that chose them), or None before a sweep."""
    path = Path(folder) / SAMPLING
    if not path.exists():
        return None
    recommended = _read_json(path)
    try:
        SamplingOptions(**recommended["settings"])
    except (KeyError, TypeError, SeqgenError) as error:
        raise SeqgenError(f"Bundle {folder}: {SAMPLING} holds no valid sampling settings ({error}); "
                          "delete it or measure again with `seqgen evaluate --sweep`.") from None
    return recommended


def files_stamp(folder: Path) -> tuple | None:
    """Modification times of the files a loaded bundle depends on: a changed stamp means reload."""
    try:
        stamp = tuple((Path(folder) / name).stat().st_mtime_ns for name in (CONFIG, WEIGHTS, VOCAB))
    except OSError:
        return None
    sampling = Path(folder) / SAMPLING
    return stamp + (sampling.stat().st_mtime_ns if sampling.exists() else None,)


# --- writing -------------------------------------------------------------------------------


def make_config(name: str, settings: dict, preset: Preset, vocab_size: int, parameters: int, corpus: dict,
                lowercase: bool, windows: dict[str, int], best: dict) -> dict:
    """Assemble ``config.json``.

    Args:
        name: the bundle's name (its folder's).
        settings: the resolved training settings (a ``TrainConfig`` as a dict).
        preset: the preset trained.
        vocab_size: tokens in the vocabulary.
        parameters: the model's parameter count.
        corpus: the corpus description (name, items, tokens, filter, min_count).
        lowercase: whether a lyrics vocabulary is lower-case only.
        windows: ``train_windows``, ``validation_windows`` and ``seed_windows``.
        best: the best epoch so far (empty before the first).
    """
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "kind": settings["kind"],
        "preset": settings["preset"],
        "description": preset.description,
        "tokenizer": settings["tokenizer"] if settings["kind"] == "music" else "char",
        "window": settings["window"],
        "vocab_size": vocab_size,
        "input_mode": preset.input_mode,
        "target_mode": preset.target_mode,
        "lowercase": lowercase,
        "parameters": parameters,
        "corpus": corpus,
        "training": {**{key: value for key, value in settings.items() if key not in _NOT_TRAINING}, **windows},
        "best": best,
    }


def forget_quality(folder: Path) -> None:
    """Drop ``quality.json`` and ``sampling.json``: they were measured on other weights."""
    for measured in (QUALITY, SAMPLING):
        (Path(folder) / measured).unlink(missing_ok=True)


def start_bundle(folder: Path, vocab: Vocab, seeds: list[list[str]], corpus_ids: np.ndarray, stats: dict) -> None:
    """Write what a new bundle knows before its first epoch, retiring whatever model the folder held.

    The old config and weights go first, so that a crash before the first
    saved epoch cannot leave them beside the new vocabulary.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in (CONFIG, WEIGHTS, QUALITY, SAMPLING):
        (folder / stale).unlink(missing_ok=True)
    write_json(folder / SEEDS, seeds)
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(corpus_ids, dtype=np.int32), allow_pickle=False)
    write_atomic(folder / CORPUS, buffer.getvalue())
    write_json(folder / STATS, stats)
    write_json(folder / VOCAB, vocab.to_json())


def save_weights(model, folder: Path) -> None:
    """Write ``model`` (weights and architecture, no optimizer) as ``model.keras``, atomically."""
    with atomic_path(Path(folder) / WEIGHTS) as temp:
        model.save(str(temp), overwrite=True)


def write_progress(folder: Path, config: dict, history: list[dict]) -> None:
    """After an epoch: ``config.json`` (with the best epoch), ``history.json`` and the model card."""
    folder = Path(folder)
    write_json(folder / CONFIG, config)
    write_json(folder / HISTORY, history)
    write_atomic(folder / CARD, model_card(config, history).encode("utf-8"))


def write_quality(bundle: Bundle, quality: dict) -> None:
    """Store ``quality.json`` in the bundle and rewrite its model card with the quality section (and the sweep)."""
    write_json(bundle.folder / QUALITY, quality)
    rewrite_card(bundle.folder)


def rewrite_card(folder: Path) -> None:
    """Write the model card again from the bundle's files: config, history, quality report, recommended sampling."""
    folder = Path(folder)
    card = model_card(read_config(folder), read_history(folder), read_quality(folder), read_sampling(folder))
    write_atomic(folder / CARD, card.encode("utf-8"))


def write_sampling(bundle: Bundle, settings: dict, sweep: dict) -> None:
    """Store the recommended sampling ``settings`` and the ``sweep`` that chose them; ``bundle`` uses them from now on."""
    recommended = {"settings": settings, "sweep": sweep}
    SamplingOptions(**settings)
    write_json(bundle.folder / SAMPLING, recommended)
    bundle.recommended_sampling = recommended


# --- finding bundles -----------------------------------------------------------------------


@dataclass
class BundleEntry:
    """A bundle on disk, described by its config without loading the model."""

    label: str  # what the CLI accepts and dropdowns show
    folder: Path
    source: str  # e.g. "shipped" or "studio"
    config: dict | None
    error: str | None = None  # why it cannot be used

    @property
    def kind(self) -> str | None:
        return self.config.get("kind") if self.config else None


def scan_bundles(root: Path, source: str, prefix: str = "") -> list[BundleEntry]:
    """The bundles directly under ``root``, sorted by name; unreadable configs are listed with their error."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(root.iterdir()):
        if not folder.is_dir() or folder.name.startswith(".") or not is_bundle(folder):
            continue
        try:
            config, error = read_config(folder), None
        except SeqgenError as problem:
            config, error = None, str(problem)
        found.append(BundleEntry(prefix + folder.name, folder, source, config, error))
    return found


def find_bundle(label: str | None, entries: list[BundleEntry], kind: str | None = None) -> BundleEntry:
    """The entry named ``label`` among usable ``entries`` (of ``kind``); only names from the list, never a path."""
    usable = [entry for entry in entries if entry.error is None and (kind is None or entry.kind == kind)]
    names = ", ".join(entry.label for entry in usable) or "none yet"
    if not label:
        raise SeqgenError(f"Pick a model from the list ({names}).")
    for entry in usable:
        if entry.label == label:
            return entry
    what = f"{kind} " if kind else ""
    raise SeqgenError(f"Bundle {label!r} not found; {what}models available: {names}.")


def resolve_bundle(name: str) -> Path:
    """A bundle folder from a path, or the name of a shipped bundle (``bach-timed``)."""
    path = Path(name)
    if path.is_dir():
        return path
    shipped = scan_bundles(checkpoints_dir(), "shipped")
    for entry in shipped:
        if entry.label == name:
            return entry.folder
    raise SeqgenError(f"Bundle {name!r} not found: not a folder, and not a shipped model under {checkpoints_dir()} "
                      f"({', '.join(entry.label for entry in shipped) or 'none there'}).")

"""What the studio's tabs share: folders, bundles, corpora, output folders and errors.

Nothing here trains or samples; it finds things on disk, turns UI values
into the arguments :mod:`seqgen` expects and turns :class:`SeqgenError`
into ``gr.Error``.  Module-level state is limited to server-wide caches
(loaded bundles, read-only); per-user data lives in ``gr.State`` and in
per-request folders.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import json
import logging
import math
import os
import queue
import re
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import gradio as gr

from seqgen.bundle import checkpoints_dir
from seqgen.errors import SeqgenError

LOG = logging.getLogger("seqgen.studio")
APP_ROOT = Path(__file__).resolve().parents[1]

# Gradio's own cache (files handed to the browser): every hour, delete what is older than 6 hours.
DELETE_CACHE = (3600, 6 * 3600)
OUTPUT_MAX_AGE_S = 6 * 3600  # the same age for the studio's per-request folders
MAX_LOADED_BUNDLES = 6  # loaded models kept in memory, least recently used dropped first


# --- folders ------------------------------------------------------------------------------


def studio_dir() -> Path:
    """Everything the studio trains: ``$SEQGEN_STUDIO_DIR`` or ``runs/studio/`` beside app.py."""
    return Path(os.environ.get("SEQGEN_STUDIO_DIR") or APP_ROOT / "runs" / "studio")


def studio_models_dir() -> Path:
    return studio_dir() / "models"


def studio_studies_dir() -> Path:
    return studio_dir() / "studies"


def outputs_root() -> Path:
    """Per-request output folders live here, under the system temp folder Gradio may serve from."""
    return Path(tempfile.gettempdir()) / "seqgen-studio"


_last_sweep = [0.0]
_sweep_lock = threading.Lock()


def request_dir(prefix: str) -> Path:
    """A fresh folder for one request's outputs; folders older than a few hours are swept away."""
    root = outputs_root()
    root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    with _sweep_lock:
        if now - _last_sweep[0] > 600:
            _last_sweep[0] = now
            for old in root.iterdir():
                try:
                    if now - old.stat().st_mtime > OUTPUT_MAX_AGE_S:
                        shutil.rmtree(old, ignore_errors=True)
                except OSError:
                    pass
    return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=root))


NAME_PATTERN = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str | None, fallback: str) -> str:
    """A folder name made of letters, digits, ``.``, ``_`` and ``-`` (never hidden, never a path)."""
    name = NAME_PATTERN.sub("-", (text or "").strip()).strip(".-_")[:60]
    return name or NAME_PATTERN.sub("-", fallback).strip(".-_")[:60] or "model"


def reserve_folder(root: Path, base: str) -> Path:
    """Create and return ``root/base``, or ``root/base-2``, ``-3``…: never an existing folder."""
    root.mkdir(parents=True, exist_ok=True)
    for number in itertools.count(1):
        folder = root / (base if number == 1 else f"{base}-{number}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise AssertionError("unreachable")


# --- errors ------------------------------------------------------------------------------


def _as_gradio_error(error: Exception) -> gr.Error:
    if isinstance(error, gr.Error):
        return error
    if isinstance(error, SeqgenError):
        return gr.Error(str(error))
    LOG.exception("unexpected error in a studio handler")
    return gr.Error(f"Unexpected error ({type(error).__name__}: {error}). The studio is still running; check your inputs and try again.")


def user_errors(function: Callable) -> Callable:
    """Show :class:`SeqgenError` (and anything unexpected) as a ``gr.Error`` message; the server carries on."""
    if inspect.isgeneratorfunction(function):
        @functools.wraps(function)
        def generator(*args, **kwargs):
            try:
                yield from function(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - every failure becomes a message
                raise _as_gradio_error(error) from None

        return generator

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except Exception as error:  # noqa: BLE001
            raise _as_gradio_error(error) from None

    return wrapper


# --- numbers from the UI ---------------------------------------------------------------------


def whole(value, name: str, minimum: int | None = None, optional: bool = False) -> int | None:
    """A UI number as an int; blank (and 0 when ``optional``) gives None."""
    if value is None or value == "":
        if optional:
            return None
        raise SeqgenError(f"{name} is required.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SeqgenError(f"{name} must be a whole number (got {value!r}).") from None
    if not math.isfinite(number) or number != int(number):
        raise SeqgenError(f"{name} must be a whole number (got {value!r}).")
    number = int(number)
    if optional and number == 0:
        return None
    if minimum is not None and number < minimum:
        raise SeqgenError(f"{name} must be at least {minimum} (got {number}).")
    return number


def real(value, name: str, optional: bool = False) -> float | None:
    """A UI number as a float; blank gives None when ``optional``."""
    if value is None or value == "":
        if optional:
            return None
        raise SeqgenError(f"{name} is required.")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise SeqgenError(f"{name} must be a number (got {value!r}).") from None


# --- corpora -------------------------------------------------------------------------------


def corpus_kind(name: str) -> str | None:
    """``music`` or ``lyrics`` for a built-in or ``data/`` corpus name (None if unknown)."""
    from seqgen.sources import BUILTIN_CORPORA, data_corpora, folder_kind

    if name in BUILTIN_CORPORA:
        return BUILTIN_CORPORA[name].kind
    folder = data_corpora().get(name)
    if folder is None:
        return None
    try:
        return folder_kind(folder)
    except SeqgenError:
        return None


def corpus_choices(kind: str | None = None) -> list[tuple[str, str]]:
    """(label, name) pairs for the corpus dropdowns: built-ins first, then ``data/`` folders."""
    from seqgen.sources import BUILTIN_CORPORA, corpus_names

    choices = []
    for name in corpus_names():
        builtin = BUILTIN_CORPORA.get(name)
        this_kind = builtin.kind if builtin else corpus_kind(name)
        if kind is not None and this_kind != kind:
            continue
        what = builtin.description if builtin else "your data/ folder"
        choices.append((f"{name} ({this_kind or '?'}): {what}", name))
    return choices


def corpus_source(name: str | None, uploads, workdir: Path):
    """What to pass to ``load_corpus``: the uploaded file(s), else a known corpus name.

    Only names from the corpus list are accepted (never a server path); one
    upload is passed as is, several are copied into one folder.
    """
    from seqgen.sources import corpus_names

    files = [Path(item) for item in (uploads or []) if item]
    if len(files) == 1:
        return files[0]
    if files:
        folder = workdir / "uploaded-files"
        folder.mkdir(parents=True, exist_ok=True)
        for path in files:
            target = folder / path.name
            for number in itertools.count(2):
                if not target.exists():
                    break
                target = folder / f"{path.stem}-{number}{path.suffix}"
            shutil.copyfile(path, target)
        return folder
    if not name:
        raise SeqgenError("Pick a corpus from the list or upload files.")
    if name not in corpus_names():
        raise SeqgenError(f"Unknown corpus {name!r}; pick one from the list ({', '.join(corpus_names())}) or upload files.")
    return name


def load_corpus_for_ui(name, uploads, tokenizer, text_column, progress: Callable[[int, int], None] | None = None):
    """Resolve the corpus inputs and tokenize it (through the token cache)."""
    from seqgen.corpus import load_corpus

    workdir = request_dir("corpus")
    source = corpus_source(name, uploads, workdir)
    try:
        # One process: forking a threaded server (maybe running TensorFlow) is not safe.
        return load_corpus(source, tokenizer=tokenizer or "seed", text_column=(text_column or "").strip() or None,
                           workers=1, progress=progress)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --- bundles -------------------------------------------------------------------------------


@dataclass
class BundleEntry:
    """A bundle the studio may use: shipped (``checkpoints/``) or trained here."""

    label: str  # what dropdowns show and the API accepts
    folder: Path
    source: str  # "shipped" or "studio"
    config: dict | None
    error: str | None = None

    @property
    def kind(self) -> str | None:
        return self.config.get("kind") if self.config else None


def _entries(root: Path, source: str, prefix: str) -> list[BundleEntry]:
    from seqgen.bundle import is_bundle

    if not root.is_dir():
        return []
    found = []
    for folder in sorted(root.iterdir()):
        if not folder.is_dir() or folder.name.startswith(".") or not is_bundle(folder):
            continue
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            error = None if isinstance(config, dict) else "config.json is not a JSON object"
        except (OSError, ValueError) as problem:
            config, error = None, f"config.json is unreadable ({problem})"
        found.append(BundleEntry(prefix + folder.name, folder, source, config if not error else None, error))
    return found


def list_bundles(kind: str | None = None) -> list[BundleEntry]:
    """Shipped bundles, then the studio's, optionally of one kind (broken ones only when kind is None)."""
    entries = _entries(checkpoints_dir(), "shipped", "") + _entries(studio_models_dir(), "studio", "studio/")
    if kind is not None:
        entries = [entry for entry in entries if entry.kind == kind and entry.error is None]
    return entries


def no_bundle_message(kind: str) -> str:
    what = "music" if kind == "music" else "lyrics"
    return f"No {what} model yet: train a model in the Train tab first (pick a {what} corpus)."


# The shipped models (scripts/pretrain.sh) that the Melody and Lyrics tabs open with.
DEFAULT_BUNDLES = {"music": "bach-timed", "lyrics": "songs-poems-embed"}


def bundle_dropdown(kind: str | None, current: str | None = None) -> dict:
    """A dropdown update listing the bundles of ``kind``: ``current`` if it still exists, else the default model."""
    labels = [entry.label for entry in list_bundles(kind)]
    preferred = [label for label in (current, DEFAULT_BUNDLES.get(kind)) if label in labels]
    value = preferred[0] if preferred else (labels[0] if labels else None)
    return gr.update(choices=labels, value=value)


def find_bundle(label: str | None, kind: str | None) -> BundleEntry:
    """The bundle a dropdown value names; only names from the list, never a path."""
    entries = list_bundles(kind)
    if not entries and kind is not None:
        raise SeqgenError(no_bundle_message(kind))
    if not label:
        raise SeqgenError(f"Pick a model from the list ({', '.join(entry.label for entry in entries) or 'none yet'}).")
    for entry in entries:
        if entry.label == label:
            return entry
    what = f"{kind} " if kind else ""
    raise SeqgenError(f"Bundle {label!r} not found; {what}models available: {', '.join(entry.label for entry in entries) or 'none'}.")


_loaded: OrderedDict[str, tuple[tuple, object]] = OrderedDict()
_load_lock = threading.Lock()


def load_entry(entry: BundleEntry):
    """The loaded bundle, from a small cache that notices when the files change (a run in progress)."""
    from seqgen.bundle import load_bundle

    def stamp():
        try:
            return tuple((entry.folder / name).stat().st_mtime_ns for name in ("config.json", "model.keras", "vocab.json"))
        except OSError:
            return None

    key = str(entry.folder.resolve())
    with _load_lock:  # one load at a time: concurrent requests for one model wait for the first
        current = stamp()
        cached = _loaded.get(key)
        if cached is not None and cached[0] == current:
            _loaded.move_to_end(key)
            return cached[1]
        bundle = load_bundle(entry.folder)
        _loaded[key] = (current, bundle)
        while len(_loaded) > MAX_LOADED_BUNDLES:
            _loaded.popitem(last=False)
        return bundle


# --- background work -------------------------------------------------------------------------

_DONE = object()


class Worker:
    """Runs ``work(listener)`` in a daemon thread; its events come back through a queue.

    The handler that owns it iterates :meth:`events` and yields UI updates;
    the thread never touches the UI.
    """

    def __init__(self, work: Callable[[Callable[[dict], None]], object], name: str):
        self.result = None
        self.error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, args=(work,), name=name, daemon=True)
        self._thread.start()

    def _run(self, work) -> None:
        try:
            self.result = work(self._queue.put)
        except BaseException as error:  # noqa: BLE001 - handed to the handler, which reports it
            self.error = error
        finally:
            self._queue.put(_DONE)

    def events(self, tick_s: float) -> Iterator[dict | None]:
        """Events as they come; None every ``tick_s`` seconds without one (time to refresh a clock)."""
        while True:
            try:
                event = self._queue.get(timeout=tick_s)
            except queue.Empty:
                yield None
                continue
            if event is _DONE:
                return
            yield event


def clock(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


def fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def warm_up() -> None:
    """Import TensorFlow and the model registry in the background, so the first request is quick."""

    def work():
        try:
            import seqgen.models  # noqa: F401
        except Exception:  # noqa: BLE001 - a request will report the same problem properly
            LOG.exception("warm-up import failed")

    threading.Thread(target=work, name="seqgen-warm-up", daemon=True).start()


def progress_line(fraction: float, elapsed_s: float) -> str:
    """``[█████░░░░░] 50% · elapsed 0:10 · ETA 0:10``."""
    fraction = min(max(fraction, 0.0), 1.0)
    filled = int(round(fraction * 20))
    eta = elapsed_s * (1 - fraction) / fraction if fraction > 0 else None
    return f"`[{'█' * filled}{'░' * (20 - filled)}]` {fraction:.0%} · elapsed {clock(elapsed_s)} · ETA {clock(eta)}"


# --- the model registry (imports TensorFlow: only called from handlers) -----------------------

PRESET_DEFAULT = "preset default"


def preset_choices(kind: str) -> list[tuple[str, str]]:
    from seqgen.models import get_preset, preset_names

    return [(f"{name}: {get_preset(kind, name).description}", name) for name in preset_names(kind)]


def registry() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The loss and optimizer names, from seqgen's registry."""
    from seqgen.models import LOSSES, OPTIMIZERS

    return LOSSES, OPTIMIZERS


def random_seed(value) -> int | None:
    """The RNG seed field: a whole number, or None (a fresh draw) when blank or negative."""
    seed = whole(value, "RNG seed", optional=False) if value not in (None, "") else None
    return None if seed is None or seed < 0 else seed

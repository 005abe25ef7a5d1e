"""What the studio's tabs share: folders, and errors (bad form values and SeqgenError shown as ``gr.Error``).

Nothing here trains or samples.  Per-user data lives in ``gr.State`` and in
per-request folders.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from seqgen.errors import SeqgenError

LOG = logging.getLogger("seqgen.studio")
PERSISTENT_ENV = "SEQGEN_PERSISTENT_DIR"
SPACES_STORAGE = "/data"  # where Hugging Face Spaces mount persistent storage, when a Space has it

# Gradio's own cache (files handed to the browser): every hour, delete what is older than 6 hours.
DELETE_CACHE = (3600, 6 * 3600)
OUTPUT_MAX_AGE_S = 6 * 3600  # the same age for the studio's per-request folders


# --- folders ------------------------------------------------------------------------------


def persistent_dir() -> Path | None:
    """Persistent storage (``$SEQGEN_PERSISTENT_DIR``, else Spaces' ``/data``) if it is a writable folder, else None."""
    folder = Path(os.environ.get(PERSISTENT_ENV) or SPACES_STORAGE)
    return folder if folder.is_dir() and os.access(folder, os.W_OK | os.X_OK) else None


def studio_dir() -> Path:
    """Everything the studio trains: ``$SEQGEN_STUDIO_DIR``, else ``seqgen/studio`` on persistent storage,
    else ``runs/studio`` in the working folder."""
    if os.environ.get("SEQGEN_STUDIO_DIR"):
        return Path(os.environ["SEQGEN_STUDIO_DIR"])
    persistent = persistent_dir()
    return persistent / "seqgen" / "studio" if persistent else Path.cwd() / "runs" / "studio"


def use_persistent_storage() -> Path | None:
    """Keep the token cache on persistent storage too (``$SEQGEN_CACHE``, unless set); returns the storage or None.

    Called once at launch: training jobs inherit the variable.
    """
    persistent = persistent_dir()
    if persistent is not None and not os.environ.get("SEQGEN_CACHE"):
        os.environ["SEQGEN_CACHE"] = str(persistent / "seqgen" / "cache")
    return persistent


def studio_models_dir() -> Path:
    return studio_dir() / "models"


def studio_studies_dir() -> Path:
    return studio_dir() / "studies"


def outputs_root() -> Path:
    """Per-request output folders live here, under the system temp folder Gradio may serve from."""
    return Path(tempfile.gettempdir()) / "seqgen-studio"


def served_root() -> Path:
    """The folders of generated melodies: Gradio serves their files where they are (:func:`gradio.set_static_paths`)
    instead of hashing and copying every WAV into its cache, a shared CPU's milliseconds per request."""
    return outputs_root() / "served"


_last_sweep = [0.0]
_sweep_lock = threading.Lock()


def request_dir(prefix: str, served: bool = False) -> Path:
    """A fresh folder for one request's outputs (under :func:`served_root` when ``served``); folders older than a
    few hours are swept away."""
    root = served_root() if served else outputs_root()
    root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    with _sweep_lock:
        if now - _last_sweep[0] > 600:
            _last_sweep[0] = now
            for parent in (outputs_root(), served_root()):
                for old in parent.iterdir() if parent.is_dir() else ():
                    try:
                        if old != served_root() and now - old.stat().st_mtime > OUTPUT_MAX_AGE_S:
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

# Settings that seqgen's messages name by their command-line flag, as this studio's fields call them.
FIELD_NAMES = {"--min-count": "min-count", "--text-column": "Lyrics CSV text column", "--length": "Length"}


def _as_gradio_error(error: Exception, where: str) -> gr.Error:
    """The message a user sees; a user's mistake is logged in one line, anything else with its traceback."""
    import gradio as gr  # here, not at the top: generation workers import this module and need no Gradio

    if isinstance(error, (gr.Error, SeqgenError)):
        message = error.worded(FIELD_NAMES) if isinstance(error, SeqgenError) else str(error.message)
        LOG.warning("%s: %s", where, " ".join(message.split()))
        return gr.Error(message, print_exception=False)
    LOG.exception("unexpected error in %s", where)
    return gr.Error(f"Unexpected error ({type(error).__name__}: {error}). The studio is still running; check your inputs and try again.",
                    print_exception=False)


def user_errors(function: Callable) -> Callable:
    """Show :class:`SeqgenError` (and anything unexpected) as a ``gr.Error`` message; the server carries on."""
    where = function.__name__
    if inspect.isgeneratorfunction(function):
        @functools.wraps(function)
        def generator(*args, **kwargs):
            try:
                yield from function(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - every failure becomes a message
                raise _as_gradio_error(error, where) from None

        return generator

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except Exception as error:  # noqa: BLE001
            raise _as_gradio_error(error, where) from None

    return wrapper


# --- the shared server's bounds -----------------------------------------------------------------

QUEUE_SIZE_ENV = "SEQGEN_QUEUE_SIZE"
DEFAULT_QUEUE_SIZE = 64  # waiting requests: four per student for a class of sixteen


def queue_size() -> int:
    """How many requests may wait: ``$SEQGEN_QUEUE_SIZE`` or 64."""
    raw = os.environ.get(QUEUE_SIZE_ENV, "").strip()
    if not raw:
        return DEFAULT_QUEUE_SIZE
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"{QUEUE_SIZE_ENV} must be a positive whole number, got {raw!r}.")
    return int(raw)


FAILED = "⚠️ **That did not work**: the red message says why. Results shown before were cleared."


def on_failure(event, clear: list, status=None, hide: tuple = ()) -> None:
    """After ``event`` fails: empty ``clear``, hide ``hide`` and say so in ``status``, so no stale result sits under the error."""

    import gradio as gr

    def failed():
        updates = [gr.update(value=None) for _ in clear] + [gr.update(value=None, visible=False) for _ in hide]
        return updates + ([FAILED] if status is not None else [])

    outputs = [*clear, *hide, *([status] if status is not None else [])]
    event.failure(failed, None, outputs, api_visibility="private", queue=False)


# --- numbers from the UI ---------------------------------------------------------------------


def whole(value, name: str, minimum: int | None = None, optional: bool = False, maximum: int | None = None,
          unit: str = "") -> int | None:
    """A UI number as an int; blank (and 0 when ``optional``) gives None.  ``unit`` (``tokens``) words the limits."""
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
    unit = f" {unit}" if unit else ""
    if maximum is not None and not (minimum or 0) <= number <= maximum:
        raise SeqgenError(f"{name} must be between {minimum or 0} and {maximum:,}{unit} (got {number:,}).")
    if minimum is not None and number < minimum:
        raise SeqgenError(f"{name} must be at least {minimum}{unit} (got {number}).")
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


def random_seed(value) -> int | None:
    """The RNG seed field: a whole number, or None (a fresh draw) when blank or negative."""
    seed = whole(value, "RNG seed", optional=False) if value not in (None, "") else None
    return None if seed is None or seed < 0 else seed


def sampling_options(temperature, top_k, top_p, repetition_penalty, kind: str | None = None):
    """The form's sampling fields as validated :class:`seqgen.sampling.SamplingOptions` (top-k 0 and top-p 1: off).

    None when a ``kind``'s form is left at its defaults: the model's own
    recommended settings (``seqgen evaluate --sweep``) are used then.
    """
    from seqgen.sampling import SamplingOptions

    options = SamplingOptions(
        temperature=real(temperature, "Temperature"), top_k=whole(top_k, "top-k", optional=True),
        top_p=None if top_p in (None, "", 1, 1.0) else real(top_p, "top-p"),
        repetition_penalty=real(repetition_penalty, "Repetition penalty"),
    )
    return None if kind is not None and options == SamplingOptions.for_kind(kind) else options

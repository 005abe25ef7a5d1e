"""The models the studio may use: shipped ones (``checkpoints/``) and those trained here (``studio/…``).

Listing reads only the bundles' configs (through :mod:`seqgen.bundle`);
loaded bundles, each with its sampler, are kept in a small server-wide cache
that notices when a bundle's files change (a training run in progress).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import replace

from seqgen.bundle import BundleEntry, checkpoints_dir, files_stamp, find_bundle, read_history, scan_bundles
from seqgen.card import STUDIO_DEFAULTS
from seqgen.errors import SeqgenError
from studio.common import studio_models_dir

LOG = logging.getLogger("seqgen.studio")
MAX_LOADED_BUNDLES = 6  # loaded models kept in memory, least recently used dropped first
# The shipped models (scripts/pretrain.sh) that the Melody and Lyrics tabs open with (their cards say why).
DEFAULT_BUNDLES = STUDIO_DEFAULTS


def list_bundles(kind: str | None = None) -> list[BundleEntry]:
    """Shipped bundles, then the studio's, optionally of one kind (broken ones only when kind is None)."""
    entries = scan_bundles(checkpoints_dir(), "shipped") + scan_bundles(studio_models_dir(), "studio", "studio/")
    if kind is not None:
        entries = [entry for entry in entries if entry.kind == kind and entry.error is None]
    return entries


def no_bundle_message(kind: str) -> str:
    return f"No {kind} model yet: train a model in the Train tab first (pick a {kind} corpus)."


def describe(entry: BundleEntry) -> str:
    """What a dropdown shows for a bundle: its name and what it is (see :func:`seqgen.card.model_label`)."""
    from seqgen.card import model_label

    if entry.config is None:
        return f"{entry.label} — cannot be used"
    return model_label(entry.label, entry.config, len(read_history(entry.folder)))


def bundle_dropdown(kind: str | None, current: str | None = None) -> dict:
    """The dropdown's (description, name) choices and value for ``kind``: ``current`` if it still exists, else the default model."""
    entries = list_bundles(kind)
    labels = [entry.label for entry in entries]
    preferred = [label for label in (current, DEFAULT_BUNDLES.get(kind)) if label in labels]
    return {"choices": [(describe(entry), entry.label) for entry in entries],
            "value": preferred[0] if preferred else (labels[0] if labels else None)}


def find(label: str | None, kind: str) -> BundleEntry:
    """The usable bundle of ``kind`` a dropdown value names (None: the default one); only names from the list, never a path."""
    entries = list_bundles(kind)
    if not entries:
        raise SeqgenError(no_bundle_message(kind))
    return find_bundle(label or bundle_dropdown(kind)["value"], entries, kind)


_loaded: OrderedDict[str, tuple[tuple | None, object]] = OrderedDict()
_load_lock = threading.Lock()


def load(entry: BundleEntry):
    """The loaded bundle (its sampler built once), from the cache unless its files changed."""
    from seqgen.bundle import load_bundle

    key = str(entry.folder.resolve())
    with _load_lock:  # one load at a time: concurrent requests for one model wait for the first
        stamp = files_stamp(entry.folder)
        cached = _loaded.get(key)
        if cached is not None and cached[0] == stamp:
            _loaded.move_to_end(key)
            return cached[1]
        bundle = load_bundle(entry.folder)
        _loaded[key] = (stamp, bundle)
        while len(_loaded) > MAX_LOADED_BUNDLES:
            _loaded.popitem(last=False)
        return bundle


def warm_up() -> list[str]:
    """Load the default models and FluidSynth's SoundFont, and make one tiny output with each model, so the first
    request is quick.  FluidSynth also plays every token of the default melody model once, at the studio's default
    tempo and instrument: it keeps the notes it plays (:mod:`seqgen.fluid`), so a class's first melodies are added
    up from notes already played (for bach-timed: 170 notes, 20 MB, 0.4 s of CPU).  Returns the models loaded."""
    from seqgen import audio
    from seqgen.music import midi_notes

    defaults = {}
    for kind, label in DEFAULT_BUNDLES.items():
        try:
            defaults[kind] = [load(entry) for entry in list_bundles(kind) if entry.label == label]
        except Exception:  # noqa: BLE001 - a request will report the same problem properly
            LOG.exception("loading %s failed", label)
    try:
        audio.warm_up(rehearsed=[midi_notes([token], bundle.config["tokenizer"]) for bundle in defaults.get("music", [])
                                 for token in bundle.vocab.tokens])
    except Exception:  # noqa: BLE001 - rendering falls back to the built-in synth and says why
        LOG.exception("loading FluidSynth's SoundFont failed")
    for kind, bundles in defaults.items():
        try:
            for bundle in bundles:
                rehearse(bundle)
        except Exception:  # noqa: BLE001 - a request will report the same problem properly
            LOG.exception("warm-up of %s failed", DEFAULT_BUNDLES[kind])
    return [bundle.folder.name for bundles in defaults.values() for bundle in bundles]


def with_copy_guard(bundle, options: dict) -> dict:
    """A melody request's ``options`` with the model's copy guard kept under sampling fields the user set (the
    studio has no field for it; untouched fields already mean the model's recommended settings)."""
    sampling = options.get("sampling")
    if sampling is None or sampling.max_copy:
        return options
    return {**options, "sampling": replace(sampling, max_copy=bundle.default_sampling().max_copy)}


def rehearse(bundle) -> None:
    """A tiny melody (rendered and engraved) or verse, thrown away: the modules a first request needs are imported
    and the sampler built before a class arrives, not in its first requests."""
    import shutil
    import tempfile

    from seqgen.generate import DEFAULT_SEED_LINE, complete_lyrics, describe_melodies, generate_melody

    if bundle.config["kind"] == "lyrics":
        complete_lyrics(bundle, DEFAULT_SEED_LINE, length=8, rng_seed=0)
        return
    folder = tempfile.mkdtemp(prefix="seqgen-warm-up-")
    try:
        describe_melodies(bundle, generate_melody(bundle, folder, length=8, rng_seed=0, primer_first=True))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def dropdown_update(kind: str, current: str | None = None):
    """A ``gr.update`` for a refreshed dropdown (see :func:`bundle_dropdown`)."""
    import gradio as gr  # here: generation workers use this module and need no Gradio

    return gr.update(**bundle_dropdown(kind, current))

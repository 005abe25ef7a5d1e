"""Corpus choices for the Explore, Train and Study tabs, and reading the corpus a form names.

Only names from the corpus list are accepted, never a server path; uploads
come from Gradio's per-request temporary files.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path
from typing import Callable

from seqgen.errors import SeqgenError
from studio.common import request_dir


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

"""Long work behind a studio handler: training and studies in a process of their own, and progress lines.

The handler that starts a job iterates its events and yields UI updates.  A
job runs at lower CPU priority with capped threads, so generation stays fast
while a model trains, and a crash or ``kill -9`` of the job leaves the server up.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import asdict
from pathlib import Path

from seqgen.jobs import JobProcess
from studio.common import request_dir
from studio.corpora import corpus_source


def start_job(command: str, corpus, uploads, tokenizer, text_column, kind: str, out: Path, config, **extra) -> JobProcess:
    """Start a training (``train``) or study run in its own process (see :mod:`seqgen.jobs`).

    The corpus is read in that process: a name from the list, or the uploads
    (several are copied into a request folder, removed when the process ends).
    """
    inputs = request_dir("job")
    try:
        source = corpus_source(corpus, uploads, inputs)
    except BaseException:
        shutil.rmtree(inputs, ignore_errors=True)
        raise
    job = {"command": command, "corpus": str(source), "tokenizer": tokenizer or "seed",
           "text_column": (text_column or "").strip() or None, "kind": kind, "out": str(out), "config": asdict(config), **extra}
    return JobProcess(job, inputs=inputs)


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


def progress_line(fraction: float, elapsed_s: float) -> str:
    """``[█████░░░░░] 50% · elapsed 0:10 · ETA 0:10``."""
    fraction = min(max(fraction, 0.0), 1.0)
    filled = int(round(fraction * 20))
    eta = elapsed_s * (1 - fraction) / fraction if fraction > 0 else None
    return f"`[{'█' * filled}{'░' * (20 - filled)}]` {fraction:.0%} · elapsed {clock(elapsed_s)} · ETA {clock(eta)}"

"""Training and studies in a process of their own, for a server that must keep answering.

``python -m seqgen.jobs`` reads one job from stdin as JSON, runs it and writes
its events to stdout as JSON lines, ending with a ``result`` or an ``error``
event.  SIGINT or SIGTERM asks it to stop at the next batch (the best epoch is
kept); a crash or ``kill -9`` leaves the last complete checkpoint, because the
bundle is written atomically.  The process lowers its own CPU priority (to
SCHED_IDLE on Linux: it runs only on CPU the class leaves free) and caps its
threads before TensorFlow starts, so a class generating melodies on the same
machine keeps the cores.

A job: ``{"command": "train" | "study", "corpus": NAME_OR_PATH, "tokenizer",
"text_column", "kind", "out": FOLDER, "config": TrainConfig fields, and for a
study "losses" and "optimizers"}``.  :class:`JobProcess` starts one and reads
its events.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

NICE = 10  # how much lower the job's CPU priority is than the server's
THREADS_ENV = "SEQGEN_TRAIN_THREADS"  # threads a job may use (default: half the cores, at least 1)


def job_threads() -> int:
    raw = os.environ.get(THREADS_ENV, "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    return max(1, (os.cpu_count() or 2) // 2)


class JobProcess:
    """A running job: its events, its outcome, and stop.

    Args:
        job: the job's JSON-ready description (see the module docstring).
        inputs: a folder of the job's inputs (uploaded files), removed once the process has ended.
    """

    def __init__(self, job: dict, inputs: Path | None = None):
        threads = str(job_threads())
        environment = dict(os.environ, OMP_NUM_THREADS=threads, TF_NUM_INTRAOP_THREADS=threads,
                           TF_NUM_INTEROP_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
        root = str(Path(__file__).resolve().parents[1])
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [root, environment.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "seqgen.jobs"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=environment,
        )
        self.inputs = inputs
        self.process.stdin.write(json.dumps(job))
        self.process.stdin.close()
        self.result: dict | None = None
        self.error: str | None = None
        self._stop_sent = False
        self._events: queue.Queue = queue.Queue()
        self._stderr: list[str] = []
        threading.Thread(target=self._read, name="seqgen-job-events", daemon=True).start()
        threading.Thread(target=self._drain_stderr, name="seqgen-job-stderr", daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a library printed to stdout: not an event
            if event.get("type") == "result":
                self.result = event
            elif event.get("type") == "error":
                self.error = event["message"]
            else:
                self._events.put(event)
        code = self.process.wait()
        if self.inputs is not None:  # only now: a stopped job may still be reading them
            shutil.rmtree(self.inputs, ignore_errors=True)
        if self.result is None and self.error is None:
            detail = "".join(self._stderr[-3:]).strip()
            self.error = (f"The training process ended unexpectedly (exit code {code}); the server is fine and the best "
                          "epoch saved so far is kept." + (f" Last output: {detail[-300:]}" if detail else ""))
        self._events.put(None)

    def _drain_stderr(self) -> None:
        for line in self.process.stderr:
            self._stderr = (self._stderr + [line])[-20:]

    def events(self, tick_s: float) -> Iterator[dict | None]:
        """Events as they come; None every ``tick_s`` seconds without one (time to refresh a clock)."""
        while True:
            try:
                event = self._events.get(timeout=tick_s)
            except queue.Empty:
                yield None
                continue
            if event is None:
                return
            yield event

    def stop(self) -> None:
        """Ask the job to stop after the current batch; it keeps its best epoch.  Asking again does nothing."""
        if not self._stop_sent and self.process.poll() is None:
            self._stop_sent = True
            self.process.send_signal(signal.SIGINT)


def _emit(event: dict) -> None:
    sys.stdout.write(json.dumps(event, default=str) + "\n")
    sys.stdout.flush()


def _stop_on_signals():
    """A StopControl that SIGINT and SIGTERM set.  After the first, both are ignored: the job is already stopping,
    and a second signal arriving while Python shuts down (when its handlers are gone) would kill it mid-exit."""
    from seqgen.train import StopControl

    stop = StopControl()

    def request_stop(*_):
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
        stop.stop()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)
    return stop


def _run(job: dict, stop) -> dict:
    from seqgen.corpus import load_corpus
    from seqgen.errors import SeqgenError
    from seqgen.train import TrainConfig, run_study, train

    corpus = load_corpus(job["corpus"], tokenizer=job.get("tokenizer") or "seed", text_column=job.get("text_column"),
                         workers=1, progress=lambda done, total: _emit({"type": "parse", "done": done, "total": total}))
    if corpus.kind != job["kind"]:
        raise SeqgenError(f"The corpus is {corpus.kind}, but the model kind is {job['kind']}: switch the kind or pick another corpus.")
    config = TrainConfig(**job["config"])
    import tensorflow as tf  # after the corpus: a bad corpus fails without waiting for TensorFlow

    tf.config.threading.set_intra_op_parallelism_threads(job_threads())
    tf.config.threading.set_inter_op_parallelism_threads(1)
    if job["command"] == "study":
        table = run_study(corpus, Path(job["out"]), config, tuple(job["losses"]), tuple(job["optimizers"]), listener=_emit, stop=stop)
        return {"table": table.to_dict(orient="records"), "stopped": stop.stopped}
    return asdict(train(corpus, Path(job["out"]), config, listener=_emit, stop=stop))


def lower_priority() -> str:
    """Let this process (and the threads it starts later) run only on CPU nobody else wants: Linux's SCHED_IDLE,
    else ``NICE`` steps of niceness.  Returns which one it got."""
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return "idle"
        except OSError:
            pass
    if hasattr(os, "nice"):
        os.nice(NICE)
        return "nice"
    return "normal"


def main() -> int:
    lower_priority()
    stop = _stop_on_signals()  # first: a Stop pressed while the job starts is not lost
    from seqgen.errors import SeqgenError

    try:
        _emit({"type": "result", **_run(json.loads(sys.stdin.read()), stop)})
    except SeqgenError as error:
        _emit({"type": "error", "message": error.template})  # the server words the settings its own way
        return 1
    except Exception as error:  # noqa: BLE001 - reported to the server, which carries on
        _emit({"type": "error", "message": f"Training failed ({type(error).__name__}: {error})."})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

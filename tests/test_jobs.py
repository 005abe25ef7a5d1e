"""Tests for seqgen.jobs: training in a process of its own, streamed back, stoppable, and survivable."""

import contextlib
import os
import signal
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from seqgen.bundle import load_bundle
from seqgen.jobs import JobProcess
from seqgen.train import TrainConfig

VERSE = "let dance for the rest of the night here\nand sing until the morning light\n\n"


@pytest.fixture
def verses(tmp_path):
    path = tmp_path / "verses.txt"
    path.write_text(VERSE * 40, encoding="utf-8")
    return path


def job(corpus, out, kind="lyrics", **settings) -> dict:
    config = TrainConfig(kind="lyrics", preset="debug", window=8, min_count=1, max_windows=400, **settings)
    return {"command": "train", "corpus": str(corpus), "kind": kind, "out": str(out), "config": asdict(config)}


def test_a_job_streams_its_events_and_stops_keeping_its_best_epoch(verses, tmp_path):
    process = JobProcess(job(verses, tmp_path / "bundle", epochs=30, report_every=1))
    seen = []
    for event in process.events(tick_s=0.5):
        if event is None:
            continue
        seen.append(event["type"])
        if event["type"] == "epoch":
            process.stop()  # as the studio's Stop button does
            break
    # More signals while it stops and exits (a Stop pressed twice, a late one while Python shuts down) change nothing.
    while process.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.process.pid, signal.SIGINT)
        time.sleep(0.005)
    seen += [event["type"] for event in process.events(tick_s=0.5) if event is not None]
    assert process.error is None
    assert seen[0] == "start" and "batch" in seen and seen[-1] == "end"
    result = process.result
    assert result["stopped"] is True and 1 <= len(result["history"]) < 30
    assert result["best"]["epoch"] >= 1
    assert load_bundle(tmp_path / "bundle").config["best"] == result["best"]
    assert process.process.returncode == 0


def test_kill_9_of_the_job_is_reported_and_the_bundle_survives(verses, tmp_path):
    process = JobProcess(job(verses, tmp_path / "bundle", epochs=200, report_every=1))
    epochs = 0
    for event in process.events(tick_s=0.5):
        if event is not None and event["type"] == "epoch":
            epochs += 1
        if event is not None and event["type"] == "batch" and epochs >= 1:
            os.kill(process.process.pid, signal.SIGKILL)  # mid-epoch, after a saved one
            break
    process.process.wait(timeout=30)
    for _ in process.events(tick_s=0.5):
        pass
    assert process.result is None
    assert process.error.startswith("The training process ended unexpectedly (exit code -9)")
    assert "best epoch saved so far is kept" in process.error
    bundle = load_bundle(tmp_path / "bundle")
    assert bundle.config["best"]["epoch"] >= 1


def test_a_job_reports_a_user_error_and_its_inputs_go_when_it_ends(verses, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    copy = inputs / verses.name
    copy.write_bytes(verses.read_bytes())
    process = JobProcess(job(copy, tmp_path / "bundle", kind="music", epochs=1), inputs=inputs)
    assert [event for event in process.events(tick_s=0.5) if event and event["type"] == "start"] == []
    assert not inputs.exists()
    assert process.result is None
    assert process.error == "The corpus is lyrics, but the model kind is music: switch the kind or pick another corpus."
    assert not (tmp_path / "bundle").exists()


def test_a_job_runs_only_on_cpu_the_class_leaves_free(tmp_path):
    """The job process asks for SCHED_IDLE (Linux), so training never takes a core from the generation workers."""
    import subprocess
    import sys

    script = "import os; from seqgen.jobs import lower_priority; print(lower_priority(), os.sched_getscheduler(0) == os.SCHED_IDLE)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=str(Path(__file__).resolve().parents[1]))
    assert done.stdout.split() == ["idle", "True"], done.stderr

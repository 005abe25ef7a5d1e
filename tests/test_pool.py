"""studio.pool: requests run in spawned worker processes, stream events back, and survive a worker's death."""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from seqgen.errors import SeqgenError
from studio import pool


def count_to(number: int) -> int:
    """Emit 1 … number a little apart, then return this worker's process id."""
    for value in range(1, number + 1):
        pool.emit(value)
        time.sleep(0.02)
    return os.getpid()


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def fail() -> None:
    raise SeqgenError("bad input, said the worker")


@pytest.fixture
def workers(monkeypatch, tmp_path):
    """A fresh pool with one worker process (no default models to load)."""
    monkeypatch.setenv(pool.WORKERS_ENV, "1")
    monkeypatch.setenv("SEQGEN_CHECKPOINTS", str(tmp_path / "no-models"))
    monkeypatch.setenv("SEQGEN_STUDIO_DIR", str(tmp_path / "studio"))
    instance = pool._Pool()
    yield instance
    instance.shutdown()


def test_a_request_runs_in_a_worker_process_and_streams_its_events_in_order(workers):
    call = workers.submit(count_to, 20)
    batches = list(call.events(every_s=0.05))
    worker_pid = call.result()
    assert worker_pid != os.getpid()
    assert [value for batch in batches for value in batch] == list(range(1, 21))
    assert len(batches) > 1  # they arrived while it ran, not all at the end
    assert workers.submit(count_to, 0).result() == worker_pid  # the worker (and its loaded models) is reused


def test_requests_run_side_by_side_in_a_worker_and_each_comes_back_when_it_is_done(workers):
    workers.submit(count_to, 0).result()  # the worker is up
    slow = workers.submit(count_to, 60)
    quick = workers.submit(count_to, 1)
    assert quick.ahead == 0  # no waiting: the worker took it at once
    assert quick.result() == slow.result() == workers.submit(count_to, 0).result()  # one worker process ran them all
    assert [value for batch in slow.events() for value in batch] == list(range(1, 61))


def test_a_quick_request_does_not_wait_for_a_slow_one(workers):
    workers.submit(count_to, 0).result()
    slow = workers.submit(count_to, 80)
    workers.submit(count_to, 1).result()
    assert not slow.future.done()
    assert slow.result()


def test_a_worker_freezes_what_it_loaded_at_start(workers):
    """A full garbage collection (which any request's garbage can set off, with the GIL held) walks only what the
    requests made, not the imported libraries and the models."""
    assert workers.submit(gc.get_freeze_count).result() > 10_000


def test_a_worker_starts_without_gradio_or_tensorflow(workers):
    """A worker loads models and a SoundFont, not the web framework or the trainer: seconds and hundreds of MB less
    at every start (a request's own function may still import what it needs)."""
    from conftest import heavy_modules  # here: test_workers_end_with_the_server_process imports this file as tests.test_pool

    assert workers.submit(heavy_modules).result() == []


def test_a_worker_error_reaches_the_caller_unchanged(workers):
    with pytest.raises(SeqgenError, match="said the worker"):
        workers.submit(fail).result()
    assert workers.submit(count_to, 1).result()  # the pool is still fine


def test_a_killed_worker_gives_a_clear_error_and_the_next_request_gets_a_new_one(workers):
    first = workers.submit(count_to, 0).result()
    with pytest.raises(SeqgenError, match="generation worker stopped unexpectedly.*try again"):
        workers.submit(die).result()
    call = workers.submit(count_to, 3)
    assert [value for batch in call.events() for value in batch] == [1, 2, 3]
    assert call.result() not in (first, os.getpid())


def test_a_full_class_queue_turns_requests_away_with_a_message(workers, monkeypatch):
    monkeypatch.setattr(pool, "MAX_IN_HAND", 1)  # the worker runs one request at a time
    running = workers.submit(count_to, 40)  # keeps the one worker busy
    waiting = workers.submit(count_to, 0, max_waiting=1)
    assert waiting.ahead == 0
    with pytest.raises(SeqgenError, match=r"The class queue is full \(1 requests are waiting for a generator\)\. Try again"):
        workers.submit(count_to, 0, max_waiting=1)
    assert running.result() and waiting.result()
    assert workers.submit(count_to, 0, max_waiting=1).result()  # room again


def test_threads_instead_of_processes(monkeypatch):
    monkeypatch.setenv(pool.WORKERS_ENV, "0")
    instance = pool._Pool()
    try:
        call = instance.submit(count_to, 3)
        assert [value for batch in call.events() for value in batch] == [1, 2, 3]
        assert call.result() == os.getpid()
    finally:
        instance.shutdown()


def test_with_threads_start_loads_the_default_models_in_one_of_them(monkeypatch):
    from studio import bundles

    loaded = []
    monkeypatch.setattr(bundles, "warm_up", lambda: loaded.append(threading.current_thread().name))
    monkeypatch.setenv(pool.WORKERS_ENV, "0")
    instance = pool._Pool()
    instance.start()
    instance.shutdown()  # waits for the warm-up
    assert len(loaded) == 1 and loaded[0].startswith("seqgen-generate")


@pytest.mark.parametrize("raw, expected", [("", None), ("0", 0), ("3", 3)])
def test_worker_count(monkeypatch, raw, expected):
    monkeypatch.setenv(pool.WORKERS_ENV, raw)
    assert pool.workers() == (expected if expected is not None else max(1, min(os.cpu_count(), pool.MAX_DEFAULT_WORKERS)))


def test_a_bad_worker_count_says_what_it_wants(monkeypatch):
    monkeypatch.setenv(pool.WORKERS_ENV, "two")
    with pytest.raises(SeqgenError, match="SEQGEN_GENERATION_WORKERS must be a whole number"):
        pool.workers()


def test_workers_end_with_the_server_process(tmp_path):
    """A server killed by a signal cannot shut its pool down: its workers notice and exit by themselves."""
    import subprocess
    import sys

    script = ("import os, sys; sys.path.insert(0, os.getcwd()); import tests.test_pool as t; from studio import pool; "
              "p = pool._Pool(); print(p.submit(t.count_to, 0).result(), flush=True); os.kill(os.getpid(), 9)")
    env = dict(os.environ, **{pool.WORKERS_ENV: "1", "SEQGEN_CHECKPOINTS": str(tmp_path / "no-models")})
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          cwd=str(Path(__file__).resolve().parents[1]), timeout=120)
    worker = int(done.stdout.split()[0])
    deadline = time.monotonic() + 10
    while Path(f"/proc/{worker}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Path(f"/proc/{worker}").exists(), "the worker outlived its server"

"""Generation in worker processes, so the server's own process only answers the class.

A melody or a verse costs 0.1–0.3 s of Python CPU (sampling, FluidSynth,
music21, verovio).  Run in the server's process, every request shares one GIL
with Gradio itself and a class of sixteen queues on one core.  Here each
request runs in one of ``$SEQGEN_GENERATION_WORKERS`` spawned processes
(default: one per CPU core, at most four), each keeping its own loaded models
(:mod:`studio.bundles`) and FluidSynth synthesizer, which it loads when it
starts.  A request's function may :func:`emit` events (characters, progress);
they travel over one queue shared by the pool, and a thread in the server
hands each to the request waiting for it (:meth:`Call.events`).

Requests wait for a worker here rather than in Gradio's queue, so a full
class queue (``max_waiting``, the studio's ``$SEQGEN_QUEUE_SIZE``) gets a
message that says so.  ``SEQGEN_GENERATION_WORKERS=0`` runs requests in server
threads instead.  When a worker dies (out of memory, a crash in a native
library) its requests fail with a clear message and the next request starts a
fresh pool.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import multiprocessing
import os
import queue
import threading
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterator

from seqgen.errors import SeqgenError

LOG = logging.getLogger("seqgen.studio")
WORKERS_ENV = "SEQGEN_GENERATION_WORKERS"
MAX_DEFAULT_WORKERS = 4  # each worker holds its own models and SoundFont (several hundred MB)
QUEUE_FULL = "The class queue is full ({waiting} requests are waiting for a generator). Try again in a minute."
WORKER_DIED = ("A generation worker stopped unexpectedly (out of memory, or a crash in a native library). "
               "The studio has started a new one: try again.")

_sink: contextvars.ContextVar[Callable | None] = contextvars.ContextVar("seqgen_pool_sink", default=None)
_outbox = None  # in a worker process: the pool's event queue
_END = object()  # in an inbox: the request's function has returned or raised


def workers() -> int:
    """Worker processes to run: ``$SEQGEN_GENERATION_WORKERS`` (0: threads in the server) or one per core, at most 4."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if not raw:
        return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS))
    if not raw.isdigit():
        raise SeqgenError(f"{WORKERS_ENV} must be a whole number of processes (0: run in the server), got {raw!r}.")
    return int(raw)


def emit(payload) -> None:
    """Send ``payload`` (picklable) to the request that is running this function; a no-op outside a request."""
    sink = _sink.get()
    if sink is not None:
        sink(payload)


class Call:
    """A submitted request: its future, and the events its function emitted that were not read yet."""

    def __init__(self, future: Future, inbox: queue.Queue, owner: "_Pool", request_id: int, ahead: int):
        self.future, self.inbox, self._owner, self._request_id = future, inbox, owner, request_id
        self.ahead = ahead  # requests that were waiting for a worker when this one came

    def events(self, every_s: float = 0.05) -> Iterator[list]:
        """The events the function emits, in batches at most every ``every_s`` seconds, until it ends
        (every event included); then read :meth:`result`."""
        try:
            ended = False
            while not ended:
                try:  # sleep until something arrives (a waiting request costs the server nothing) …
                    first = self.inbox.get(timeout=1.0)
                except queue.Empty:
                    first = None
                # … then gather what else comes within every_s
                deadline, batch = time.monotonic() + every_s, [] if first is None else [first]
                while first is not None and first is not _END and (remaining := deadline - time.monotonic()) > 0:
                    try:
                        item = self.inbox.get(timeout=remaining)
                    except queue.Empty:
                        break
                    batch.append(item)
                    if item is _END:
                        break
                if batch and batch[-1] is _END:
                    ended = True
                    batch.pop()
                if batch:
                    yield batch
                if self.future.done() and (self.future.cancelled() or isinstance(self.future.exception(), BrokenProcessPool)):
                    ended = True  # a dead worker sends no end marker
        finally:  # also when the reader stops early (a closed page)
            self._owner.forget(self._request_id)

    def result(self):
        """The function's return value, or its exception (SeqgenError when the worker died)."""
        try:
            return self.future.result()
        except BrokenProcessPool:
            self._owner.discard_broken()
            raise SeqgenError(WORKER_DIED) from None
        finally:
            self._owner.forget(self._request_id)


def _init_worker(outbox) -> None:
    """In a new worker: keep the event queue, follow the server when it exits, load the default models and the SoundFont."""
    global _outbox
    _outbox = outbox
    threading.Thread(target=_exit_with_server, args=(os.getppid(),), name="seqgen-follow-server", daemon=True).start()
    _warm_up()


def _warm_up() -> None:
    from studio import bundles

    bundles.warm_up()


def _exit_with_server(server_pid: int) -> None:
    """End this worker once the server is gone (a server stopped by a signal never shuts its pool down)."""
    while os.getppid() == server_pid:
        time.sleep(1)
    os._exit(0)


def _run_in_worker(request_id: int, function: Callable, args: tuple, kwargs: dict):
    """In a worker: run ``function`` with :func:`emit` sending to request ``request_id``."""
    token = _sink.set(lambda payload: _outbox.put((request_id, False, payload)))
    try:
        return function(*args, **kwargs)
    finally:
        _sink.reset(token)
        _outbox.put((request_id, True, None))  # after every event: the request has ended


def _run_in_thread(inbox: queue.Queue, function: Callable, args: tuple, kwargs: dict):
    token = _sink.set(inbox.put)
    try:
        return function(*args, **kwargs)
    finally:
        _sink.reset(token)
        inbox.put(_END)


class _Pool:
    """The executor (made on first use) and the routing of worker events to waiting calls."""

    def __init__(self):
        self._lock = threading.Lock()
        self._executor: Executor | None = None
        self._outbox = None
        self._inboxes: dict[int, queue.Queue] = {}
        self._ids = itertools.count(1)

    def _ensure(self) -> Executor:
        with self._lock:
            if self._executor is None:
                count = workers()
                if count == 0:
                    self._executor = ThreadPoolExecutor(max_workers=MAX_DEFAULT_WORKERS, thread_name_prefix="seqgen-generate")
                else:
                    context = multiprocessing.get_context("spawn")  # no fork of a threaded server
                    self._outbox = context.Queue()
                    self._executor = ProcessPoolExecutor(count, mp_context=context, initializer=_init_worker,
                                                         initargs=(self._outbox,))
                    threading.Thread(target=self._route, args=(self._outbox,), name="seqgen-pool-events", daemon=True).start()
            return self._executor

    def _route(self, outbox) -> None:
        """Hand each worker event to its request's inbox (events of finished requests are dropped)."""
        while True:
            item = outbox.get()
            if item is None:
                return
            request_id, ended, payload = item
            inbox = self._inboxes.get(request_id)
            if inbox is not None:
                inbox.put(_END if ended else payload)

    def start(self) -> None:
        """Start every worker now (each loads the default models), so the first requests are quick; with threads,
        load them in one of those threads."""
        executor = self._ensure()
        if isinstance(executor, ProcessPoolExecutor):
            for _ in range(workers()):  # a submit finding no idle worker spawns one
                executor.submit(int)
        else:
            executor.submit(_warm_up)

    def submit(self, function: Callable, *args, max_waiting: int | None = None, **kwargs) -> Call:
        """Run ``function(*args, **kwargs)`` in a worker; SeqgenError (the class queue is full) when
        ``max_waiting`` requests already wait for one."""
        with self._lock:
            waiting = max(0, len(self._inboxes) - (workers() or MAX_DEFAULT_WORKERS))
            if max_waiting is not None and waiting >= max_waiting:
                raise SeqgenError(QUEUE_FULL.format(waiting=waiting))
            inbox: queue.Queue = queue.Queue()
            request_id = next(self._ids)
            self._inboxes[request_id] = inbox
        for attempt in range(2):
            executor = self._ensure()
            try:
                if isinstance(executor, ProcessPoolExecutor):
                    future = executor.submit(_run_in_worker, request_id, function, args, kwargs)
                else:
                    future = executor.submit(_run_in_thread, inbox, function, args, kwargs)
                return Call(future, inbox, self, request_id, waiting)
            except BrokenProcessPool:  # a worker died since the last request: start a fresh pool once
                self.discard_broken()
        self.forget(request_id)
        raise SeqgenError(WORKER_DIED)

    def forget(self, request_id: int) -> None:
        """Stop routing events to a finished request."""
        self._inboxes.pop(request_id, None)

    def discard_broken(self) -> None:
        """Drop a pool whose worker died; the next request makes a new one."""
        with self._lock:
            executor, outbox = self._executor, self._outbox
            if isinstance(executor, ProcessPoolExecutor) and getattr(executor, "_broken", False):
                LOG.error("a generation worker died; starting a new pool")
                self._executor = self._outbox = None
                executor.shutdown(wait=False, cancel_futures=True)
                outbox.put(None)  # stops that pool's router thread

    def shutdown(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=True)
            if self._outbox is not None:
                self._outbox.put(None)
            self._executor = self._outbox = None


_POOL = _Pool()
start = _POOL.start
submit = _POOL.submit

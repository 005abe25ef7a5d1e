"""Generation in worker processes, so the server's own process only answers the class.

A melody or a verse costs 0.1–0.3 s of Python CPU (sampling, FluidSynth,
music21, verovio).  Run in the server's process, every request shares one GIL
with Gradio itself and a class of sixteen queues on one core.  Here requests
run in ``$SEQGEN_GENERATION_WORKERS`` spawned processes (default: one per CPU
core, at most four), each keeping its own loaded models (:mod:`studio.bundles`)
and FluidSynth synthesizer, which it loads when it starts.

A request goes to the worker with the fewest requests in hand, at once, and
runs there in a thread of its own: the worker's generations share one loop
(:mod:`seqgen.lockstep`), so a class's melodies and verses share their model
maths, and a request that arrives joins the loop at its next step.  A
request's function may :func:`emit` events (characters, progress); they travel
over one queue shared by the pool, with each request's outcome at its end, and
a thread in the server hands each to the request waiting for it
(:meth:`Call.events`).

Past ``MAX_IN_HAND`` requests per worker, requests wait here rather than in
Gradio's queue, so a full class queue (``max_waiting``, the studio's
``$SEQGEN_QUEUE_SIZE``) gets a message that says so.
``SEQGEN_GENERATION_WORKERS=0`` runs requests in server threads instead.  When
a worker dies (out of memory, a crash in a native library) its requests fail
with a clear message and a new worker takes its place.
"""

from __future__ import annotations

import collections
import contextvars
import gc
import importlib
import itertools
import logging
import multiprocessing
import os
import pickle
import queue
import sys
import threading
import time
import traceback
import multiprocessing.connection
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterator

from seqgen.errors import SeqgenError

LOG = logging.getLogger("seqgen.studio")
WORKERS_ENV = "SEQGEN_GENERATION_WORKERS"
MAX_DEFAULT_WORKERS = 4  # each worker holds its own models and SoundFont (several hundred MB)
MAX_IN_HAND = 16  # requests one worker runs at once (a thread each; their generations step together)
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
                    continue
                # … then gather what else comes within every_s
                deadline, batch = time.monotonic() + every_s, [first]
                while first is not _END and (remaining := deadline - time.monotonic()) > 0:
                    try:
                        item = self.inbox.get(timeout=remaining)
                    except queue.Empty:
                        break
                    batch.append(item)
                    if item is _END:
                        break
                if batch[-1] is _END:
                    ended = True
                    batch.pop()
                if batch:
                    yield batch
        finally:  # also when the reader stops early (a closed page): a request still waiting is dropped
            self._owner.forget(self._request_id)

    def result(self):
        """The function's return value, or its exception (SeqgenError when the worker died)."""
        try:
            return self.future.result()
        finally:
            self._owner.forget(self._request_id)


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker (its ``__cause__``, as concurrent.futures does)."""

    def __str__(self):
        return self.args[0]


@dataclass(eq=False)
class _Request:
    id: int
    function: Callable
    args: tuple
    kwargs: dict
    inbox: queue.Queue = field(default_factory=queue.Queue)
    future: Future = field(default_factory=Future)
    data: bytes = b""  # the pickled call, for a worker process


def _worker_main(tasks, outbox, preload: tuple[str, ...]) -> None:
    """A worker process: follow the server, step generations together, import the modules of the functions it will
    run, load the default models and the SoundFont, then run each request that arrives in a thread of its own."""
    global _outbox
    from seqgen import lockstep

    _outbox = outbox
    threading.Thread(target=_exit_with_server, args=(os.getppid(),), name="seqgen-follow-server", daemon=True).start()
    started = time.monotonic()
    lockstep.enable()
    for name in preload:  # now, not when a class's first requests unpickle their functions
        importlib.import_module(name)
    models = _warm_up()
    print(f"seqgen: generation worker {os.getpid()} ready in {time.monotonic() - started:.1f} s "
          f"({', '.join(models) or 'no default models'})", file=sys.stderr, flush=True)  # its one line
    # Its start-up objects (Gradio, music21, the models) stay for the process's life: frozen, a
    # full collection no longer walks them (about 240 ms with the GIL held, which stalled every generation).
    gc.freeze()
    while (task := tasks.get()) is not None:
        request_id, data = task
        threading.Thread(target=_run_in_worker, args=(request_id, data), name=f"seqgen-request-{request_id}", daemon=True).start()


def _warm_up() -> list[str]:
    from studio import bundles

    return bundles.warm_up()


def _exit_with_server(server_pid: int) -> None:
    """End this worker once the server is gone (a server stopped by a signal never shuts its pool down)."""
    while os.getppid() == server_pid:
        time.sleep(1)
    os._exit(0)


def _run_in_worker(request_id: int, data: bytes) -> None:
    """In a worker: run the pickled ``(function, args, kwargs)`` with :func:`emit` sending to request ``request_id``,
    then send its outcome (pickled here: a queue pickles in a thread of its own, where a failure would be lost)."""
    token = _sink.set(lambda payload: _outbox.put((request_id, False, payload)))
    try:
        function, args, kwargs = pickle.loads(data)
        outcome = (True, function(*args, **kwargs), None)
    except BaseException as error:
        outcome = (False, error, "".join(traceback.format_exception(error)))
    finally:
        _sink.reset(token)
    try:
        data = pickle.dumps(outcome)
    except Exception as error:
        data = pickle.dumps((False, SeqgenError(f"The generator's result could not be sent back ({error})."), None))
    _outbox.put((request_id, True, data))  # after every event: the request has ended


def _run_in_thread(inbox: queue.Queue, function: Callable, args: tuple, kwargs: dict):
    token = _sink.set(inbox.put)
    try:
        return function(*args, **kwargs)
    finally:
        _sink.reset(token)
        inbox.put(_END)


@dataclass(eq=False)
class _Worker:
    process: multiprocessing.Process
    tasks: multiprocessing.Queue
    in_hand: set = field(default_factory=set)  # ids of the requests it runs


class _Pool:
    """The worker processes (started on first use), the requests waiting for one, and the routing of their events."""

    def __init__(self):
        self._lock = threading.RLock()
        self._context = multiprocessing.get_context("spawn")  # no fork of a threaded server
        self._threads: ThreadPoolExecutor | None = None  # with SEQGEN_GENERATION_WORKERS=0
        self._workers: list[_Worker] = []
        self._outbox = None
        self._helpers: list[threading.Thread] = []  # the event router and the worker watcher
        self._preload: tuple[str, ...] = ()  # modules each worker imports at start (see start)
        self._requests: dict[int, _Request] = {}  # submitted and not forgotten
        self._waiting: collections.deque[_Request] = collections.deque()  # not handed to a worker yet
        self._ids = itertools.count(1)
        self._stopped = threading.Event()

    def _ensure(self) -> None:
        with self._lock:
            if self._threads is not None or self._workers:
                return
            count = workers()
            if count == 0:
                self._threads = ThreadPoolExecutor(max_workers=MAX_DEFAULT_WORKERS, thread_name_prefix="seqgen-generate")
                return
            self._stopped.clear()
            self._outbox = self._context.Queue()
            self._workers = [self._spawn() for _ in range(count)]
            self._helpers = [threading.Thread(target=self._route, args=(self._outbox,), name="seqgen-pool-events", daemon=True),
                             threading.Thread(target=self._watch, name="seqgen-pool-watch", daemon=True)]
            for thread in self._helpers:
                thread.start()

    def _spawn(self) -> _Worker:
        tasks = self._context.Queue()
        process = self._context.Process(target=_worker_main, args=(tasks, self._outbox, self._preload), name="seqgen-generation-worker",
                                        daemon=True)
        process.start()
        return _Worker(process, tasks)

    def _route(self, outbox) -> None:
        """Hand each worker event to its request's inbox, and each outcome to its future (events of forgotten
        requests are dropped)."""
        while (item := outbox.get()) is not None:
            request_id, ended, payload = item
            with self._lock:
                request = self._requests.get(request_id)
                if ended:
                    for worker in self._workers:
                        worker.in_hand.discard(request_id)
                    self._dispatch()
            if request is None:
                continue
            if not ended:
                request.inbox.put(payload)
                continue
            ok, value, remote_traceback = pickle.loads(payload)
            if ok:
                request.future.set_result(value)
            else:
                if remote_traceback:
                    value.__cause__ = RemoteTraceback(remote_traceback)
                request.future.set_exception(value)
            request.inbox.put(_END)

    def _watch(self) -> None:
        """Replace a worker that died; its requests fail with ``WORKER_DIED``."""
        while not self._stopped.is_set():
            with self._lock:
                sentinels = {worker.process.sentinel: worker for worker in self._workers}
            for sentinel in multiprocessing.connection.wait(list(sentinels), timeout=0.5):
                with self._lock:
                    dead = sentinels[sentinel]
                    if self._stopped.is_set() or dead not in self._workers:
                        continue
                    LOG.error("a generation worker died (exit code %s); starting a new one", dead.process.exitcode)
                    self._fail([self._requests[request_id] for request_id in dead.in_hand if request_id in self._requests])
                    self._workers[self._workers.index(dead)] = self._spawn()
                    self._dispatch()

    def start(self, preload: tuple[str, ...] = ()) -> None:
        """Start every worker now (each imports the ``preload`` modules, whose functions requests will run, and loads
        the default models), so the first requests are quick; with threads, load the models in one of those threads."""
        self._preload = tuple(preload)
        self._ensure()
        if self._threads is not None:
            self._threads.submit(_warm_up)

    def submit(self, function: Callable, *args, max_waiting: int | None = None, **kwargs) -> Call:
        """Run ``function(*args, **kwargs)`` in a worker; SeqgenError (the class queue is full) when
        ``max_waiting`` requests already wait for one."""
        self._ensure()
        with self._lock:
            if self._threads is not None:
                waiting = max(0, len(self._requests) - MAX_DEFAULT_WORKERS)
            else:
                waiting = len(self._waiting)
            if max_waiting is not None and waiting >= max_waiting:
                raise SeqgenError(QUEUE_FULL.format(waiting=waiting))
            request = _Request(next(self._ids), function, args, kwargs)
            if self._threads is not None:
                request.future = self._threads.submit(_run_in_thread, request.inbox, function, args, kwargs)
            else:
                request.data = pickle.dumps((function, args, kwargs))  # here: an argument that cannot go fails here
                self._waiting.append(request)
            self._requests[request.id] = request
            self._dispatch()
        return Call(request.future, request.inbox, self, request.id, waiting)

    def _dispatch(self) -> None:
        """Hand waiting requests to the workers with the fewest in hand, up to ``MAX_IN_HAND`` each (lock held)."""
        while self._waiting and self._workers:
            worker = min(self._workers, key=lambda worker: len(worker.in_hand))
            if len(worker.in_hand) >= MAX_IN_HAND:
                return
            request = self._waiting.popleft()
            worker.in_hand.add(request.id)
            worker.tasks.put((request.id, request.data))

    def _fail(self, requests: list[_Request], error: BaseException | None = None) -> None:
        for request in requests:
            if not request.future.done():
                request.future.set_exception(error or SeqgenError(WORKER_DIED))
                request.inbox.put(_END)

    def forget(self, request_id: int) -> None:
        """Stop routing events to a finished request; one still waiting for a worker is dropped."""
        with self._lock:
            request = self._requests.pop(request_id, None)
            if request is not None and request in self._waiting:
                self._waiting.remove(request)
                request.future.cancel()

    def shutdown(self) -> None:
        """Stop the workers and the pool's threads; requests still waiting fail."""
        with self._lock:
            self._stopped.set()
            threads, workers_, outbox, helpers = self._threads, self._workers, self._outbox, self._helpers
            self._threads, self._workers, self._outbox, self._helpers = None, [], None, []
            self._fail(list(self._waiting))
            self._waiting.clear()
        if threads is not None:
            threads.shutdown(wait=True, cancel_futures=True)
        for worker in workers_:
            worker.tasks.put(None)
        for worker in workers_:
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.process.kill()
        if outbox is not None:
            outbox.put(None)
        for thread in helpers:  # ended before the process exits, which would close the queue under the router's read
            thread.join(timeout=10)


_POOL = _Pool()
start = _POOL.start
submit = _POOL.submit
shutdown = _POOL.shutdown

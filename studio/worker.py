"""Long work behind a studio handler: a worker thread whose events come back through a queue, and progress lines.

The handler that owns a :class:`Worker` iterates its events and yields UI
updates; the thread never touches the UI.
"""

from __future__ import annotations

import math
import queue
import threading
from typing import Callable, Iterator

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


def progress_line(fraction: float, elapsed_s: float) -> str:
    """``[█████░░░░░] 50% · elapsed 0:10 · ETA 0:10``."""
    fraction = min(max(fraction, 0.0), 1.0)
    filled = int(round(fraction * 20))
    eta = elapsed_s * (1 - fraction) / fraction if fraction > 0 else None
    return f"`[{'█' * filled}{'░' * (20 - filled)}]` {fraction:.0%} · elapsed {clock(elapsed_s)} · ETA {clock(eta)}"

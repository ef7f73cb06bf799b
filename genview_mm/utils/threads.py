"""Host work beside the main thread: an iterator read ahead by a thread, and a thread pool
whose results come back in submission order with a bound on the work waiting."""
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Iterator, Optional


def prefetch(items: Iterable, ahead: int = 2, name: str = 'prefetch') -> Iterator:
    """``items`` produced by a daemon thread up to ``ahead`` items before the caller; an error
    raised there is raised here."""
    out: queue.Queue = queue.Queue(maxsize=ahead)

    def work() -> None:
        try:
            for item in items:
                out.put((True, item))
            out.put((False, None))
        except BaseException as exc:  # noqa: BLE001  (handed to the caller)
            out.put((False, exc))

    threading.Thread(target=work, daemon=True, name=name).start()
    while True:
        more, item = out.get()
        if not more:
            if item is not None:
                raise item
            return
        yield item


class OrderedPool:
    """Runs calls on ``workers`` threads (0: the caller's), results in submission order; at
    most ``max_pending`` (default 4 x workers) calls wait, bounding what they hold in memory."""

    def __init__(self, workers: int = 4, max_pending: Optional[int] = None,
                 name: str = 'worker') -> None:
        self.pool = ThreadPoolExecutor(workers, name) if workers > 0 else None
        self.max_pending = max_pending or 4 * max(workers, 1)
        self.pending: list = []

    def submit(self, fn, *args) -> list:
        """Run ``fn(*args)``; returns the results that are ready (see :meth:`done`)."""
        if self.pool is None:
            return [fn(*args)]
        self.pending.append(self.pool.submit(fn, *args))
        ready = self.done()
        while len(self.pending) >= self.max_pending:
            ready.append(self.pending.pop(0).result())
        return ready

    def done(self, wait: bool = False) -> list:
        """Results of the leading finished calls (all with ``wait``); re-raises errors."""
        ready = []
        while self.pending and (wait or self.pending[0].done()):
            ready.append(self.pending.pop(0).result())
        return ready

    def close(self) -> list:
        """Wait for running calls (none left half-done), drop the rest; the results of the
        waiting calls that finished without an error, in order (work done before a stop)."""
        if self.pool is None:
            return []
        for future in self.pending:
            future.cancel()
        self.pool.shutdown(wait=True)
        finished = [f.result() for f in self.pending if not f.cancelled() and not f.exception()]
        self.pending = []
        return finished

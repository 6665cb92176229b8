"""One background thread that runs queued writes one at a time, in the order they were queued.

A store that allows one writer at a time (SQLite: "database is locked" under concurrency) is written from this one
thread only, and a slow store does not stall the callers (Ray Tune's event loop). The first write error is kept and
raised by ``flush`` and ``close``: a lost write must not pass silently.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any


class SerialWriter:
    """Runs queued calls on one daemon thread, in order; after a failed one, only closing calls run."""

    def __init__(self, name: str, failure: str):
        """``name``: the thread's name; ``failure``: what ``flush`` and ``close`` say when a write failed."""
        self._failure = failure
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name=name, daemon=True)
        self._thread.start()

    @property
    def error(self) -> BaseException | None:
        """The first failed write's error (None while every write succeeded)."""
        return self._error

    def put(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)``. Skipped once a write has failed: later writes build on the ones before them."""
        self._queue.put((fn, args, False))

    def put_closing(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)`` to run even after a failed write: the write that records how things ended."""
        self._queue.put((fn, args, True))

    def flush(self) -> None:
        """Wait until every queued write ran; raise if one failed."""
        self._queue.join()
        self._raise_error()

    def close(self, raise_errors: bool = True) -> None:
        """Run every queued write, then stop the thread; raise if a write failed and ``raise_errors``."""
        self._queue.join()
        self._queue.put(None)
        self._thread.join(timeout=10)
        if raise_errors:
            self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"{self._failure}: {self._error}") from self._error

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                fn, args, closing = item
                if self._error is None or closing:  # after a failed write, only the closing one
                    fn(*args)
            except BaseException as exc:  # kept and raised by flush(): a lost write must not pass silently
                self._error = exc
            finally:
                self._queue.task_done()

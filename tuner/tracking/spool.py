"""MLflow writes that wait: when the store stops answering, a study's writes go to a file in its run folder, in
order, and are replayed when the store answers again (during the study, at its end, or by ``tuner sync``).

One JSON object per line (the tracker's write and its arguments), appended and flushed one at a time, so a
driver killed while spooling loses at most the line it was writing; a torn last line is dropped on reading.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from tuner.errors import first_line

SPOOL_FILE = "mlflow-spool.jsonl"
RETRY_S = (0.5, 1.0, 2.0)
"""Pauses between the attempts at a write before it is spooled."""
REPLAY_EVERY_S = 30.0
"""While writes are spooled, how often a new write first tries to replay them."""


class Spool:
    def __init__(self, path: Path | None):
        self.path = path
        """None: nowhere to spool (writes that fail raise as before)."""
        self.pending = len(self.records())

    def append(self, op: str, args: tuple[Any, ...]) -> None:
        if self.path is None:
            raise RuntimeError("the MLflow store failed and this tracker has no spool file")
        with self.path.open("a") as out:
            out.write(json.dumps({"op": op, "args": list(args)}) + "\n")
            out.flush()
            os.fsync(out.fileno())
        self.pending += 1

    def records(self) -> list[dict[str, Any]]:
        if self.path is None or not self.path.is_file():
            return []
        records = []
        for line in self.path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # the line a killed driver was writing
                continue
        return records

    def keep(self, records: list[dict[str, Any]]) -> None:
        """What is left to replay: the file rewritten atomically, or removed when nothing is."""
        if self.path is None:
            return
        if not records:
            self.path.unlink(missing_ok=True)
        else:
            partial = self.path.with_name(f".{self.path.name}.partial")
            partial.write_text("".join(json.dumps(r) + "\n" for r in records))
            os.replace(partial, self.path)
        self.pending = len(records)


class GuardedWrites:
    """Runs a tracker's writes by name (its methods: a spooled write is replayed by the same method). When the store
    fails one, it is tried again after each of ``RETRY_S``, then spooled; once writes are spooled, later ones join
    them (they build on the ones before) until a replay succeeds, tried at most every ``REPLAY_EVERY_S`` seconds.
    A trial never fails because MLflow did."""

    def __init__(self, target: Any, spool: Spool):
        self.target, self.spool = target, spool
        self.reason = ""
        """Why the first write went to the spool."""
        self._replay_tried = 0.0

    def run(self, op: str, *args: Any) -> None:
        if self.spool.pending and not self._replay_due():
            self.spool.append(op, args)
            return
        try:
            self._with_retries(op, args)
        except Exception as exc:  # the store's error, whatever its client raises
            self.reason = self.reason or first_line(exc)
            self.spool.append(op, args)

    def replay(self) -> None:
        """Apply the spooled writes in order; what fails stays spooled (and the error is raised)."""
        records = self.spool.records()
        for done, record in enumerate(records):
            try:
                self._with_retries(record["op"], record["args"])
            except Exception:
                self.spool.keep(records[done:])
                raise
        self.spool.keep([])

    def _with_retries(self, op: str, args: Any) -> None:
        for delay in RETRY_S:
            try:
                getattr(self.target, op)(*args)
                return
            except Exception:
                time.sleep(delay)
        getattr(self.target, op)(*args)

    def _replay_due(self) -> bool:
        if time.monotonic() - self._replay_tried < REPLAY_EVERY_S:
            return False
        self._replay_tried = time.monotonic()
        try:
            self.replay()
        except Exception:  # still down: keep spooling
            return False
        return True


__all__ = ["SPOOL_FILE", "GuardedWrites", "Spool"]

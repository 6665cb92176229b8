"""MLflow writes that wait: when the store stops answering, a study's writes go to a file in its run folder, in
order, and are replayed when the store answers again (during the study, at its end, or by ``tuner sync``).

One JSON object per line (the tracker's write and its arguments), appended and flushed one at a time, so a
driver killed while spooling loses at most the line it was writing; a torn last line is dropped on reading.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

SPOOL_FILE = "mlflow-spool.jsonl"


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


__all__ = ["SPOOL_FILE", "Spool"]

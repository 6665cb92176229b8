"""The study's ``run.json``: what ``tuner status`` reads and ``tuner resume`` restarts from. Written whole and
atomically at each change of the study's status."""

from __future__ import annotations

import datetime as dt
import os
import socket
from pathlib import Path
from typing import Any

from tuner.options import RunOptions
from tuner.run_files import RUN_FILE, write_json
from tuner.schema import RunStatus
from tuner.spaces.record import record as space_record


def _now() -> str:
    return dt.datetime.now().isoformat(timespec="seconds")


class RunRecord:
    """``run.json`` of one study, kept in memory and rewritten whole at every change."""

    def __init__(self, run_dir: Path, info: dict[str, Any]):
        self.path = run_dir / RUN_FILE
        self.info = info

    @classmethod
    def start(cls, plan, options: RunOptions, fingerprint: str, gpu_probe: dict[str, Any]) -> RunRecord:
        """A new study's record (its folder is made here), or the resumed one's with this restart added.
        ``options`` are the plan's with the GPU share the cluster gives, so a resume asks for the same."""
        if plan.resume:
            info = {**plan.resume, "resumed": [*plan.resume.get("resumed", []), _now()],
                    "options": options.to_record()}  # fmt: skip
            info.pop("error", None)
        else:
            plan.run_dir.mkdir(parents=True)
            info = {"space": plan.spec.name, "name": plan.name, "started": _now(), "data_fingerprint": fingerprint,
                    "space_source": space_record(plan.space), "options": options.to_record(),
                    "tracking_uri": plan.tracking_uri}  # fmt: skip
        info.update(status=RunStatus.RUNNING, driver={"pid": os.getpid(), "host": socket.gethostname()})
        if gpu_probe:
            info["gpu_probe"] = gpu_probe
        record = cls(plan.run_dir, info)
        record.write()
        return record

    def write(self) -> None:
        write_json(self.path, self.info)

    def finished(self, **figures: Any) -> None:
        self.info.update(status=RunStatus.FINISHED, ended=_now(), **figures)
        self.write()

    def failed(self, exc: BaseException) -> None:
        """Record why the study stopped; a write that fails too (the disk that just filled up) raises OSError."""
        status = RunStatus.INTERRUPTED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED
        self.info.update(status=status, ended=_now(), error=str(exc)[:2000])
        self.write()


__all__ = ["RunRecord"]

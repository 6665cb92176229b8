"""A full disk under the results folder, met while trials run: the study stops, and says why once Tune has
stopped. Trials run on meanwhile would only fail: nothing they finish could be saved."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import Any

from tuner.errors import is_disk_full, storage_error


class DiskGuard:
    def __init__(self) -> None:
        self.error: OSError | None = None
        """The disk error that stopped the study (the search phase raises it once Tune has stopped)."""

    def write(self, write: Callable[..., None], *args: Any) -> None:
        """Run one of the monitor's writes to the results folder; a disk error stops the study."""
        try:
            write(*args)
        except OSError as exc:
            if storage_error(exc) is None:
                raise
            self.stop_for(exc)

    def trial_error(self, text: str) -> bool:
        """Whether a trial's error is the disk's (its checkpoint could not be written); if so the study stops."""
        if not is_disk_full(text):
            return False
        self.stop_for(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "a trial's checkpoint"))
        return True

    def stop_for(self, exc: OSError) -> None:
        from tuner.study.interrupt import request_stop

        if self.error is None:
            self.error = exc
            request_stop()


__all__ = ["DiskGuard"]

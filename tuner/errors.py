"""Errors the user can act on. The CLI prints them as one line and exits non-zero, never as a traceback."""

import errno
import os

STORAGE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
"""Errors of the disk under the results folder or the MLflow store, met after the start-up checks passed."""


class TunerError(Exception):
    """A problem with the user's input or environment, worded so that the user can fix it."""


class DataError(TunerError):
    """A dataset file is missing, empty or not in the expected layout."""


def first_line(exc: BaseException, default: str | None = None) -> str:
    """The first non-empty line of an exception's message (multi-line errors from Ray, pandas or pyarrow make
    unreadable one-line messages); ``default`` (else the exception's type name) when the message is empty."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return default if default is not None else type(exc).__name__


def storage_error(exc: BaseException | None) -> OSError | None:
    """The disk error behind ``exc``, also when Ray Tune, pyarrow or SQLAlchemy raised it again as their own error
    or only kept its text (a trial's error, a full SQLite file)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in STORAGE_ERRORS:
            return exc
        if is_disk_full(str(exc)):
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        exc = exc.__cause__ or exc.__context__
    return None


def is_disk_full(text: str) -> bool:
    """Whether an error's text (a trial's error message, a wrapped exception) says the disk is full."""
    return "[Errno 28]" in text or "No space left on device" in text or "database or disk is full" in text

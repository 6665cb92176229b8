"""Errors the user can act on. The CLI prints them as one line and exits non-zero, never as a traceback."""


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

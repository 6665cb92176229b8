"""Errors the user can act on. The CLI prints them as one line and exits non-zero, never as a traceback."""


class TunerError(Exception):
    """A problem with the user's input or environment, worded so that the user can fix it."""


class DataError(TunerError):
    """A dataset file is missing, empty or not in the expected layout."""

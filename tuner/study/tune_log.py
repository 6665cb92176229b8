"""Where Ray Tune's own log lines go while a study's trials run: a file in the run's folder, not the terminal.

Tune logs a trial's error, a failed upload of a checkpoint or a snapshot it could not write with a full traceback.
tuner already says each of those in one line (the trial's end, ``tuner.end_message`` in MLflow, the one line of a
full disk), so the tracebacks go to ``tune.log`` beside the study's other files, where the line can point.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

TUNE_LOG_FILE = "tune.log"
LOGGERS = ("ray.tune", "ray.train", "ray.air")
"""Ray's loggers of an experiment's run (their records otherwise reach the terminal through Ray's ``ray`` logger)."""


class _QuietFileHandler(logging.FileHandler):
    """A log file that may fail silently: on a full disk, logging's own error report would be one more traceback
    on the terminal, and the study's one-line error already says what happened."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's hook
        pass


@contextlib.contextmanager
def tune_log_to(path: Path) -> Iterator[Path]:
    """While the block runs, Ray Tune's log records go to ``path`` (appended) instead of the terminal."""
    handler = _QuietFileHandler(path, delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger(name) for name in LOGGERS]
    before = [(log.propagate, list(log.handlers)) for log in loggers]
    for log in loggers:
        log.propagate, log.handlers = False, [handler]
    try:
        yield path
    finally:
        for log, (propagate, handlers) in zip(loggers, before, strict=True):
            log.propagate, log.handlers = propagate, handlers
        try:
            handler.close()
        except OSError:  # its last lines could not be written (a full disk): the study's own error says why
            pass


__all__ = ["TUNE_LOG_FILE", "tune_log_to"]

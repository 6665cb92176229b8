"""Ctrl-C during a study: the first stops it gracefully, a second stops it at once.

Ray Tune's own SIGINT handler is turned off (``TUNE_DISABLE_SIGINT_HANDLER``, set in tuner.cluster) because it
ends ``fit()`` as if the experiment had finished and prints Ray's restore hint, which is not how a tuner study is
continued. Instead, the first Ctrl-C asks Tune to stop through the signal it always listens to (SIGUSR1): Tune
saves a last experiment snapshot and returns, its unfinished trials still unfinished in it; the phase then
raises ``StudyInterrupted``, which the study records as ``interrupted`` (no test evaluation, no export) and the
command line reports in one line with the ``tuner resume`` command. A second Ctrl-C raises KeyboardInterrupt
wherever the driver is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

TUNE_LOGGER = "ray.tune.tune"
"""Where Tune logs its "Stop signal received" and "Resume experiment with: Tuner.restore(...)" lines."""


class StudyInterrupted(KeyboardInterrupt):
    """The user stopped the study with Ctrl-C; what finished is kept and ``tuner resume`` continues it."""


def resume_command(plan) -> str:
    """The command that continues the study of ``plan`` (a ``tuner.study.plan.StudyPlan``)."""
    results = plan.options.results_dir
    where = "" if results == Path("results").resolve() else f" --results-dir {results}"
    return f"tuner resume {plan.spec.name} --name {plan.name}{where}"


@contextlib.contextmanager
def stop_on_interrupt() -> Iterator[threading.Event]:
    """While the block runs, the first SIGINT asks Ray Tune to stop gracefully and sets the event it yields."""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGUSR1"):
        yield interrupted  # signals reach the main thread only: Ctrl-C keeps Python's own behaviour
        return
    previous = signal.getsignal(signal.SIGINT)
    tune_log = logging.getLogger(TUNE_LOGGER)
    level = tune_log.level

    def first_interrupt(signum, frame) -> None:
        interrupted.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the second one stops at once
        request_stop()

    signal.signal(signal.SIGINT, first_interrupt)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)
        tune_log.setLevel(level)


def request_stop() -> None:
    """Ask Ray Tune, running in this driver, to stop the experiment gracefully: it saves a last snapshot with the
    unfinished trials unfinished and ``fit()`` returns. Tune's own stop and restore lines are not shown: they
    describe Tune, not how a tuner study is continued. (A no-op where Tune does not listen: not the main thread.)"""
    if not hasattr(signal, "SIGUSR1") or signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, None):
        return  # nobody listens: the default action would end the process
    logging.getLogger(TUNE_LOGGER).setLevel(logging.CRITICAL)
    os.kill(os.getpid(), signal.SIGUSR1)


__all__ = ["StudyInterrupted", "request_stop", "stop_on_interrupt"]

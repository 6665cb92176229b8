"""What a study changes in its process while it runs, and puts back when it ends.

A study sets environment variables that Ray, Ray Tune and MLflow read (each declared once below, with why), quiets
two of Ray Tune's internals, and may start a local Ray instance. ``study_session`` does all of it for the length of
one study (or one ``tuner sync`` / ``tuner analyze``): afterwards the environment is what it was before, Ray's
internals are as Ray left them, and a Ray instance the study started is shut down. A variable the user set keeps
the user's value; a Ray instance the user started (or joined) keeps running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

from tuner.internals import check_versions

DRIVER_SETTINGS = {
    # Tune's default CSV/JSON/TensorBoard loggers cost time on every result and duplicate what MLflow gets.
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "RAY_AIR_NEW_OUTPUT": "0",
    # Frequent experiment snapshots (below) are wanted: they are what a resumed study restarts from. Tune's warning
    # that syncing them "may become a bottleneck" is noise here.
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    # How often the experiment (trials, searcher, tuner's monitor) is snapshotted at most: `tuner resume` continues
    # from the newest snapshot, so a killed driver loses at most this much. Tune's own default adapts up from 10 s.
    "TUNE_GLOBAL_CHECKPOINT_S": "2",
    # tuner handles Ctrl-C itself (tuner.study.interrupt): Tune's handler would end the study as if it had finished.
    "TUNE_DISABLE_SIGINT_HANDLER": "1",
    # MLflow 3 reports usage to its developers from a background thread unless told not to; like Ray's usage
    # stats, tuner leaves it off unless the user turns it on (MLFLOW_DISABLE_TELEMETRY=false).
    "MLFLOW_DISABLE_TELEMETRY": "true",
    # A tracking server that stops answering: MLflow's client would retry each request for minutes (7 retries with
    # exponential backoff) while the study's writes queue up behind it. tuner retries a failed write a few times
    # itself, then spools it for replay (tuner.tracking.tracker).
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    # MLflow prints a "View run ... at: http://..." line for every run it ends on a tracking server: one per trial.
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    # Logging the chosen model copies its files with a progress bar per step; the summary says where the model went.
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
"""Environment variables this process reads while a study runs."""

RAY_START_SETTINGS = {
    # Ray reports usage to its developers unless told not to; tuner leaves it off unless the user turns it on.
    "RAY_USAGE_STATS_ENABLED": "0",
    # Tune gives its trial actors a runtime env holding PL_DISABLE_FORK=1 (for PyTorch Lightning, ray #28197). Any
    # per-actor runtime env stops Ray from placing the actor in one of the worker processes it pre-started at
    # ``ray.init``, so every study paid a fresh Python + Ray start (~1-2 s here) before its first trial. The
    # variable reaches the workers from here instead (tuner.cluster.connect), and Tune's default is dropped.
    "PL_DISABLE_FORK": "1",
    # A worker Tune reuses for the next trial first waits for the stopped trial's training thread, which ends at its
    # next epoch report. Tune waits 2 s by default; an epoch that takes longer (a loaded machine, K folds, a large
    # model) failed the next trial ("Could not re-use actor") and, with the searcher's slot never given back, left
    # the study waiting forever. Waiting out the epoch costs nothing: the worker is busy with it either way.
    "TUNE_FUNCTION_THREAD_TIMEOUT_S": "600",
}
"""Environment variables read as Ray starts: by ``ray.init`` here and by the processes it starts, the trial workers
among them (tuner.cluster.connect gives them to a local instance and to a joined cluster's workers)."""

QUIETED_LOGGERS = (
    # Tune's ResultGrid looks for result.json files that tuner does not write (metrics go to MLflow).
    "ray.tune.analysis.experiment_analysis",
    "ray.tune.result_grid",
    # "Creating initial tables..." and a database error's traceback, which tuner handles (retried, then spooled,
    # tuner.tracking.tracker) and reports in one line.
    "mlflow.store.db.utils",
)
ERRORS_ONLY_LOGGERS = (
    # A server that stops answering: tuner says so once in its summary (tuner.tracking.tracker), not per request.
    "urllib3.connectionpool",
)


@contextlib.contextmanager
def environment(settings: dict[str, str]) -> Iterator[None]:
    """The variables of ``settings`` that are not set yet, set while the block runs; every variable the block
    added or changed (ours, Ray's, MLflow's) is put back afterwards."""
    before = dict(os.environ)
    for name, value in settings.items():
        os.environ.setdefault(name, value)
    try:
        yield
    finally:
        for name in set(os.environ) - set(before):
            del os.environ[name]
        for name, value in before.items():
            if os.environ.get(name) != value:
                os.environ[name] = value


@contextlib.contextmanager
def study_session(ray: bool = True) -> Iterator[None]:
    """The settings a study needs, for the length of the block (nested sessions are one session). ``ray``: the
    block may start Ray and run Tune (False: it only talks to the MLflow store, ``tuner sync``)."""
    check_versions()
    started_ray = not _ray_running()
    loggers = {name: logging.getLogger(name) for name in (*QUIETED_LOGGERS, *ERRORS_ONLY_LOGGERS)}
    levels = {name: logger.level for name, logger in loggers.items()}
    for name, logger in loggers.items():
        logger.setLevel(logging.CRITICAL if name in QUIETED_LOGGERS else logging.ERROR)
    try:
        with environment({**DRIVER_SETTINGS, **RAY_START_SETTINGS}), _ray_internals(ray):
            try:
                yield
            finally:
                if ray and started_ray and _ray_running():
                    sys.modules["ray"].shutdown()
    finally:
        for name, logger in loggers.items():
            logger.setLevel(levels[name])


def _ray_running() -> bool:
    return "ray" in sys.modules and sys.modules["ray"].is_initialized()


@contextlib.contextmanager
def _ray_internals(apply: bool) -> Iterator[None]:
    """Two of Ray Tune's internals, changed while the block runs and put back after:

    - Tune's default per-actor env vars are dropped (see PL_DISABLE_FORK above); variables Tune propagates from
      the driver's environment (AWS keys, Train flags) still travel when set;
    - with usage stats off, Tune still imports its MLflow, W&B and Comet integrations at every ``fit`` just to count
      callback classes for telemetry: importing mlflow there held up the first trial by ~0.7 s. It is skipped.
    """
    if not apply:
        yield
        return
    from tuner.internals.ray_tune import without_callback_telemetry, without_default_actor_env

    with without_default_actor_env(), without_callback_telemetry():
        yield


__all__ = ["DRIVER_SETTINGS", "RAY_START_SETTINGS", "environment", "study_session"]

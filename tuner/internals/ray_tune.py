"""Ray Tune's internals tuner uses (see ``tuner.internals``): the state of its schedulers and of its HyperOpt
searcher, a restored Tuner's run config, and two defaults a study switches off while it runs."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

TUNE_ACTOR_ENV = {"PL_DISABLE_FORK": "1"}
"""Ray Tune's default runtime env for its trial actors (what ``without_default_actor_env`` drops)."""


@contextlib.contextmanager
def without_default_actor_env() -> Iterator[None]:
    """Tune's trial actors start without Tune's default per-actor env vars (``TUNE_ACTOR_ENV``) while the block
    runs, so Ray can place them in the worker processes it pre-started; variables Tune propagates from the
    driver's environment still travel. Tune's default is back afterwards.

    Relies on: ``ray.tune.execution.class_cache.DEFAULT_ENV_VARS``, a module-level dict Tune copies into each
    trial actor's runtime env. Why not public: Tune offers no setting for it, and any per-actor runtime env stops
    Ray from reusing a pre-started worker. A Ray whose default differs is left as it is (trials only start
    slower). Checked against Ray 2.60.0."""
    try:
        from ray.tune.execution import class_cache
    except ImportError:  # a Ray without this module: trials start as Ray decides, only slower
        class_cache = None
    if getattr(class_cache, "DEFAULT_ENV_VARS", None) != TUNE_ACTOR_ENV:
        yield
        return
    saved = dict(class_cache.DEFAULT_ENV_VARS)
    class_cache.DEFAULT_ENV_VARS.clear()
    try:
        yield
    finally:
        class_cache.DEFAULT_ENV_VARS.update(saved)


def restore_default_actor_env() -> None:
    """Put Tune's default per-actor env vars (``TUNE_ACTOR_ENV``) in place, as plain Ray Tune runs with them (a
    benchmark's baseline). Relies on what ``without_default_actor_env`` does. Checked against Ray 2.60.0."""
    from ray.tune.execution import class_cache

    class_cache.DEFAULT_ENV_VARS.update(TUNE_ACTOR_ENV)


@contextlib.contextmanager
def without_callback_telemetry() -> Iterator[None]:
    """With Ray's usage stats off (``RAY_USAGE_STATS_ENABLED=0``), Tune skips counting the study's callback
    classes while the block runs: it imports its MLflow, W&B and Comet integrations at every ``fit`` only for
    that count (importing mlflow there held up the first trial by ~0.7 s).

    Relies on: ``ray.air._internal.usage.tag_callbacks``, looked up on the module at each ``fit``. Why not public:
    turning usage stats off does not skip the imports. Checked against Ray 2.60.0."""
    try:
        from ray.air._internal import usage
    except ImportError:  # a Ray without this module: Tune counts its callbacks as it does
        usage = None
    if not hasattr(usage, "tag_callbacks") or os.environ.get("RAY_USAGE_STATS_ENABLED") != "0":
        yield
        return
    original = usage.tag_callbacks
    usage.tag_callbacks = lambda callbacks: False
    try:
        yield
    finally:
        usage.tag_callbacks = original


def restored_run_config(tuner: Any) -> Any:
    """The ``RunConfig`` (its callbacks as Tune unpickled them) of a ``tune.Tuner.restore``d Tuner; None under Ray
    Client, which tuner does not use.

    Relies on: ``Tuner._local_tuner.get_run_config()``. Why not public: a restored Tuner does not hand out its
    run config, and the callbacks in it (tuner's monitor with the study's scheduler) are the ones the restored
    study runs with. Checked against Ray 2.60.0."""
    internal = getattr(tuner, "_local_tuner", None)
    return internal.get_run_config() if internal is not None else None


def median_rule_results(rule: Any) -> dict[Any, list[dict[str, Any]]]:
    """The results ``MedianStoppingRule`` compares trials by: Trial (or, once restored, trial id) -> its results,
    the dict itself (changing it changes the rule's state).

    Relies on: ``MedianStoppingRule._results``. Why not public: Tune's schedulers have no state API and its
    experiment snapshots leave schedulers out. Checked against Ray 2.60.0."""
    return rule._results


def median_rule_keys(rule: Any) -> tuple[str, str]:
    """(time attribute, metric) of a ``MedianStoppingRule``: the only keys of a result it compares.

    Relies on: ``MedianStoppingRule._time_attr`` and ``_metric``. Why not public: the rule keeps its arguments
    private. Checked against Ray 2.60.0."""
    return rule._time_attr, rule._metric


def asha_state(scheduler: Any) -> dict[str, Any]:
    """The whole state of an ``AsyncHyperBandScheduler`` (ASHA): its attributes, which are plain (brackets of
    rungs of trial ids and values) and travel in a pickle as they are.

    Relies on: the scheduler keeping all its state in its instance attributes (``vars``). Why not public: Tune's
    schedulers have no state API and its experiment snapshots leave schedulers out. Checked against Ray 2.60.0."""
    return dict(vars(scheduler))


def restore_asha_state(scheduler: Any, state: dict[str, Any]) -> None:
    """Set an ``AsyncHyperBandScheduler`` to a state ``asha_state`` returned. Relies on what ``asha_state`` does.
    Checked against Ray 2.60.0."""
    vars(scheduler).update(state)


def hyperopt_trials(searcher: Any) -> Any:
    """The ``hyperopt.Trials`` of Ray Tune's ``HyperOptSearch`` (its record of finished trials, which TPE learns
    from), set once Tune has given the searcher its space.

    Relies on: ``HyperOptSearch._hpopt_trials``. Why not public: Tune takes earlier points to evaluate, not their
    scores. Checked against Ray 2.60.0 with hyperopt 0.3.0."""
    return searcher._hpopt_trials


def hyperopt_point(searcher: Any, config: dict[str, Any]) -> dict[str, Any]:
    """``config`` as HyperOpt records it: a choice by its index in its list of values.

    Relies on: ``HyperOptSearch._convert_categories_to_indices`` (converts a point in place). Why not public: Tune
    converts points to evaluate only inside the searcher. Checked against Ray 2.60.0."""
    point = dict(config)
    searcher._convert_categories_to_indices(point)
    return point


__all__ = [
    "TUNE_ACTOR_ENV",
    "asha_state",
    "hyperopt_point",
    "hyperopt_trials",
    "median_rule_keys",
    "median_rule_results",
    "restore_asha_state",
    "restore_default_actor_env",
    "restored_run_config",
    "without_callback_telemetry",
    "without_default_actor_env",
]

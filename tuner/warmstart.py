"""``tuner run SPACE --warm-start REF [REF ...]``: earlier studies' trials, as points of this study's space.

A reference is ``RUN`` (a run of the same space) or ``SPACE:RUN`` (SPACE: any space reference, ``tuner.spaces``).
The trials come from the run's progress file (``progress.json``: each trial's config and score, written while the
study ran). A run qualifies when it searched the same metric in the same direction and shares at least one parameter
with this space. Each trial with a score becomes a point of this space: parameters this space does not have are left
out, a parameter the earlier study did not have takes its grid default (``SpaceSpec.complete_config``), and a trial
with a value outside this space's domain is dropped and counted. ``tuner.search.build_search`` hands the points to
the searcher."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tuner.errors import TunerError
from tuner.run_files import PROGRESS_FILE, read_json
from tuner.schema import TrialStatus
from tuner.spaces import space_name
from tuner.spec import SpaceSpec
from tuner.status import find_run

Points = list[tuple[dict[str, Any], float]]


def warm_start(plan, echo: Callable[[str], None] = print) -> Points:
    """The warm-start points of a new study's plan (``tuner.study.plan.StudyPlan``); none without --warm-start."""
    opts = plan.options
    if not opts.warm_start:
        return []
    if plan.fixed_config is not None:
        raise TunerError("--warm-start feeds a search's searcher; --config trains one config, there is no search")
    return warm_points(plan.spec, tuple(opts.warm_start), opts.results_dir, opts.searcher, echo)


def warm_points(
    spec: SpaceSpec, refs: tuple[str, ...], results_dir: Path, searcher: str, echo: Callable[[str], None] = print
) -> Points:
    """The (config, score) of every scored trial of the runs ``refs`` name, as complete points of ``spec``."""
    if not refs:
        return []
    if searcher == "grid":
        raise TunerError(
            "--warm-start: a grid does not learn from earlier trials; use --searcher random, hyperopt "
            "or an optuna* searcher"
        )
    points: Points = []
    dropped = 0
    for ref in refs:
        trials = _scored_trials(spec, ref, results_dir)
        for config, score in trials:
            point = _as_point(spec, config)
            if point is None:
                dropped += 1
            else:
                points.append((point, score))
    note = f"; {dropped} dropped (a value outside this space's domains)" if dropped else ""
    echo(f"warm start: {len(points)} earlier trial(s) from {', '.join(refs)}{note}")
    return points


def _scored_trials(spec: SpaceSpec, ref: str, results_dir: Path) -> list[tuple[dict[str, Any], float]]:
    """The ended trials with a score of the run ``ref`` names; a run of another metric, or without any parameter
    of ``spec``, is an error."""
    space, _, run = ref.rpartition(":")
    if not run:
        raise TunerError(f"--warm-start {ref!r}: give RUN or SPACE:RUN")
    try:
        space = space_name(space, results_dir.resolve()) if space else spec.name
    except TunerError as exc:
        raise TunerError(f"--warm-start {ref}: {exc}") from None
    try:
        run_dir = find_run(results_dir.resolve(), space, run)
    except TunerError as exc:
        raise TunerError(f"--warm-start {ref}: {exc}") from None
    if not (run_dir / PROGRESS_FILE).exists():
        raise TunerError(f"--warm-start {ref}: the run has no trials yet ({run_dir / PROGRESS_FILE} is missing)")
    progress = read_json(run_dir / PROGRESS_FILE, "progress file")
    if (progress.get("metric"), progress.get("mode")) != (spec.metric, spec.mode):
        raise TunerError(
            f"--warm-start {ref}: that run searched {progress.get('metric')} ({progress.get('mode')}); "
            f"accepted: runs that searched {spec.metric} ({spec.mode}) like {spec.name}"
        )
    trials = [
        t for t in progress.get("trials", []) if t.get("score") is not None and t["status"] != TrialStatus.RUNNING
    ]
    names = {name for t in trials for name in t["config"]}
    if trials and not names & set(spec.param_names):
        raise TunerError(
            f"--warm-start {ref}: its parameters ({', '.join(sorted(names))}) share none with "
            f"{spec.name} ({', '.join(spec.param_names)})"
        )
    return [(t["config"], float(t["score"])) for t in trials]


def _as_point(spec: SpaceSpec, config: dict[str, Any]) -> dict[str, Any] | None:
    """``config`` as a complete point of ``spec``; None when one of its values is outside this space's domain."""
    shared = {name: value for name, value in config.items() if name in spec.param_names}
    if any(not spec.param(name).domain.contains(value) for name, value in shared.items()):
        return None
    return spec.complete_config(spec.active_config(spec.complete_config(shared)))


__all__ = ["Points", "warm_points", "warm_start"]

"""``tuner extend SPACE [--name RUN] --trials N``: N more trials in a finished study.

The study continues as ``tuner resume`` continues one: Ray Tune restores the experiment (its searcher, scheduler
and tuner's monitor from their saved state), the MLflow parent run is reopened, trial numbers go on, and the later
phases run again over all trials (verify, baseline, evaluate, export: ``trials.csv`` covers every trial).

Ray Tune restores an experiment exactly as it was saved, its trial budget included (``Tuner.restore`` takes no
new ``num_samples``). The budget lives in the saved state of Tune's search algorithm: the search generator that
wraps the model-based searchers (HyperOpt, Optuna), or the variant generator of random search. Raising it there
lets the restored experiment ask the searcher, with everything it learnt (random search: its random stream), for
N more trials. A grid has no more points to give and is not extended.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path

from tuner.errors import TunerError
from tuner.internals.tune_files import raise_search_budget
from tuner.schema import RunStatus
from tuner.status import run_state
from tuner.storage import SEARCH_EXPERIMENT, is_uri, study_root

EXTENDABLE = ("random", "hyperopt", "optuna", "optuna_grouped", "optuna_gp", "optuna_cmaes")


def extend_study(space, name: str | None, results_dir: Path, trials: int, echo: Callable[[str], None] = print):
    """Run ``trials`` more trials in the finished study ``name`` (default: the latest) of ``space`` (a reference,
    a spec object or a resolved space)."""
    from tuner.study import check_resumable, run_study, stored_study

    if trials < 1:
        raise TunerError(f"--trials must be at least 1, got {trials}")
    found, info, options = stored_study(space, name, results_dir, echo)
    space = found.spec.name
    run, state = info["name"], run_state(info)
    if state != RunStatus.FINISHED:
        hint = "stop its driver first" if state.startswith(RunStatus.RUNNING) else f"tuner resume {space} first"
        if state == RunStatus.FAILED:
            hint = f"start it again with tuner run {space}"
        raise TunerError(f"run {run} of {space} is {state}; extend takes a finished study ({hint})")
    if options.config_file is not None:
        raise TunerError(f"run {run} of {space} trained one config (--config); there is no search to extend")
    if options.searcher not in EXTENDABLE:
        raise TunerError(
            f"run {run} of {space} searched with {options.searcher}; extend takes a study of "
            f"{', '.join(EXTENDABLE)} (a grid has no more points to give)"
        )
    if options.time_budget:  # Tune restores its time budget as it was spent: the extension would run no trial
        raise TunerError(
            f"run {run} of {space} was limited by --time-budget {options.time_budget:g}s, which Ray "
            f"Tune keeps spent when it restores the study; extend takes a study limited by its trial "
            f"count"
        )
    check_resumable(space, run, options)
    root = study_root(options.storage, options.results_dir.resolve(), space, run)
    if is_uri(root):
        raise TunerError(f"run {run} of {space} keeps its state at {root}; extend needs it in a local folder")
    total = raise_search_budget(Path(root) / SEARCH_EXPERIMENT, trials)
    echo(f"extending run {run} of {space} by {trials} trial(s), to {total}")
    extended = [*info.get("extended", []), {"at": dt.datetime.now().isoformat(timespec="seconds"), "trials": trials}]
    options = dataclasses.replace(options, trials=total)
    return run_study(found, options, echo, resume={**info, "extended": extended})


__all__ = ["EXTENDABLE", "extend_study"]

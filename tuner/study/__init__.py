"""A study is a list of phases, each a module of this package with one job:

    plan      options + the space's defaults + a resumed study's record -> one frozen StudyPlan (nothing written)
    prepare   data, Ray and the GPU share, run.json, the MLflow parent run (a failure from here on is recorded)
    search    the trials, run by Ray Tune and watched by tuner's monitor
    evaluate  the best trial on the held-out test split (and the top-k ensemble)
    export    best_config.json, trials.csv, the parent run closed, the summary

A new phase is one module here and one line in ``run_study``; it reads the ``Study`` that ``prepare`` made and the
results of the phases before it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tuner.options import RunOptions
from tuner.spec import SpaceSpec
from tuner.study.evaluate import evaluate
from tuner.study.export import StudyResult, export
from tuner.study.fit import search
from tuner.study.plan import resolve
from tuner.study.prepare import prepare


def run_study(
    spec: SpaceSpec, options: RunOptions, echo: Callable[[str], None] = print, resume: dict[str, Any] | None = None
) -> StudyResult:
    """Run a study; with ``resume`` (its run record, see ``resume_study``) continue an interrupted one."""
    plan = resolve(spec, options, resume)
    with prepare(plan, echo) as study:
        trials = search(study)
        figures = evaluate(study, trials)
        return export(study, trials, figures)


def resume_study(space: str, name: str | None, results_dir: Path, echo: Callable[[str], None] = print) -> StudyResult:
    """``tuner resume``: continue a study whose driver stopped (killed, machine restarted, interrupted)."""
    import search_spaces
    from tuner.errors import TunerError
    from tuner.export import RUN_FILE, read_json
    from tuner.schema import RunStatus
    from tuner.status import find_run, run_state
    from tuner.storage import has_state, study_root

    run_dir = find_run(results_dir.resolve(), space, name)
    info = read_json(run_dir / RUN_FILE, "run record")
    state = run_state(info)
    if state == RunStatus.FINISHED:
        raise TunerError(f"run {run_dir.name} of {space} already finished; nothing to resume (tuner export {space})")
    if state.startswith(RunStatus.RUNNING):
        raise TunerError(f"run {run_dir.name} of {space} is still running ({state}); stop its driver first")
    options = RunOptions.from_record(dict(info.get("options") or {}), run_dir.name)
    if not has_state(study_root(options.storage, options.results_dir.resolve(), space, run_dir.name)):
        raise TunerError(f"run {run_dir.name} stopped before Ray Tune saved its state; start it again with tuner run")
    return run_study(search_spaces.get(space), options, echo, resume=info)


__all__ = ["RunOptions", "StudyResult", "resume_study", "run_study"]

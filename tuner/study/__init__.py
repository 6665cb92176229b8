"""A study is a list of phases, each a module of this package with one job:

    plan      options + the space's defaults + a resumed study's record -> one frozen StudyPlan (nothing written)
    prepare   data, Ray and the GPU share, run.json, the MLflow parent run (a failure from here on is recorded)
    search    the trials, run by Ray Tune and watched by tuner's monitor
    verify    the top configs trained again with fresh seeds; the best mean is chosen
    baseline  the report's own config on this study's split
    evaluate  the chosen trial and the baseline on the held-out test split, with bootstrap intervals
    references untuned standard models on the same split; every difference with a paired bootstrap interval
    publish   the chosen model as an MLflow model in the parent run (registered with --register NAME)
    analyze   why the search found what it found: importance, figures, a summary (run folder's analysis/)
    export    best_config.json, trials.csv, the parent run closed, the summary
    tidy      the checkpoints no later command reads deleted; what the run folder holds

A new phase is one module here and one line in ``run_study``; it reads the ``Study`` that ``prepare`` made and the
results of the phases before it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tuner.errors import TunerError
from tuner.options import RunOptions
from tuner.run_files import RUN_FILE, read_json
from tuner.schema import RunStatus
from tuner.session import study_session
from tuner.spaces import Space, study_space
from tuner.spec import SpaceSpec
from tuner.status import run_state
from tuner.storage import has_state, study_root
from tuner.study.analyze import analyze
from tuner.study.baseline import baseline
from tuner.study.evaluate import evaluate
from tuner.study.export import StudyResult, export
from tuner.study.plan import resolve
from tuner.study.prepare import prepare
from tuner.study.publish import publish
from tuner.study.references import references
from tuner.study.search import search
from tuner.study.tidy import kept_top, tidy
from tuner.study.verify import verify

SpaceArg = str | SpaceSpec | Space
"""A space reference (``tuner.spaces``), a spec object, or a resolved space."""


@study_session()
def run_study(
    space: SpaceArg, options: RunOptions, echo: Callable[[str], None] = print, resume: dict[str, Any] | None = None
) -> StudyResult:
    """Run a study; with ``resume`` (its run record, see ``resume_study``) continue an interrupted one."""
    from tuner.warmstart import warm_start

    plan = resolve(space, options, resume)
    warm = [] if resume else warm_start(plan, echo)  # a resumed searcher has the points in its saved state
    with prepare(plan, echo) as study:
        trials = search(study, warm)
        checked = verify(study, trials)
        reference = baseline(study, trials)
        figures = evaluate(study, trials, checked.chosen, reference)
        figures = references(study, figures, reference)
        model = publish(study, figures)  # first: the model's test figures are then the parent's first metrics
        analyze(study, trials, figures)
        result = export(study, trials, checked, figures, model)
        tidy(study, trials, checked, reference)
        return result


def resume_study(
    space: SpaceArg, name: str | None, results_dir: Path, echo: Callable[[str], None] = print
) -> StudyResult:
    """``tuner resume``: continue a study whose driver stopped (killed, machine restarted, interrupted)."""
    found, info, options = stored_study(space, name, results_dir, echo)
    space = found.spec.name
    state = run_state(info)
    if state == RunStatus.FINISHED:
        raise TunerError(f"run {info['name']} of {space} already finished; nothing to resume (tuner export {space})")
    if state.startswith(RunStatus.RUNNING):
        raise TunerError(f"run {info['name']} of {space} is still running ({state}); stop its driver first")
    check_resumable(space, info["name"], options)
    return run_study(found, options, echo, resume=info)


def verify_study(
    space: SpaceArg, name: str | None, results_dir: Path, top: int, seeds: int, echo: Callable[[str], None] = print
) -> StudyResult:
    """``tuner verify``: re-verify the top configs of a finished study (as its verify phase does) and export the
    config with the best mean again. The study is continued from Ray Tune's snapshot: its search trials stay."""
    found, info, options = stored_study(space, name, results_dir, echo)
    space = found.spec.name
    if run_state(info) != RunStatus.FINISHED:
        raise TunerError(
            f"run {info['name']} of {space} is {run_state(info)}; verify takes a finished study "
            f"(tuner resume {space} --name {info['name']} first)"
        )
    if options.config_file is not None:
        raise TunerError(f"run {info['name']} of {space} trained one config (--config); there is nothing to verify")
    kept = kept_top(info)
    if kept is not None and top > kept:
        raise TunerError(
            f"--top {top}: run {info['name']} of {space} kept the weights of its top {kept} trial(s) "
            f"only (it finished without --keep-checkpoints); give --top {kept} or less"
        )
    check_resumable(space, info["name"], options)
    options = dataclasses.replace(options, verify_top=top, verify_seeds=seeds)
    return run_study(found, options, echo, resume=info)


@study_session(ray=False)
def sync_study(space: SpaceArg, name: str | None, results_dir: Path, echo: Callable[[str], None] = print) -> int:
    """``tuner sync``: write to MLflow what a study could not (its spool, ``tuner.tracking.spool``); the number of
    records written."""
    from tuner.errors import first_line
    from tuner.run_files import BEST_CONFIG_FILE
    from tuner.study.publish import record_synced_model
    from tuner.tracking import StudyTracker
    from tuner.tracking.check import check_store
    from tuner.tracking.spool import SPOOL_FILE

    run_dir = find_study(space, name, results_dir)
    info = read_json(run_dir / RUN_FILE, "run record")
    space, uri = run_dir.parent.name, info["tracking_uri"]
    tracker = StudyTracker(uri, space, spool=run_dir / SPOOL_FILE)
    if not tracker.guard.spool.pending:
        tracker.close()
        echo(f"run {info['name']} of {space}: nothing waits to be written to MLflow")
        return 0
    check_store(uri)
    try:
        written = tracker.sync(str(run_dir))
        if record_synced_model(run_dir, tracker):
            echo(f"MLflow model: {tracker.model['uri']} (recorded in {run_dir / BEST_CONFIG_FILE})")
        tracker.close()
    except RuntimeError as exc:
        tracker.close(raise_errors=False)
        raise TunerError(
            f"the MLflow store {uri} still fails ({first_line(exc)}); {tracker.guard.spool.pending} "
            f"record(s) still wait in {tracker.guard.spool.path}"
        ) from None
    echo(f"run {info['name']} of {space}: wrote {written} waiting record(s) to MLflow at {uri}")
    return written


def find_study(space: SpaceArg, name: str | None, results_dir: Path) -> Path:
    """The run folder of a study (``name``, or the latest) of the space a reference names; only its name is needed
    (a name with runs under ``results_dir`` is not imported)."""
    from tuner.spaces import space_name
    from tuner.status import find_run

    results_dir = results_dir.resolve()
    label = space.name if isinstance(space, SpaceSpec) else space.spec.name if isinstance(space, Space) else None
    return find_run(results_dir, label or space_name(str(space), results_dir), name)


def stored_study(
    space: SpaceArg, name: str | None, results_dir: Path, echo: Callable[[str], None] = print
) -> tuple[Space, dict[str, Any], RunOptions]:
    """A study's space, run record and the options it was started with. A space whose parameters, metric or mode
    changed since the run started is refused; changed code is said in one line."""
    from tuner.spaces.record import check_unchanged

    found, run_dir = study_space(space, results_dir.resolve(), name)
    info = {"name": run_dir.name, **read_json(run_dir / RUN_FILE, "run record")}
    for warning in check_unchanged(found, info.get("space_source"), run_dir.name):
        echo(warning)
    return found, info, RunOptions.from_record(dict(info.get("options") or {}), run_dir.name)


def check_resumable(space: str, name: str, options: RunOptions) -> None:
    """A one-line error unless Ray Tune saved the study's state (``resume``, ``verify`` and ``extend`` restore it)."""
    if not has_state(study_root(options.storage, options.results_dir.resolve(), space, name)):
        raise TunerError(f"run {name} stopped before Ray Tune saved its state; start it again with tuner run")


__all__ = ["RunOptions", "SpaceArg", "StudyResult", "check_resumable", "find_study", "resume_study", "run_study",
           "stored_study", "sync_study", "verify_study"]  # fmt: skip

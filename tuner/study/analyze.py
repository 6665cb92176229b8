"""The analyze phase: why the study found what it found (``tuner.analysis``), written to the run's ``analysis/``
folder and logged to the parent run (``importance.<param>`` metrics, the folder as artifacts under ``analysis/``).
``tuner analyze`` does the same for a finished study.

The analysis explains a study; it must never lose one: a failure is one line naming a log file with its
traceback, and the study goes on to its export.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path

from tuner.errors import TunerError, first_line
from tuner.schema import RunStatus
from tuner.session import study_session
from tuner.study.prepare import Study
from tuner.study.search import SearchResult

ERROR_LOG = "analysis-error.log"
ARTIFACT_PATH = "analysis"


def analyze(study: Study, trials: SearchResult, figures=None) -> None:
    """Write the study's analysis and log it to its parent run; the export prints its summary. ``figures``: the
    evaluate phase's (``tuner.study.evaluate.Evaluation``): the chosen trial and its test figures."""
    from tuner.analysis import write_analysis
    from tuner.study.export import chosen_record

    plan = study.plan
    if plan.fixed_config is not None or not trials.ledger.outcomes:
        return  # one given config: nothing was searched
    try:
        study.tracker.flush()  # the learning curves are read back from the store: every epoch written first
        chosen = chosen_record(figures, study.data) if figures is not None else None
        analysis = write_analysis(
            plan.spec, plan.run_dir, plan.study_root, plan.tracking_uri, study.tracker.parent_id, chosen
        )
        study.tracker.log_to_parent(analysis.metrics(), str(analysis.folder), ARTIFACT_PATH)
    except Exception as exc:
        study.echo(
            f"warning: the analysis failed ({type(exc).__name__}: {first_line(exc)[:200]}); the study "
            f"goes on without it (traceback in {_log_traceback(plan.run_dir)})"
        )


@study_session(ray=False)
def analyze_study(space, name: str | None, results_dir: Path, echo: Callable[[str], None] = print) -> Path:
    """``tuner analyze``: (re)write a finished study's analysis, log it to its parent run when the store answers,
    print its summary; the analysis folder. ``space``: a reference, a spec object or a resolved space."""
    from tuner.analysis import PAGE_FILE, write_analysis
    from tuner.run_files import BEST_CONFIG_FILE, read_json
    from tuner.status import run_state
    from tuner.storage import study_root
    from tuner.study import stored_study

    found, info, _ = stored_study(space, name, results_dir, echo)
    spec, space = found.spec, found.spec.name
    run_dir = results_dir.resolve() / space / info["name"]
    if run_state(info) != RunStatus.FINISHED:
        raise TunerError(f"run {run_dir.name} of {space} is {run_state(info)}; analyze takes a finished study")
    storage = (info.get("options") or {}).get("storage")
    uri = info.get("tracking_uri")
    exported = run_dir / BEST_CONFIG_FILE
    chosen = read_json(exported, "the study's export") if exported.exists() else None
    root = study_root(storage, results_dir.resolve(), space, run_dir.name)
    analysis = write_analysis(spec, run_dir, root, uri, chosen=chosen)
    echo(analysis.summary)
    echo(f"analysis written to {analysis.folder} (open {analysis.folder / PAGE_FILE})")
    echo(_log_to_store(space, run_dir, uri, analysis))
    return analysis.folder


def _log_to_store(space: str, run_dir: Path, uri: str | None, analysis) -> str:
    """Log the analysis to the study's parent run; what happened, in one line."""
    from tuner.tracking import StudyTracker
    from tuner.tracking.check import check_store
    from tuner.tracking.spool import SPOOL_FILE

    if not uri:
        return "MLflow: the run record names no store; the analysis is only in the folder"
    try:
        check_store(uri)
        tracker = StudyTracker(uri, space, spool=run_dir / SPOOL_FILE)
        try:
            tracker.sync(str(run_dir))  # finds the parent run (and writes first what waited for the store)
            tracker.log_to_parent(analysis.metrics(), str(analysis.folder), ARTIFACT_PATH)
            tracker.flush()
            waiting = tracker.guard.spool.pending
        finally:
            tracker.close(raise_errors=False)
    except Exception as exc:  # the folder is written; the store is a copy of it
        return f"MLflow: not logged, the store {uri} did not answer ({first_line(exc)[:200]})"
    if waiting:
        return f"MLflow: the store failed; {waiting} record(s) wait in {run_dir / SPOOL_FILE} (tuner sync {space})"
    return f"MLflow: logged to the parent run at {uri} (artifacts {ARTIFACT_PATH}/, metrics importance.*)"


def _log_traceback(run_dir: Path) -> Path:
    """The traceback being handled, in the run's folder (the system's temporary folder if that fails)."""
    import tempfile

    text = traceback.format_exc()
    for log in (run_dir / ERROR_LOG, Path(tempfile.gettempdir()) / f"tuner-{run_dir.name}-{ERROR_LOG}"):
        try:
            log.write_text(text)
            return log
        except OSError:
            continue
    return log


__all__ = ["analyze", "analyze_study"]

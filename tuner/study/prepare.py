"""The prepare phase: the data, Ray (and the GPU share), the run record and the MLflow parent run of a study.

Until the run record is written nothing is: a missing data file, a cluster without the GPUs asked for or a probe
trial too big leave no run folder and no MLflow run. From then on the study's failure (or interrupt) is recorded
in ``run.json`` and on the parent run before it propagates.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.cluster import ClusterInfo
from tuner.datasets import LoadedData, load_dataset
from tuner.errors import TunerError
from tuner.run_files import git_commit
from tuner.schema import (
    DATA_FINGERPRINT_TAG,
    DATA_SOURCE_TAG,
    DATA_SYNTHETIC_TAG,
    GIT_COMMIT_TAG,
    MLFLOW_FAILED,
    MLFLOW_KILLED,
    MODE_TAG,
    REPORT_TAG,
    RUN_DIR_TAG,
    SCHEDULER_TAG,
    SEARCHER_TAG,
    SEED_TAG,
    SOURCE_GIT_COMMIT_TAG,
    SOURCE_NAME_TAG,
    SOURCE_TYPE,
    SOURCE_TYPE_TAG,
    SPACE_TAG,
    USER_TAG,
)
from tuner.storage import is_uri
from tuner.study.interrupt import StudyInterrupted, resume_command
from tuner.study.placement import place
from tuner.study.plan import StudyPlan
from tuner.study.record import RunRecord


@dataclass(frozen=True)
class Study:
    """A prepared study: what the search, evaluation and export phases work with."""

    plan: StudyPlan
    data: LoadedData | None
    cluster: ClusterInfo
    """The cluster; its ``gpus_per_trial`` is the share every trial gets."""
    tracker: Any
    """The study's MLflow writer (``tuner.tracking.StudyTracker``)."""
    record: RunRecord
    commit: str
    echo: Callable[[str], None]
    started: float = dataclasses.field(default_factory=time.monotonic)

    @property
    def fingerprint(self) -> str:
        return self.data.fingerprint if self.data else "none"


@contextlib.contextmanager
def prepare(plan: StudyPlan, echo: Callable[[str], None]) -> Iterator[Study]:
    """The prepared study; a failure inside the block is recorded as the study's end, then raised again."""
    started = time.monotonic()
    _check_results_folders(plan)
    echo(_starting(plan))
    # The data loads (or is generated) on a thread of its own while Ray starts: Ray's start mostly waits on the
    # processes it launches. The MLflow store is opened once the data loaded (a data error leaves no store
    # behind), on the tracker's own thread, also while Ray starts.
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tuner-data")
    loading = pool.submit(_load_ahead, plan)
    pool.shutdown(wait=False)  # its one thread ends with the load
    try:
        cluster, gpu_probe = place(plan, lambda: loading.result()[0], echo)
    except BaseException:  # no study: a tracker opened meanwhile holds no run, and its thread ends here
        with contextlib.suppress(BaseException):
            loading.result()[2].close(raise_errors=False)
        raise
    data, commit, tracker = loading.result()
    options = dataclasses.replace(plan.options, gpus_per_trial=cluster.gpus_per_trial)
    record = RunRecord.start(plan, options, data.fingerprint if data else "none", gpu_probe)
    study = Study(plan, data, cluster, tracker, record, commit, echo, started)
    try:
        _open_parent_run(study, gpu_probe)
        yield study
    except StudyInterrupted as exc:
        _record_failure(study, exc)
        raise
    except KeyboardInterrupt as exc:  # outside a Tune experiment: say as well what is kept and how to continue
        _record_failure(study, exc)
        raise StudyInterrupted(
            f"interrupted; the trials that ended are kept. Continue with: {resume_command(plan)}"
        ) from None
    except BaseException as exc:
        _record_failure(study, exc)
        raise


def _check_results_folders(plan: StudyPlan) -> None:
    storage = plan.options.storage
    if storage is not None and not is_uri(storage) and not plan.resume:
        _check_writable(Path(storage), "--storage folder")
    if plan.resume:
        return
    if plan.run_dir.exists():
        raise TunerError(f"run {plan.name!r} already exists in {plan.run_dir.parent}; choose another --name")
    _check_writable(plan.options.results_dir, "results folder")


def _check_writable(folder: Path, what: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-probe-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise TunerError(f"{what} {folder} is not writable: {exc.strerror}") from None


def _starting(plan: StudyPlan) -> str:
    """The line said while the slow part of the start runs (Ray's start, the data, the store)."""
    opts = plan.options
    ray = (
        f"joining Ray at {opts.address}"
        if opts.address
        else (f"starting a local Ray instance{' with its dashboard' if opts.dashboard else ''}")
    )
    data = f", loading the {plan.spec.dataset} data" if plan.spec.dataset else ""
    data += " (generated on first use without --data)" if plan.spec.dataset and opts.data is None else ""
    return f"tuner {plan.spec.name}: {ray}{data}, opening the MLflow store ..."


def _load_ahead(plan: StudyPlan) -> tuple[LoadedData | None, str, Any]:
    """The study's data, the commit of tuner's code, and the study's MLflow writer (``tuner.tracking.StudyTracker``),
    which opens the store on its own thread: importing MLflow and opening a store take seconds of CPU."""
    from tuner.tracking import StudyTracker
    from tuner.tracking.spool import SPOOL_FILE

    data = _load_data(plan)
    commit = git_commit()
    tracker = StudyTracker(
        plan.tracking_uri,
        plan.spec.name,
        plan.options.results_dir / "mlartifacts" if plan.default_store else None,
        spool=plan.run_dir / SPOOL_FILE,
        run_tags=source_tags(plan, commit),
    )
    return data, commit, tracker


def _load_data(plan: StudyPlan) -> LoadedData | None:
    spec, opts = plan.spec, plan.options
    if not spec.dataset:
        return None
    data = load_dataset(spec.dataset, opts.data, spec.data_options, opts.results_dir / ".data")
    recorded = (plan.resume or {}).get("data_fingerprint")
    if recorded not in (None, data.fingerprint):
        raise TunerError(
            f"the data of run {plan.name} changed since it started (fingerprint {recorded} -> {data.fingerprint}); "
            f"a study cannot continue on other data: start a new run"
        )
    return data


def _open_parent_run(study: Study, gpu_probe: dict[str, Any]) -> None:
    """Start the study's MLflow parent run, or find a resumed study's (a store that lost it fails here, before any
    trial runs), and print the study's header."""
    from tuner.study_text import print_header
    from tuner.ui import ui_hint

    plan, tracker = study.plan, study.tracker
    if plan.resume:
        tracker.resume_parent(str(plan.run_dir))
        tracker.flush()
        study.echo(f"resuming run {plan.name}: {len(tracker.children)} trial run(s) in MLflow so far")
    else:
        tracker.start_parent(plan.name, _parent_params(study, gpu_probe), _parent_tags(study))
    if study.data is not None:
        tracker.use_dataset(plan.spec.dataset, study.fingerprint, study.data.source, study.data.synthetic)
    tracker.flush()  # the experiment's id, for the UI's address (and a parent run that could not start fails here)
    ui = ui_hint(plan.tracking_uri, plan.spec.name, plan.options.results_dir, tracker.experiment_id)
    print_header(study.echo, plan, study.data, study.cluster, ui)


def source_tags(plan: StudyPlan, commit: str) -> dict[str, str]:
    """MLflow's own tags of where a run comes from, on the parent and every child run: the command, the user, the
    commit of tuner's code."""
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (some containers)
        user = str(os.getuid())
    tags = {SOURCE_NAME_TAG: f"tuner run {plan.spec.name}", SOURCE_TYPE_TAG: SOURCE_TYPE, USER_TAG: user}
    if commit and commit != "unknown":
        tags[SOURCE_GIT_COMMIT_TAG] = commit.removesuffix("-dirty")
    return tags


def _parent_tags(study: Study) -> dict[str, str]:
    plan, data = study.plan, study.data
    return {
        SPACE_TAG: plan.spec.name,
        REPORT_TAG: plan.spec.report,
        SEARCHER_TAG: str(plan.options.searcher),
        SCHEDULER_TAG: str(plan.options.scheduler),
        SEED_TAG: str(plan.options.seed),
        GIT_COMMIT_TAG: study.commit,
        DATA_FINGERPRINT_TAG: study.fingerprint,
        RUN_DIR_TAG: str(plan.run_dir),
        DATA_SYNTHETIC_TAG: str(data.synthetic if data else False).lower(),
        DATA_SOURCE_TAG: data.source if data else "none",
        MODE_TAG: "fixed-config" if plan.fixed_config else "search",
    }


def _parent_params(study: Study, gpu_probe: dict[str, Any]) -> dict[str, Any]:
    spec, opts = study.plan.spec, study.plan.options
    return {
        "trials": opts.trials, "max_epochs": spec.max_epochs, "cpus_per_trial": opts.cpus_per_trial,
        "gpus_per_trial": study.cluster.gpus_per_trial, "max_concurrent": opts.max_concurrent,
        "time_budget_s": opts.time_budget, "metric": spec.metric, "mode": spec.mode,
        **{f"setting.{k}": v for k, v in {**spec.data_options, **spec.fixed}.items()}, **gpu_probe,
    }  # fmt: skip


def _record_failure(study: Study, exc: BaseException) -> None:
    """The study's end in run.json and on its parent run; a failure of either is said, not raised: the original
    failure is the news."""
    try:
        study.record.failed(exc)
    except OSError as write_error:  # e.g. the disk that just filled up
        study.echo(f"warning: could not record the failure in {study.record.path}: {write_error.strerror}")
    try:
        study.tracker.fail_parent(MLFLOW_KILLED if isinstance(exc, KeyboardInterrupt) else MLFLOW_FAILED, str(exc))
        study.tracker.close(raise_errors=False)
    except Exception as close_error:
        study.echo(f"warning: could not close the MLflow parent run: {close_error}")


__all__ = ["Study", "prepare"]

"""One study, end to end: spec -> data -> Ray Tune -> MLflow -> test evaluation -> best_config.json.

Everything the user can get wrong is checked before anything is written: a bad option, a bad config file or a
bad dataset leaves no run folder and no MLflow run behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import importlib
import math
import os
import re
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner import PROCESS_START
from tuner.datasets import LoadedData, load_dataset
from tuner.errors import TunerError
from tuner.export import (
    BEST_CONFIG_FILE,
    PROGRESS_FILE,
    RUN_FILE,
    config_from_file,
    git_commit,
    library_versions,
    write_json,
)
from tuner.packing import AUTO as AUTO_GPUS
from tuner.packing import auto_gpu_share
from tuner.settings import apply_settings
from tuner.spec import SCHEDULERS, SEARCHERS, SpaceSpec
from tuner.storage import has_state, is_uri, local_checkpoint, normalise, study_root
from tuner.summary import print_header, print_summary, tally, trials_csv

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass
class RunOptions:
    trials: int = 20
    searcher: str | None = None
    scheduler: str | None = None
    max_epochs: int | None = None
    cpus_per_trial: float | None = None
    gpus_per_trial: float | str | None = None
    """A share of a GPU, or ``"auto"``: measure one probe trial and pack as many per GPU as fit (tuner.packing)."""
    max_concurrent: int | None = None
    time_budget: float | None = None
    seed: int | None = None
    """Seeds the searcher and every trial; default 0, or the seed recorded in a ``--config`` export."""
    data: Path | None = None
    address: str | None = None
    tracking_uri: str | None = None
    name: str | None = None
    config_file: Path | None = None
    results_dir: Path = Path("results")
    dashboard: bool = True
    report_start: bool = True
    """Evaluate the report's own config as the first trial (searchers that take starting points)."""
    num_cpus: int | None = None
    """CPUs of a local Ray instance (default: all); ignored with --address."""
    num_gpus: int | None = None
    """GPUs a local Ray instance declares (default: those Ray detects); not allowed with --address. Ray takes the
    count on trust: on a machine without GPUs the trials get logical GPU shares and train on the CPU."""
    settings: tuple[str, ...] = ()
    """``KEY=VALUE`` overrides of the space's fixed settings and data options (``run --set``)."""
    max_retries: int = 2
    """Times Tune retries a trial whose worker process or node was lost (a trial that raises is not retried)."""
    progress_every: float = 30.0
    """Seconds between the progress tables of the running trials the driver prints; 0: none."""
    storage: str | None = None
    """Where Ray Tune keeps the study's checkpoints and state (see tuner.storage): a folder every node of the cluster
    mounts at the same path, or a URI such as s3://bucket/prefix. Default: the run's own folder, which only the
    driver's machine sees."""
    checkpoint_every: float = 60.0
    """A trial of a resumable family saves its training state at least this often (seconds; 0: every epoch), so a
    retried or resumed trial loses at most that much training."""


@dataclass
class StudyResult:
    run_dir: Path
    export: dict[str, Any]
    counts: dict[str, int]
    parent_run_id: str
    first_trial_after_s: float | None
    wall_s: float


REPORT_CONFIG = "report"
"""``--config report`` trains the report's own best config once (no file needed); ``report:NAME`` one of the
space's ``report_variants`` (e.g. the report's baseline)."""


def report_config(spec: SpaceSpec, choice: str) -> dict[str, Any]:
    _, _, variant = choice.partition(":")
    if not variant:
        return spec.active_config(spec.report_config)
    if variant not in spec.report_variants:
        accepted = ", ".join(["report", *(f"report:{v}" for v in spec.report_variants)])
        raise TunerError(f"--config {choice}: space {spec.name} has no report config {variant!r}; accepted: {accepted}")
    return spec.active_config(spec.report_variants[variant])


def validate(spec: SpaceSpec, opts: RunOptions) -> tuple[SpaceSpec, RunOptions, dict[str, Any] | None]:
    """Check every option; return the spec with CLI overrides applied, the options and a fixed config if any."""
    if opts.trials < 1:
        raise TunerError(f"--trials must be at least 1, got {opts.trials}")
    searcher = opts.searcher or spec.default_searcher
    if searcher not in SEARCHERS:
        raise TunerError(f"--searcher {searcher!r} is not one of: {', '.join(SEARCHERS)}")
    scheduler = opts.scheduler or spec.default_scheduler
    if scheduler not in SCHEDULERS:
        raise TunerError(f"--scheduler {scheduler!r} is not one of: {', '.join(SCHEDULERS)}")
    cpus = spec.resources.cpus if opts.cpus_per_trial is None else opts.cpus_per_trial
    gpus = spec.resources.gpus if opts.gpus_per_trial is None else opts.gpus_per_trial
    if not (math.isfinite(cpus) and cpus > 0):
        raise TunerError(f"--cpus-per-trial must be a positive number, got {cpus:g}")
    if isinstance(gpus, str):
        if gpus != AUTO_GPUS:
            raise TunerError(f"--gpus-per-trial {gpus!r}: give a number (0, 0.25, 1, ...) or {AUTO_GPUS!r}")
    elif not (math.isfinite(gpus) and gpus >= 0):
        raise TunerError(f"--gpus-per-trial must be 0 or positive (fractions like 0.25 allowed), got {gpus:g}")
    elif gpus > 1 and gpus != int(gpus):
        raise TunerError(f"--gpus-per-trial above 1 must be a whole number, got {gpus:g}")
    if opts.max_concurrent is not None and opts.max_concurrent < 1:
        raise TunerError(f"--max-concurrent must be at least 1, got {opts.max_concurrent}")
    if opts.time_budget is not None and not opts.time_budget > 0:
        raise TunerError(f"--time-budget must be a positive number of seconds, got {opts.time_budget:g}")
    if opts.max_retries < 0:
        raise TunerError(f"--max-retries must be 0 or more, got {opts.max_retries}")
    if not (math.isfinite(opts.progress_every) and opts.progress_every >= 0):
        raise TunerError(f"--progress-every must be 0 (no table) or a positive number of seconds, got "
                         f"{opts.progress_every:g}")  # fmt: skip
    if not (math.isfinite(opts.checkpoint_every) and opts.checkpoint_every >= 0):
        raise TunerError(f"--checkpoint-every must be 0 (every epoch) or a positive number of seconds, got "
                         f"{opts.checkpoint_every:g}")  # fmt: skip
    if opts.max_epochs is not None and opts.max_epochs < 1:
        raise TunerError(f"--max-epochs must be at least 1, got {opts.max_epochs}")
    if opts.name is not None and not RUN_NAME.match(opts.name):
        raise TunerError(f"--name {opts.name!r}: use letters, digits, '_', '.', '-' (at most 100, no '/')")
    if opts.num_gpus is not None and opts.num_gpus < 0:
        raise TunerError(f"--num-gpus must be 0 or more, got {opts.num_gpus}")
    if opts.num_cpus is not None and opts.address:
        raise TunerError("--num-cpus sizes a local Ray instance; a cluster at --address declares its own CPUs")
    if opts.num_gpus is not None and opts.address:
        raise TunerError("--num-gpus sizes a local Ray instance; a cluster at --address declares its own GPUs")
    if opts.address:
        from tuner.cluster import check_reachable

        check_reachable(opts.address)
    if opts.data is not None and not Path(opts.data).exists():
        raise TunerError(f"--data {opts.data}: no such file or folder")
    fixed = None
    if opts.config_file is not None and str(opts.config_file).split(":")[0] == REPORT_CONFIG:
        fixed = spec.validate_config(report_config(spec, str(opts.config_file)), source=str(opts.config_file))
    elif opts.config_file is not None:
        config, payload = config_from_file(Path(opts.config_file))
        if payload.get("space") not in (None, spec.name):
            raise TunerError(f"{opts.config_file}: exported for space {payload['space']!r}, not {spec.name!r}")
        fixed = spec.validate_config(config, source=str(opts.config_file))
        if opts.seed is None and isinstance(payload.get("seed"), int):
            opts = dataclasses.replace(opts, seed=payload["seed"])
    if opts.seed is None:
        opts = dataclasses.replace(opts, seed=0)
    if opts.max_epochs is not None:
        spec = dataclasses.replace(
            spec, max_epochs=opts.max_epochs, grace_period=min(spec.grace_period, opts.max_epochs)
        )
    spec = apply_settings(spec, opts.settings)
    opts = dataclasses.replace(opts, searcher=searcher, scheduler=scheduler, cpus_per_trial=cpus, gpus_per_trial=gpus)
    return spec, opts, fixed


def _prepare_results(results_dir: Path, space: str, name: str) -> Path:
    run_dir = results_dir / space / name
    if run_dir.exists():
        raise TunerError(f"run {name!r} already exists in {run_dir.parent}; choose another --name")
    _check_writable(results_dir, "results folder")
    return run_dir


def _check_writable(folder: Path, what: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-probe-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise TunerError(f"{what} {folder} is not writable: {exc.strerror}") from None


def _load_data(spec: SpaceSpec, opts: RunOptions) -> LoadedData | None:
    if not spec.dataset:
        return None
    return load_dataset(spec.dataset, opts.data, spec.data_options, opts.results_dir / ".data")


def run_study(
    spec: SpaceSpec, opts: RunOptions, echo: Callable[[str], None] = print, resume: dict[str, Any] | None = None
) -> StudyResult:
    """Run a study; with ``resume`` (its run.json, see ``resume_study``) continue an interrupted one."""
    started = time.monotonic()
    gpus_asked = opts.gpus_per_trial is not None
    spec, opts, fixed_config = validate(spec, opts)
    name = opts.name or dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    results_dir = opts.results_dir.resolve()
    storage = normalise(opts.storage)
    opts = dataclasses.replace(opts, results_dir=results_dir, name=name, storage=storage)
    if storage is not None and not is_uri(storage) and not resume:
        _check_writable(Path(storage), "--storage folder")
    run_dir = results_dir / spec.name / name if resume else _prepare_results(results_dir, spec.name, name)
    data = _load_data(spec, opts)
    fingerprint = data.fingerprint if data else "none"
    if resume and resume.get("data_fingerprint") not in (None, fingerprint):
        raise TunerError(
            f"the data of run {name} changed since it started (fingerprint {resume['data_fingerprint']} -> "
            f"{fingerprint}); a study cannot continue on other data: start a new run"
        )

    from tuner.tracking import RUN_DIR_TAG, StudyTracker, default_tracking_uri, ui_command

    tracking_uri = opts.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(results_dir)
    default_store = tracking_uri == default_tracking_uri(results_dir)
    # The store opens on the tracker's own thread while Ray starts (both mostly wait on other processes).
    tracker = StudyTracker(tracking_uri, spec.name, results_dir / "mlartifacts" if default_store else None)
    gpu_probe: dict[str, Any] = {}
    try:
        cluster = _connect_checked(spec, opts, gpus_asked, echo)
        if cluster.nodes > 1 and opts.storage is None:
            echo(f"note: the cluster has {cluster.nodes} nodes and checkpoints go to {run_dir}, a folder on this "
                 f"machine: trials on other nodes can only save them there if it is on a filesystem they mount at "
                 f"the same path; otherwise pass --storage with a shared folder (NFS) or a URI (s3://...)")  # fmt: skip
        if opts.gpus_per_trial == AUTO_GPUS:  # measured before anything is written: a trial too big writes nothing
            share, gpu_probe = auto_gpu_share(spec, fixed_config, data, opts.seed, opts.cpus_per_trial, echo)
            cluster = dataclasses.replace(cluster, gpus_per_trial=share)
    except BaseException:
        tracker.close(raise_errors=False)
        raise
    opts = dataclasses.replace(opts, gpus_per_trial=cluster.gpus_per_trial)
    now = dt.datetime.now().isoformat(timespec="seconds")
    if resume:
        run_info = {**resume, "status": "running", "resumed": [*resume.get("resumed", []), now]}
        run_info.pop("error", None)
    else:
        run_dir.mkdir(parents=True)
        run_info = {"space": spec.name, "name": name, "started": now, "data_fingerprint": fingerprint,
                    "options": {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(opts).items()},
                    "tracking_uri": tracking_uri}  # fmt: skip
    run_info.update(status="running", driver={"pid": os.getpid(), "host": socket.gethostname()})
    if gpu_probe:
        run_info["gpu_probe"] = gpu_probe
    write_json(run_dir / RUN_FILE, run_info)
    try:
        commit = git_commit()
        parent_tags = {
            "tuner.space": spec.name,
            "tuner.report": spec.report,
            "searcher": opts.searcher,
            "scheduler": opts.scheduler,
            "seed": str(opts.seed),
            "git_commit": commit,
            "data_fingerprint": fingerprint,
            RUN_DIR_TAG: str(run_dir),
            "data_synthetic": str(data.synthetic if data else False).lower(),
            "data_source": data.source if data else "none",
            "mode": "fixed-config" if fixed_config else "search",
        }
        parent_params = {
            "trials": opts.trials, "max_epochs": spec.max_epochs, "cpus_per_trial": opts.cpus_per_trial,
            "gpus_per_trial": opts.gpus_per_trial, "max_concurrent": opts.max_concurrent,
            "time_budget_s": opts.time_budget, "metric": spec.metric, "mode": spec.mode,
            **{f"setting.{k}": v for k, v in {**spec.data_options, **spec.fixed}.items()}, **gpu_probe,
        }  # fmt: skip
        if resume:
            tracker.resume_parent(str(run_dir))
            tracker.flush()  # a store that lost the run is an error now, before any trial runs
            echo(f"resuming run {name}: {len(tracker.children)} trial run(s) in MLflow so far")
        else:
            tracker.start_parent(name, parent_params, parent_tags)
        print_header(
            echo, spec, opts, name, run_dir, data, cluster, tracking_uri, ui_command(tracking_uri), fixed_config
        )

        monitor, plan_note = _fit(spec, opts, data, fixed_config, tracker, run_dir, cluster, echo, bool(resume))
        monitor.prune_checkpoints()
        best = monitor.best()
        counts = dict(monitor.counts())
        if best is None:
            raise TunerError(
                f"no trial produced a finite {spec.metric} ({tally(counts)}); see {run_dir} and the MLflow runs"
            )
        test = _evaluate_best(spec, opts, data, best)
        ensemble = None if fixed_config else _ensemble(spec, opts, data, monitor)
        export = {
            "space": spec.name,
            "run": name,
            "config": best.config,
            "metric": {"name": spec.metric, "mode": spec.mode, "value": best.score},
            "best_epoch": best.best_epoch,
            "trial_id": best.trial_id,
            "trial_number": best.number,
            "seed": opts.seed,
            "git_commit": commit,
            "data": {
                "fingerprint": data.fingerprint if data else None,
                "synthetic": data.synthetic if data else None,
                "source": data.source if data else None,
            },  # fmt: skip
            "library_versions": library_versions(),
            "test": test,
            "ensemble": ensemble,
            "settings": {"fixed": spec.fixed, "data_options": spec.data_options, "max_epochs": spec.max_epochs},
            "report": reference(spec, opts),
            "mlflow": {"tracking_uri": tracking_uri},
            "search": {
                "searcher": opts.searcher,
                "scheduler": opts.scheduler,
                "note": plan_note,
                "trials": len(monitor.outcomes),
                "statuses": counts,
            },  # fmt: skip
        }
        tracker.flush()
        parent_id = tracker.parent_id
        export["mlflow"].update(experiment_id=tracker.experiment_id, parent_run_id=parent_id,
                                child_run_id=tracker.child_run_id(best.trial_id))  # fmt: skip
        write_json(run_dir / BEST_CONFIG_FILE, export)
        (run_dir / "trials.csv").write_text(trials_csv(spec, monitor))
        parent_metrics = {f"best_{spec.metric}": best.score, **{k: v for k, v in (test or {}).items()}}
        parent_metrics.update({k: v for k, v in (ensemble or {}).items() if isinstance(v, float)})
        parent_metrics.update({f"trials_{k}": v for k, v in counts.items()})
        tracker.end_parent(
            "FINISHED",
            parent_metrics,
            {"best_trial_id": best.trial_id, "best_child_run_id": export["mlflow"]["child_run_id"] or ""},
            {"best_config.json": export, "trials.csv": (run_dir / "trials.csv").read_text()},
        )
        tracker.close()
        wall = time.monotonic() - started
        run_info["mlflow"] = {"experiment_id": tracker.experiment_id, "parent_run_id": parent_id}
        run_info.update(status="finished", ended=dt.datetime.now().isoformat(timespec="seconds"), counts=counts,
                        wall_s=round(wall, 2), first_trial_after_s=monitor.first_trial_after)  # fmt: skip
        write_json(run_dir / RUN_FILE, run_info)
        print_summary(echo, spec, monitor, export, run_dir, wall)
        return StudyResult(run_dir, export, counts, parent_id, monitor.first_trial_after, wall)
    except BaseException as exc:
        reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        run_info.update(status=reason, ended=dt.datetime.now().isoformat(timespec="seconds"), error=str(exc)[:2000])
        try:
            write_json(run_dir / RUN_FILE, run_info)
        except OSError as write_error:  # e.g. the disk that just filled up: the original failure is the news
            echo(f"warning: could not record the failure in {run_dir / RUN_FILE}: {write_error.strerror}")
        try:
            tracker.fail_parent("KILLED" if reason == "interrupted" else "FAILED", str(exc))
            tracker.close(raise_errors=False)
        except Exception as close_error:  # report the original failure; say the close failed too
            echo(f"warning: could not close the MLflow parent run: {close_error}")
        raise


def _connect_checked(spec: SpaceSpec, opts: RunOptions, gpus_asked: bool, echo):
    """Start or join Ray and check the per-trial request fits it. GPUs asked for on the command line but absent
    are an error; a space's default GPU share falls back to CPUs with a note."""
    from tuner.cluster import connect

    cluster = connect(opts.address, dashboard=opts.dashboard, num_cpus=opts.num_cpus, preload=(spec.trainable,),
                      num_gpus=opts.num_gpus)  # fmt: skip
    gpus = opts.gpus_per_trial
    if gpus == AUTO_GPUS:
        if cluster.gpus == 0:
            raise TunerError(
                f"--gpus-per-trial auto needs GPUs; the Ray cluster has none ({cluster.describe()}); "
                f"give a number instead (0 trains on CPUs)"
            )
        gpus = 1.0  # until run_study's probe trial chooses the share
    elif gpus > 0 and cluster.gpus == 0:
        if gpus_asked:
            raise TunerError(
                f"--gpus-per-trial {gpus:g} asked for GPUs but the Ray cluster has none ({cluster.describe()}); "
                f"use --gpus-per-trial 0 to train on CPUs"
            )
        echo(f"note: space {spec.name} asks for {gpus:g} GPU per trial but the cluster has none; training on CPUs")
        gpus = 0.0
    if opts.cpus_per_trial > cluster.cpus:
        raise TunerError(
            f"--cpus-per-trial {opts.cpus_per_trial:g} is more than the cluster's {cluster.cpus:g} CPUs; "
            f"no trial could start"
        )
    return dataclasses.replace(cluster, gpus_per_trial=gpus)


def _fit(spec, opts, data, fixed_config, tracker, run_dir, cluster, echo, resume=False):
    from ray import tune

    from trainables.reporting import SCORE
    from tuner.monitor import StudyMonitor
    from tuner.search import PruneLog, build_scheduler, build_search
    from tuner.trial import run_trial, trial_dirname

    prune_log = PruneLog()
    slots = max(1, int(cluster.cpus // opts.cpus_per_trial))
    if opts.gpus_per_trial > 0:
        slots = min(slots, int(cluster.gpus / opts.gpus_per_trial + 1e-9))
    # Model-based searchers should see results before suggesting more: never more pending than can run.
    max_concurrent = opts.max_concurrent or slots
    if fixed_config is not None:
        plan = build_search(spec, "random", 1, opts.seed, None, [fixed_config])
        scheduler = build_scheduler(spec, "fifo", prune_log)
    else:
        starts = [spec.report_config] if opts.report_start and spec.report_config else []
        plan = build_search(spec, opts.searcher, opts.trials, opts.seed, max_concurrent, starts)
        scheduler = build_scheduler(spec, opts.scheduler, prune_log)
    monitor = StudyMonitor(spec, tracker, prune_log, plan.num_samples, echo, started=PROCESS_START,
                           progress_path=run_dir / PROGRESS_FILE, table_every=opts.progress_every,
                           scheduler=scheduler)  # fmt: skip
    trainable = tune.with_parameters(
        run_trial,
        data=data,
        spec=spec,
        seed=opts.seed,
        threads=max(1, int(opts.cpus_per_trial)),
        gpus=opts.gpus_per_trial,
        checkpoint_every_s=opts.checkpoint_every,
    )
    trainable = tune.with_resources(trainable, {"cpu": opts.cpus_per_trial, "gpu": opts.gpus_per_trial})
    if resume:
        study = study_root(opts.storage, opts.results_dir, spec.name, run_dir.name)
        return _fit_resumed(trainable, tracker, run_dir, study, echo), plan.note
    tuner = tune.Tuner(
        trainable,
        param_space=plan.param_space,
        tune_config=tune.TuneConfig(
            metric=SCORE,
            mode=spec.mode,
            search_alg=plan.search_alg,
            scheduler=scheduler,
            num_samples=plan.num_samples,
            time_budget_s=opts.time_budget,
            reuse_actors=True,
            trial_dirname_creator=trial_dirname,
        ),
        run_config=tune.RunConfig(
            name="ray",
            storage_path=study_root(opts.storage, opts.results_dir, spec.name, run_dir.name),
            callbacks=[monitor],
            verbose=0,
            # A trial's latest checkpoint holds its best weights (and its training state). Tune keeps them all:
            # its num_to_keep deletes a checkpoint before the snapshot that stops pointing at it is saved, so a
            # driver killed in between left a study that could not resume. The monitor deletes superseded
            # checkpoints once two newer snapshots exist, and all but the latest after the study.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
            # Tune retries a trial whose worker process or node died; an exception in the trial's own code is
            # reported as its failed end by tuner.trial and not retried.
            failure_config=tune.FailureConfig(max_failures=opts.max_retries),
        ),
    )
    tuner.fit()
    return monitor, plan.note


def _fit_resumed(trainable, tracker, run_dir: Path, study: str, echo):
    """Continue the Tune experiment under ``run_dir/ray`` from its last snapshot: finished trials stay finished,
    trials that were running start again (from their checkpoint where their family resumes from one), and the
    searcher continues from its saved state. The monitor is the one Tune restored; it gets this driver's MLflow
    writer and reconciles the child runs before any trial starts."""
    from ray import tune

    from tuner.monitor import on_restore

    restored: list = []

    def attach(monitor) -> None:
        if not monitor.restored:
            raise TunerError(f"Ray Tune could not restore the study's state from {run_dir / 'ray'}; see its log")
        monitor.tracker, monitor.echo, monitor.started = tracker, echo, PROCESS_START
        monitor.reconcile_mlflow()
        restored.append(monitor)
        counts = monitor.counts()
        echo(f"resumed: {sum(v for k, v in counts.items() if k != 'running')} trial(s) already ended, "
             f"{counts['running']} to run again, {monitor.total - len(monitor.outcomes)} not started")  # fmt: skip

    on_restore(run_dir / PROGRESS_FILE, attach)
    # A trial that runs again reports epochs Optuna has seen: Optuna ignores them, and says so once per epoch.
    warnings.filterwarnings("ignore", message="The reported value is ignored because", category=UserWarning)
    tuner = tune.Tuner.restore(f"{study}/ray", trainable, resume_unfinished=True, resume_errored=False)
    tuner.fit()
    if not restored:
        raise TunerError(f"Ray Tune did not restore the study in {study}/ray; nothing was resumed")
    return restored[0]


def resume_study(space: str, name: str | None, results_dir: Path, echo: Callable[[str], None] = print) -> StudyResult:
    """``tuner resume``: continue a study whose driver stopped (killed, machine restarted, interrupted)."""
    import search_spaces
    from tuner.export import read_json
    from tuner.status import find_run, run_state

    run_dir = find_run(results_dir.resolve(), space, name)
    info = read_json(run_dir / RUN_FILE, "run record")
    state = run_state(info)
    if state == "finished":
        raise TunerError(f"run {run_dir.name} of {space} already finished; nothing to resume (tuner export {space})")
    if state.startswith("running"):
        raise TunerError(f"run {run_dir.name} of {space} is still running ({state}); stop its driver first")
    stored = dict(info.get("options") or {})
    fields = {f.name for f in dataclasses.fields(RunOptions)}
    unknown = sorted(set(stored) - fields)
    if unknown:
        raise TunerError(f"run {run_dir.name} was started with options this tuner does not know: {unknown}")
    for key in ("data", "config_file", "results_dir"):
        if stored.get(key) is not None:
            stored[key] = Path(stored[key])
    stored["settings"] = tuple(stored.get("settings") or ())
    opts = RunOptions(**stored)
    if not has_state(study_root(opts.storage, opts.results_dir.resolve(), space, run_dir.name)):
        raise TunerError(f"run {run_dir.name} stopped before Ray Tune saved its state; start it again with tuner run")
    return run_study(search_spaces.get(space), opts, echo, resume=info)


def _evaluate_best(spec: SpaceSpec, opts: RunOptions, data, best) -> dict[str, float] | None:
    """Score the best trial's best-epoch weights once on the held-out test split."""
    if data is None or "test" not in data.splits:
        return None
    from trainables.reporting import CHECKPOINT_FILE
    from tuner.trial import make_context

    if best.checkpoint_path is None:
        raise TunerError(f"the best trial {best.trial_id} left no checkpoint; cannot evaluate it on the test split")
    family = importlib.import_module(spec.trainable)
    ctx = make_context(spec, opts.seed, "cpu", report=lambda row, ckpt: None)
    with local_checkpoint(opts.storage, best.checkpoint_path) as folder:
        return family.evaluate(best.config, data, ctx, folder / CHECKPOINT_FILE, split="test")


def reference(spec: SpaceSpec, opts: RunOptions) -> dict[str, Any]:
    """The report's config and figures this run is compared with: a variant's for ``--config report:NAME``."""
    choice = str(opts.config_file or "")
    variant = choice.partition(":")[2] if choice.startswith(f"{REPORT_CONFIG}:") else ""
    if variant:
        return {"name": variant, "config": spec.active_config(spec.report_variants[variant]),
                "results": spec.report_variant_results.get(variant, {})}  # fmt: skip
    return {"name": "best", "config": spec.active_config(spec.report_config), "results": spec.report_results}


def _ensemble(spec: SpaceSpec, opts: RunOptions, data, monitor) -> dict[str, Any] | None:
    """Average the top-k complete trials (report 003, 2.6) when the space asks for it and its family can."""
    top_k = int(spec.fixed.get("ensemble_top_k", 0))
    family = importlib.import_module(spec.trainable)
    if top_k < 2 or data is None or not hasattr(family, "ensemble"):
        return None
    from trainables.reporting import CHECKPOINT_FILE
    from tuner.trial import make_context

    complete = [o for o in monitor.ranked() if o.epochs >= spec.max_epochs and o.checkpoint_path]
    if len(complete) < 2:
        return {"note": f"skipped: {len(complete)} trial(s) ran all {spec.max_epochs} epochs; need at least 2"}
    ctx = make_context(spec, opts.seed, "cpu", report=lambda row, ckpt: None)
    with contextlib.ExitStack() as stack:
        members = [(o.config, stack.enter_context(local_checkpoint(opts.storage, o.checkpoint_path)) / CHECKPOINT_FILE)
                   for o in complete[:top_k]]  # fmt: skip
        return {**family.ensemble(members, data, ctx), "trial_numbers": [o.number for o in complete[:top_k]]}


__all__ = ["RunOptions", "StudyResult", "resume_study", "run_study", "validate"]

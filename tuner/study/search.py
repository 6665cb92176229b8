"""The search phase: the trials, run by Ray Tune with the plan's searcher and scheduler, watched by tuner's
monitor (trial ledger, MLflow child runs, progress, checkpoint clean-up). A resumed study restores Tune's
experiment from its last snapshot instead of starting one."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner import PROCESS_START
from tuner.errors import TunerError
from tuner.run_files import PROGRESS_FILE
from tuner.schema import SEARCH_PHASE
from tuner.storage import SEARCH_EXPERIMENT
from tuner.study.placement import trial_slots
from tuner.study.prepare import Study


@dataclass(frozen=True)
class SearchResult:
    ledger: Any
    """Every trial of the study (``tuner.monitor.TrialLedger``)."""
    note: str
    """How the searcher ran (e.g. "Optuna TPE (5 random start-up trials)")."""


def best_trial(study: Study, search: SearchResult):
    """The search's best trial; a study in which no trial produced a finite score is an error."""
    best = search.ledger.best()
    if best is None:
        from tuner.study_text import tally

        raise TunerError(
            f"no trial produced a finite {study.plan.spec.metric} ({tally(dict(search.ledger.counts()))}"
            f"); see {study.plan.run_dir} and the MLflow runs"
        )
    return best


def search(study: Study, warm: list[tuple[dict[str, Any], float]] | None = None) -> SearchResult:
    """Run (or continue) the study's trials to the end; ``warm``: earlier trials' (config, score) the searcher
    learns from first (``tuner.warmstart``)."""
    from tuner.search import PruneLog, build_scheduler, build_search

    plan, opts = study.plan, study.plan.options
    prune_log = PruneLog()
    if plan.fixed_config is not None:
        searcher = build_search(plan.spec, "random", 1, opts.seed, None, [plan.fixed_config])
        scheduler = build_scheduler(plan.spec, "fifo", prune_log)
    else:
        # Model-based searchers should see results before suggesting more: never more pending than can run.
        concurrent = opts.max_concurrent or trial_slots(study.cluster, opts.cpus_per_trial)
        starts = [plan.spec.report_config] if opts.report_start and plan.spec.report_config else []
        searcher = build_search(plan.spec, opts.searcher, opts.trials, opts.seed, concurrent, starts, warm or [])
        scheduler = build_scheduler(plan.spec, opts.scheduler, prune_log)
    if plan.resume:
        monitor = _continue(study)
    else:
        from tuner.monitor.snapshots import SnapshotKeeper

        monitor = new_monitor(study, prune_log, searcher.num_samples, scheduler)
        monitor.snapshots = SnapshotKeeper(_local_experiment(study))
        monitor.progress.note("search: starting the first trials (their workers load the model family) ...")
        monitor.janitor.drop_ended_states = not opts.keep_checkpoints
        run_experiment(study, tuner_for(study, searcher, scheduler, monitor, SEARCH_EXPERIMENT), monitor)
    monitor.after_study()
    return SearchResult(monitor.ledger, searcher.note)


def new_monitor(
    study: Study, prune_log, total: int, scheduler, phase: str = SEARCH_PHASE, reruns: dict[str, int] | None = None
):
    """Tuner's Tune callback for one phase's trials; the search phase's keeps the study's progress file."""
    from tuner.monitor import StudyMonitor

    progress_path = study.plan.run_dir / PROGRESS_FILE if phase == SEARCH_PHASE else None
    return StudyMonitor(
        study.plan.spec,
        study.tracker,
        prune_log,
        total,
        study.echo,
        started=PROCESS_START,
        progress_path=progress_path,
        table_every=study.plan.options.progress_every,
        scheduler=scheduler,
        phase=phase,
        reruns=reruns,
    )


def trainable(study: Study):
    """``tuner.trial.run_trial`` with the study's data and spec (sent to the object store once) and resources."""
    from ray import tune

    from tuner.spaces.code import with_code
    from tuner.trial import run_trial

    opts, gpus = study.plan.options, study.cluster.gpus_per_trial
    data = with_code(study.data, study.plan.space.source.folder)  # a space folder of its own: on the trials' path
    trainable = tune.with_parameters(
        run_trial,
        data=data,
        spec=study.plan.spec,
        seed=opts.seed,
        threads=max(1, int(opts.cpus_per_trial)),
        gpus=gpus,
        checkpoint_every_s=opts.checkpoint_every,
    )
    return tune.with_resources(trainable, {"cpu": opts.cpus_per_trial, "gpu": gpus})


def tuner_for(study: Study, searcher, scheduler, monitor, experiment: str):
    """A Ray Tune experiment named ``experiment`` in the study's storage, running tuner's trials."""
    from ray import tune

    from trainables.reporting import SCORE
    from tuner.trial import trial_dirname

    opts = study.plan.options
    return tune.Tuner(
        trainable(study),
        param_space=searcher.param_space,
        tune_config=tune.TuneConfig(
            metric=SCORE,
            mode=study.plan.spec.mode,
            search_alg=searcher.search_alg,
            scheduler=scheduler,
            num_samples=searcher.num_samples,
            time_budget_s=opts.time_budget,
            reuse_actors=True,
            trial_dirname_creator=trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=experiment,
            storage_path=study.plan.study_root,
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


def run_experiment(study: Study, tuner, monitor) -> None:
    """``tuner.fit()``; a first Ctrl-C stops the experiment gracefully and the study ends as interrupted, with the
    command that continues it."""
    from tuner.schema import TrialStatus
    from tuner.study.interrupt import StudyInterrupted, resume_command, stop_on_interrupt
    from tuner.study.tune_log import TUNE_LOG_FILE, tune_log_to

    with stop_on_interrupt() as interrupted, tune_log_to(study.plan.run_dir / TUNE_LOG_FILE):
        tuner.fit()
    if monitor.disk_error is not None:
        raise monitor.disk_error  # the CLI says it in one line, with what to run once space is freed
    if not interrupted.is_set():
        return
    counts = monitor.ledger.counts()
    running = counts[TrialStatus.RUNNING]
    raise StudyInterrupted(
        f"interrupted ({monitor.phase} phase): {sum(counts.values()) - running} of {monitor.ledger.total} trials "
        f"ended, {running} were running; what ended is kept. Continue with: {resume_command(study.plan)}"
    )


def train_to_end(
    study: Study,
    runs: list[tuple[dict[str, Any], int]],
    phase: str,
    keep: bool,
    fixed: dict[str, Any] | None = None,
    reruns: dict[str, int] | None = None,
):
    """Train each (config, seed) of ``runs`` once, to its end (no pruning), as the Ray Tune experiment ``phase``
    in the study's storage, with MLflow child runs tagged with the phase (and with the search trial whose config
    they train again: ``reruns``, ``config_key`` -> trial number); the ledger of those runs. Their checkpoints are
    deleted afterwards unless ``keep``. ``fixed`` overrides fixed settings for these runs."""
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    from tuner.search import PruneLog, SearchPlan, build_scheduler, tune_param_space
    from tuner.storage import delete_folder
    from tuner.trial import FIXED_PREFIX, SEED

    plan, opts = study.plan, study.plan.options
    # A driver stopped during this phase left an unfinished experiment: the phase starts again.
    delete_folder(f"{plan.study_root}/{phase}")
    overrides = {f"{FIXED_PREFIX}{key}": value for key, value in (fixed or {}).items()}
    points = [{**plan.spec.complete_config(config), SEED: seed, **overrides} for config, seed in runs]
    # Tune takes points of its parameter space only: the seed and the overrides join it (every run is a point,
    # none is sampled).
    space = {**tune_param_space(plan.spec), SEED: tune.choice(sorted({seed for _, seed in runs})),
             **{key: tune.choice([value]) for key, value in overrides.items()}}  # fmt: skip
    concurrent = opts.max_concurrent or trial_slots(study.cluster, opts.cpus_per_trial)
    searcher = SearchPlan(
        BasicVariantGenerator(points_to_evaluate=points, max_concurrent=concurrent), space, len(points), phase
    )
    prune_log = PruneLog()
    scheduler = build_scheduler(plan.spec, "fifo", prune_log)
    monitor = new_monitor(study, prune_log, len(points), scheduler, phase=phase, reruns=reruns)
    run_experiment(study, tuner_for(study, searcher, scheduler, monitor, phase), monitor)
    if not keep:
        delete_folder(f"{plan.study_root}/{phase}")
    else:
        monitor.after_study()
    return monitor.ledger


def _local_experiment(study: Study) -> Path | None:
    """The search experiment's folder when the study's storage is a local folder (None for a bucket)."""
    from tuner.storage import is_uri

    root = study.plan.study_root
    return None if is_uri(root) else Path(root) / SEARCH_EXPERIMENT


def _continue(study: Study):
    """Continue the Tune experiment from its last snapshot: finished trials stay finished, trials that were
    running start again (from their checkpoint where their family resumes from one), and the searcher, the
    scheduler and tuner's monitor continue from their saved state. The monitor Tune restores gets this driver's
    MLflow writer and printer, and reconciles the child runs before any trial starts."""
    from ray import tune

    from tuner.monitor import restored_monitor
    from tuner.monitor.snapshots import SnapshotKeeper, repair

    folder = _local_experiment(study)
    repaired = repair(folder) if folder is not None else ""
    if repaired:
        study.echo(f"note: {repaired}")
    # A trial that runs again reports epochs Optuna has seen: Optuna ignores them, and says so once per epoch.
    warnings.filterwarnings("ignore", message="The reported value is ignored because", category=UserWarning)
    tuner = tune.Tuner.restore(
        f"{study.plan.study_root}/{SEARCH_EXPERIMENT}", trainable(study), resume_unfinished=True, resume_errored=False
    )
    monitor = restored_monitor(tuner)
    if study.plan.resume.get("extended"):  # tuner extend raised the trial budget since the monitor was saved
        monitor.ledger.total = max(monitor.ledger.total, study.plan.options.trials)
    monitor.attach(study.tracker, study.echo, PROCESS_START)
    monitor.snapshots = SnapshotKeeper(folder)
    monitor.janitor.drop_ended_states = not study.plan.options.keep_checkpoints
    run_experiment(study, tuner, monitor)
    return monitor


__all__ = ["SearchResult", "best_trial", "new_monitor", "search", "train_to_end", "trainable", "tuner_for"]

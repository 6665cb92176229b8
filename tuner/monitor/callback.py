"""Tuner's Ray Tune callback in the driver: it hands each of Tune's events to the trial ledger, the phase's MLflow
child runs, the checkpoint janitor, the progress output and the disk guard, and does a resumed study's first step."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.tune import Callback

from trainables.reporting import END_MESSAGE, END_REASON
from tuner.errors import TunerError
from tuner.internals.ray_tune import restored_run_config
from tuner.monitor.child_runs import ChildRuns
from tuner.monitor.disk import DiskGuard
from tuner.monitor.janitor import CheckpointJanitor
from tuner.monitor.ledger import TrialLedger, TrialOutcome, error_text
from tuner.monitor.progress import ProgressReporter
from tuner.monitor.snapshots import SnapshotKeeper
from tuner.schema import SEARCH_PHASE, TrialStatus
from tuner.search import PruneLog
from tuner.spec import SpaceSpec
from tuner.trial import TRACEBACK

if TYPE_CHECKING:
    from tuner.tracking import StudyTracker


class StudyMonitor(Callback):
    def __init__(
        self,
        spec: SpaceSpec,
        tracker: StudyTracker | None,
        prune_log: PruneLog,
        total: int,
        echo: Callable[[str], None] = print,
        started: float | None = None,
        progress_path: Path | None = None,
        table_every: float | None = None,
        scheduler: Any = None,
        phase: str = SEARCH_PHASE,
        reruns: dict[str, int] | None = None,
    ):
        self.ledger = TrialLedger(spec, total, prune_log)
        self.runs = ChildRuns(self.ledger, phase, dict(reruns or {}), tracker)
        self.scheduler = scheduler
        """The study's trial scheduler: Tune's snapshots leave it out, so its state (ASHA's rungs, the median rule's
        results) travels in this monitor's state, and a resumed study's scheduler keeps comparing new trials with
        the ones that ran before."""
        self.janitor = CheckpointJanitor()
        self.snapshots = SnapshotKeeper(None)
        """Keeps a copy of Tune's last complete experiment snapshot (set by the search phase, local storage)."""
        self.progress = ProgressReporter(self.ledger, echo, started, progress_path, table_every, self.runs.label)
        self.restored_from: str | None = None
        """The experiment folder Tune restored this monitor from (``restored_monitor``)."""
        self.disk = DiskGuard()
        self._resume_pending = False

    @property
    def phase(self) -> str:
        return self.runs.phase

    @property
    def tracker(self) -> StudyTracker | None:
        """This driver's MLflow writer (``attach`` hands a restored monitor its own); None: nothing goes to MLflow."""
        return self.runs.tracker

    @property
    def disk_error(self) -> OSError | None:
        """The disk error that stopped the study: the search phase raises it once Tune has stopped."""
        return self.disk.error

    # --- Ray Tune pickles its callbacks into the experiment's tuner.pkl, which a resumed study unpickles ---
    def __getstate__(self) -> dict[str, Any]:
        # The attributes a saved study's tuner.pkl holds; the MLflow writer thread and a disk error belong to this
        # driver, the child runs and the disk guard are made anew from them.
        state = {key: value for key, value in self.__dict__.items() if key not in ("runs", "disk")}
        return {**state, "phase": self.runs.phase, "reruns": self.runs.reruns, "tracker": None,
                "_resume_pending": False, "disk_error": None}  # fmt: skip

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "ledger" not in state:  # the tuner.pkl of a study whose monitor kept its trials itself
            state = _from_flat_pickle(state)
        # a saved monitor without these: a search phase's, before it kept a snapshot copy or tagged reruns
        state = {"phase": SEARCH_PHASE, "snapshots": SnapshotKeeper(None), "reruns": {}, **state}
        runs = ChildRuns(state["ledger"], state.pop("phase"), state.pop("reruns"), state.pop("tracker", None))
        state.pop("disk_error", None)
        self.__dict__.update(state, runs=runs, disk=DiskGuard())

    # --- the study's state travels with Tune's experiment snapshots, so a resumed study continues it ---
    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"ledger": self.ledger}
        if hasattr(self.scheduler, "export_state"):
            state["scheduler"] = self.scheduler.export_state()
        self.janitor.snapshot_taken()  # Tune calls this while it saves an experiment snapshot
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        # no "ledger": the snapshot of a monitor that kept its trials itself
        self.ledger.restore(state.get("ledger", state))
        if state.get("scheduler") is not None and hasattr(self.scheduler, "import_state"):
            # the scheduler unpickled with this monitor is the one the resumed study runs with (one pickle)
            self.scheduler.import_state(state["scheduler"])
        self.progress.changed()

    def attach(self, tracker: StudyTracker | None, echo: Callable[[str], None], started: float) -> None:
        """Hand a monitor Tune restored this driver's MLflow writer, printer and start time. At Tune's first loop
        step, once Tune has restored the study's trials, the monitor takes over what happened after its state was
        saved, makes MLflow agree, and says what runs again."""
        self.runs.tracker = tracker
        self.progress.echo, self.progress.started = echo, started
        self._resume_pending = True

    def on_step_begin(self, iteration, trials, **info):
        if self._resume_pending:
            self._resume_pending = False
            self._resume(trials)

    def _resume(self, trials: list[Any]) -> None:
        if not self.ledger.restored:
            raise TunerError(f"Ray Tune could not restore the study's state from {self.restored_from}; see its log")
        self.ledger.adopt_trials(trials)
        self.progress.changed()
        self.runs.reconcile()
        ledger = self.ledger
        counts = ledger.counts()
        ended = sum(n for status, n in counts.items() if status != TrialStatus.RUNNING)
        self.progress.echo(
            f"resumed: {ended} trial(s) already ended, {counts[TrialStatus.RUNNING]} to run again, "
            f"{ledger.total - len(ledger.outcomes)} not started"
        )

    # --- Tune's events ---
    def on_trial_start(self, iteration, trials, trial, **info):
        first = self.ledger.first_trial_after is None and self.runs.phase == SEARCH_PHASE
        outcome, new = self.ledger.start(trial, self.progress.elapsed())
        if first:  # a trial's line comes when it ends: till then the screen says the search has begun
            self.progress.note(f"trial {outcome.number:3d} started; each trial's line follows when it ends")
        if new:  # one MLflow run per trial: a retried or resumed trial keeps its run
            self.runs.start(outcome)
        self.progress.trial_started()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if self.ledger.record_result(trial.trial_id, result):
            outcome = self.ledger.outcomes[trial.trial_id]
            epoch = outcome.resumed_from
            self.progress.note(f"trial {outcome.number:3d} continues from its checkpoint of epoch {epoch}")
        self.progress.result_seen()
        self.runs.log_epoch(self.ledger.outcomes[trial.trial_id], result)

    def on_trial_complete(self, iteration, trials, trial, **info):
        last = self.ledger.outcomes[trial.trial_id].last if trial.trial_id in self.ledger.outcomes else {}
        error = f"{last.get(END_MESSAGE)} {last.get(TRACEBACK)}"
        if last.get(END_REASON) == TrialStatus.FAILED and self.disk.trial_error(error):
            return  # its checkpoint could not be written: not the trial's failure, it runs again on resume
        self.janitor.trial_ended(trial.trial_id)
        self.disk.write(self._ended, self.ledger.complete(trial))

    def on_trial_error(self, iteration, trials, trial, **info):
        if not self.disk.trial_error(error_text(trial)):  # not the trial's failure: it runs again on resume
            self.disk.write(self._ended, self.ledger.fail(trial))

    def on_trial_recover(self, iteration, trials, trial, **info):
        outcome = self.ledger.outcomes.get(trial.trial_id)
        if outcome is not None and not self.disk.trial_error(error_text(trial)):
            self.progress.note(f"trial {outcome.number:3d} lost its worker ({error_text(trial)[:200]}); retrying it")

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        self.janitor.register(trial.trial_id, checkpoint)

    def on_step_end(self, iteration, trials, **info):
        self.disk.write(self.progress.step)
        self.disk.write(self.snapshots.step)

    def on_experiment_end(self, trials, **info):
        if self._resume_pending:  # a study whose trials had all ended: Tune's loop ran no step
            self._resume_pending = False
            self._resume(trials)
        self.janitor.study_ended(trials)
        self.progress.study_ended()

    def after_study(self) -> None:
        """After ``tuner.fit()`` (Tune's last snapshot saved): each trial keeps its latest checkpoint only."""
        self.janitor.sweep(self.ledger.restored)

    def _ended(self, outcome: TrialOutcome) -> None:
        self.runs.end(outcome)
        self.progress.trial_ended(outcome)


def restored_monitor(tuner: Any) -> StudyMonitor:
    """The ``StudyMonitor`` of a ``tune.Tuner.restore``d study: Tune unpickled it (with the study's scheduler) from
    the experiment's ``tuner.pkl`` and sets its state from the latest snapshot when ``tuner.fit()`` starts."""
    run_config = restored_run_config(tuner)  # None under Ray Client, which tuner does not use
    monitors = [c for c in (run_config.callbacks or []) if isinstance(c, StudyMonitor)] if run_config else []
    where = posixpath.join(run_config.storage_path, run_config.name) if run_config else "the restored experiment"
    if not monitors:
        raise TunerError(f"Ray Tune restored no tuner monitor from {where}; the study cannot be resumed")
    monitors[0].restored_from = where
    return monitors[0]


def _from_flat_pickle(old: dict[str, Any]) -> dict[str, Any]:
    """The pickled state of a monitor that kept its trials itself (no ledger), as a monitor pickles it now."""
    monitor = StudyMonitor(
        old["spec"],
        None,
        old["prune_log"],
        old["total"],
        print,
        old.get("started"),
        old.get("progress_path"),
        old.get("table_every"),
        old.get("scheduler"),
    )
    monitor.ledger.outcomes = dict(old.get("outcomes") or {})
    monitor.ledger.first_trial_after = old.get("first_trial_after")
    return monitor.__getstate__()

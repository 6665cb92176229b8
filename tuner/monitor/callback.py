"""Tuner's Ray Tune callback in the driver: it hands each of Tune's events to the trial ledger, MLflow, the
checkpoint janitor and the progress output, and does a resumed study's first step."""

from __future__ import annotations

import errno
import os
import posixpath
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.tune import Callback
from ray.tune.result import HOSTNAME, NODE_IP

from trainables.reporting import END_MESSAGE, END_REASON, SCORE
from tuner.errors import TunerError, is_disk_full, storage_error
from tuner.internals.ray_tune import restored_run_config
from tuner.monitor.janitor import CheckpointJanitor
from tuner.monitor.ledger import TrialLedger, TrialOutcome, config_key, error_text, finite
from tuner.monitor.progress import ProgressReporter
from tuner.monitor.snapshots import SnapshotKeeper
from tuner.schema import (
    END_MESSAGE_TAG,
    HOSTNAME_TAG,
    NODE_ID_TAG,
    NODE_IP_TAG,
    PHASE_TAG,
    RESTARTS_TAG,
    RESUMED_FROM_TAG,
    SEARCH_TRIAL_TAG,
    SPACE_TAG,
    TRACEBACK_TAG,
    TRIAL_SEED_TAG,
    TrialStatus,
)
from tuner.search import PruneLog
from tuner.spec import SpaceSpec
from tuner.trial import NODE_ID, SEED, TRACEBACK

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
        phase: str = "search",
        reruns: dict[str, int] | None = None,
    ):
        self.ledger = TrialLedger(spec, total, prune_log)
        self.phase = phase
        """The study phase whose trials this monitor watches (``tuner.study.fit`` or ``tuner.study.verify``): it
        names their MLflow runs (``trial-001``, ``verify-001``) and tags them."""
        self.reruns = dict(reruns or {})
        """``config_key(config)`` -> the search trial a verify or baseline run trains again (its runs' tag)."""
        self.tracker = tracker
        """This driver's MLflow writer; None: nothing goes to MLflow."""
        self.scheduler = scheduler
        """The study's trial scheduler: Tune's snapshots leave it out, so its state (ASHA's rungs, the median rule's
        results) travels in this monitor's state, and a resumed study's scheduler keeps comparing new trials with
        the ones that ran before."""
        self.janitor = CheckpointJanitor()
        self.snapshots = SnapshotKeeper(None)
        """Keeps a copy of Tune's last complete experiment snapshot (set by the search phase, local storage)."""
        label = "trial" if phase == "search" else phase
        self.progress = ProgressReporter(self.ledger, echo, started, progress_path, table_every, label)
        self.restored_from: str | None = None
        """The experiment folder Tune restored this monitor from (``restored_monitor``)."""
        self.disk_error: OSError | None = None
        """The disk error (a full disk under the results folder) that stopped the study: the search phase raises it
        once Tune has stopped. Trials run on meanwhile would only fail: nothing they finish could be saved."""
        self._resume_pending = False

    def __getstate__(self) -> dict[str, Any]:
        # Ray Tune pickles its callbacks into the experiment state; the MLflow writer thread belongs to this driver.
        return {**self.__dict__, "tracker": None, "_resume_pending": False, "disk_error": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "ledger" not in state:  # pickled before the monitor kept a ledger: a study an older tuner started
            state = _from_flat_pickle(state)
        # defaults for a monitor pickled before phases had names and snapshots were kept
        self.__dict__.update({"phase": "search", "snapshots": SnapshotKeeper(None), "disk_error": None,
                              "reruns": {}, **state})  # fmt: skip

    # --- the study's state travels with Tune's experiment snapshots, so a resumed study continues it ---
    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"ledger": self.ledger}
        if hasattr(self.scheduler, "export_state"):
            state["scheduler"] = self.scheduler.export_state()
        self.janitor.snapshot_taken()  # Tune calls this while it saves an experiment snapshot
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        self.ledger.restore(state.get("ledger", state))  # no "ledger": the state of an older tuner's monitor
        if state.get("scheduler") is not None and hasattr(self.scheduler, "import_state"):
            # the scheduler unpickled with this monitor is the one the resumed study runs with (one pickle)
            self.scheduler.import_state(state["scheduler"])
        self.progress.changed()

    def attach(self, tracker: StudyTracker | None, echo: Callable[[str], None], started: float) -> None:
        """Hand a monitor Tune restored this driver's MLflow writer, printer and start time. At Tune's first loop
        step, once Tune has restored the study's trials, the monitor takes over what happened after its state was
        saved, makes MLflow agree, and says what runs again."""
        self.tracker = tracker
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
        self._reconcile_mlflow()
        ledger = self.ledger
        counts = ledger.counts()
        ended = sum(n for status, n in counts.items() if status != TrialStatus.RUNNING)
        self.progress.echo(f"resumed: {ended} trial(s) already ended, {counts[TrialStatus.RUNNING]} to run again, "
                           f"{ledger.total - len(ledger.outcomes)} not started")  # fmt: skip

    # --- Tune's events ---
    def on_trial_start(self, iteration, trials, trial, **info):
        first = self.ledger.first_trial_after is None and self.phase == "search"
        outcome, new = self.ledger.start(trial, self.progress.elapsed())
        if first:  # a trial's line comes when it ends: till then the screen says the search has begun
            self.progress.note(f"trial {outcome.number:3d} started; each trial's line follows when it ends")
        if new and self.tracker:  # one MLflow run per trial: a retried or resumed trial keeps its run
            self.tracker.start_child(trial.trial_id, *self._child_run(outcome))
        self.progress.trial_started()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if self.ledger.record_result(trial.trial_id, result):
            outcome = self.ledger.outcomes[trial.trial_id]
            epoch = outcome.resumed_from
            self.progress.note(f"trial {outcome.number:3d} continues from its checkpoint of epoch {epoch}")
        self.progress.result_seen()
        if self.tracker:
            keys = (*self.ledger.spec.metrics, SCORE, "lr")
            metrics = {k: result[k] for k in keys if finite(result.get(k))}
            self.tracker.log_epoch(trial.trial_id, metrics, step=self.ledger.outcomes[trial.trial_id].epochs)

    def on_trial_complete(self, iteration, trials, trial, **info):
        last = self.ledger.outcomes[trial.trial_id].last if trial.trial_id in self.ledger.outcomes else {}
        error = f"{last.get(END_MESSAGE)} {last.get(TRACEBACK)}"
        if last.get(END_REASON) == TrialStatus.FAILED and self._disk_full(error):
            return  # its checkpoint could not be written: not the trial's failure, it runs again on resume
        self._on_disk(self._ended, self.ledger.complete(trial))

    def on_trial_error(self, iteration, trials, trial, **info):
        if not self._disk_full(error_text(trial)):  # not the trial's failure: it runs again on resume
            self._on_disk(self._ended, self.ledger.fail(trial))

    def on_trial_recover(self, iteration, trials, trial, **info):
        outcome = self.ledger.outcomes.get(trial.trial_id)
        if outcome is not None and not self._disk_full(error_text(trial)):
            self.progress.note(f"trial {outcome.number:3d} lost its worker ({error_text(trial)[:200]}); retrying it")

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        self.janitor.register(trial.trial_id, checkpoint)

    def on_step_end(self, iteration, trials, **info):
        self._on_disk(self.progress.step)
        self._on_disk(self.snapshots.step)

    # --- a full disk ---
    def _on_disk(self, write: Callable[..., None], *args: Any) -> None:
        """Run one of the monitor's writes to the results folder; a disk error stops the study (``disk_error``)."""
        try:
            write(*args)
        except OSError as exc:
            if storage_error(exc) is None:
                raise
            self._stop_for(exc)

    def _disk_full(self, text: str) -> bool:
        """Whether a trial's error is the disk's (its checkpoint could not be written); if so the study stops."""
        if not is_disk_full(text):
            return False
        self._stop_for(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "a trial's checkpoint"))
        return True

    def _stop_for(self, exc: OSError) -> None:
        from tuner.study.interrupt import request_stop

        if self.disk_error is None:
            self.disk_error = exc
            request_stop()

    def on_experiment_end(self, trials, **info):
        if self._resume_pending:  # a study whose trials had all ended: Tune's loop ran no step
            self._resume_pending = False
            self._resume(trials)
        self.janitor.study_ended(trials)
        self.progress.study_ended()

    def after_study(self) -> None:
        """After ``tuner.fit()`` (Tune's last snapshot saved): each trial keeps its latest checkpoint only."""
        self.janitor.sweep(self.ledger.restored)

    # --- MLflow ---
    def _ended(self, outcome: TrialOutcome) -> None:
        if self.tracker:
            self.tracker.end_child(outcome.trial_id, outcome.status, *self._final_record(outcome))
        self.progress.trial_ended(outcome)

    def _reconcile_mlflow(self) -> None:
        """Make MLflow agree with the restored snapshot: one child run per trial it holds, no others."""
        if self.tracker is None:
            return
        outcomes = self.ledger.outcomes
        finished = {trial_id: o.status != TrialStatus.RUNNING for trial_id, o in outcomes.items()}
        self.tracker.reconcile(finished, {trial_id: self._child_run(o) for trial_id, o in outcomes.items()})
        for outcome in outcomes.values():
            if outcome.status != TrialStatus.RUNNING:  # its end may not have reached MLflow before the driver stopped
                self.tracker.end_child(outcome.trial_id, outcome.status, *self._final_record(outcome))

    def _child_run(self, outcome: TrialOutcome) -> tuple[str, dict[str, Any], dict[str, str]]:
        """A trial's MLflow child run: its name, params and tags."""
        name = f"{'trial' if self.phase == 'search' else self.phase}-{outcome.number:03d}"
        tags = {SPACE_TAG: self.ledger.spec.name, PHASE_TAG: self.phase}
        rerun_of = self.reruns.get(config_key(outcome.config))
        if rerun_of is not None:
            tags[SEARCH_TRIAL_TAG] = str(rerun_of)
        return name, outcome.config, tags

    def _final_record(self, outcome: TrialOutcome) -> tuple[dict[str, float], dict[str, str]]:
        final = {f"best_{self.ledger.spec.metric}": outcome.score, "best_epoch": outcome.best_epoch,
                 "epochs_run": outcome.epochs}  # fmt: skip
        last = outcome.last
        tags = {END_MESSAGE_TAG: outcome.message[:5000], NODE_IP_TAG: last.get(NODE_IP, ""),
                HOSTNAME_TAG: last.get(HOSTNAME, ""), NODE_ID_TAG: last.get(NODE_ID, ""),
                RESTARTS_TAG: str(outcome.restarts), RESUMED_FROM_TAG: str(outcome.resumed_from)}  # fmt: skip
        if last.get(SEED) is not None:
            tags[TRIAL_SEED_TAG] = str(last[SEED])
        if last.get(TRACEBACK):
            tags[TRACEBACK_TAG] = str(last[TRACEBACK])[-5000:]
        return final, tags


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
    """The attributes of a monitor pickled before it kept a ledger (an older tuner's ``tuner.pkl``)."""
    monitor = StudyMonitor(old["spec"], None, old["prune_log"], old["total"], print, old.get("started"),
                           old.get("progress_path"), old.get("table_every"), old.get("scheduler"))  # fmt: skip
    monitor.ledger.outcomes = dict(old.get("outcomes") or {})
    monitor.ledger.first_trial_after = old.get("first_trial_after")
    return monitor.__dict__

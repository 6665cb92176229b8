"""A phase's trials as MLflow child runs of the study's parent run: one run per trial (a retried or resumed trial
keeps its run), named and tagged with the phase, its epochs' metrics, its end; and, when a study resumes, MLflow
made to agree with the trials of the restored snapshot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray.tune.result import HOSTNAME, NODE_IP

from trainables.metrics import LR
from trainables.reporting import SCORE
from tuner.monitor.ledger import TrialLedger, TrialOutcome, config_key, finite
from tuner.schema import (
    END_MESSAGE_TAG,
    HOSTNAME_TAG,
    NODE_ID_TAG,
    NODE_IP_TAG,
    PHASE_TAG,
    RESTARTS_TAG,
    RESUMED_FROM_TAG,
    SEARCH_PHASE,
    SEARCH_TRIAL_TAG,
    SPACE_TAG,
    TRACEBACK_TAG,
    TRIAL_SEED_TAG,
    TrialStatus,
)
from tuner.trial import NODE_ID, SEED, TRACEBACK

if TYPE_CHECKING:
    from tuner.tracking import StudyTracker


class ChildRuns:
    def __init__(self, ledger: TrialLedger, phase: str, reruns: dict[str, int], tracker: StudyTracker | None):
        self.ledger = ledger
        self.phase = phase
        """The study phase whose trials these are (``tuner.study.search`` or ``tuner.study.verify``): it names
        their MLflow runs (``trial-001``, ``verify-001``) and tags them."""
        self.reruns = reruns
        """``config_key(config)`` -> the search trial a verify or baseline run trains again (its runs' tag)."""
        self.tracker = tracker
        """This driver's MLflow writer; None: nothing goes to MLflow."""

    @property
    def label(self) -> str:
        """What a trial of this phase is called: in its run's name and the lines the driver prints."""
        return "trial" if self.phase == SEARCH_PHASE else self.phase

    def start(self, outcome: TrialOutcome) -> None:
        if self.tracker:
            self.tracker.start_child(outcome.trial_id, *self._run(outcome))

    def log_epoch(self, outcome: TrialOutcome, result: dict[str, Any]) -> None:
        if self.tracker:
            keys = (*self.ledger.spec.metrics, SCORE, LR)
            metrics = {k: result[k] for k in keys if finite(result.get(k))}
            self.tracker.log_epoch(outcome.trial_id, metrics, step=outcome.epochs)

    def end(self, outcome: TrialOutcome) -> None:
        if self.tracker:
            self.tracker.end_child(outcome.trial_id, outcome.status, *self._final_record(outcome))

    def reconcile(self) -> None:
        """Make MLflow agree with the restored snapshot: one child run per trial it holds, no others."""
        if self.tracker is None:
            return
        outcomes = self.ledger.outcomes
        finished = {trial_id: o.status != TrialStatus.RUNNING for trial_id, o in outcomes.items()}
        self.tracker.reconcile(finished, {trial_id: self._run(o) for trial_id, o in outcomes.items()})
        for outcome in outcomes.values():
            if outcome.status != TrialStatus.RUNNING:  # its end may not have reached MLflow before the driver stopped
                self.end(outcome)

    def _run(self, outcome: TrialOutcome) -> tuple[str, dict[str, Any], dict[str, str]]:
        """A trial's MLflow child run: its name, params and tags."""
        name = f"{self.label}-{outcome.number:03d}"
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


__all__ = ["ChildRuns"]

"""The study's record of its trials: how each started, reported and ended, their numbers, ranking and best.

The ledger is the only state of tuner's monitor that travels in Ray Tune's experiment snapshots, so a resumed
study continues it; it holds no clock, printer or MLflow writer."""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainables.reporting import BEST_EPOCH, END_MESSAGE, END_REASON, EPOCH, RESUMED_FROM, SCORE
from tuner.schema import TrialStatus
from tuner.search import PruneLog
from tuner.spec import SpaceSpec


@dataclass
class TrialOutcome:
    trial_id: str
    number: int
    config: dict[str, Any]
    status: str = TrialStatus.RUNNING
    score: float | None = None
    best_epoch: int = 0
    epochs: int = 0
    message: str = ""
    last: dict[str, Any] = field(default_factory=dict)
    checkpoint_path: str | None = None
    restarts: int = 0
    """Times the trial started again: retried after its worker was lost, or resumed with its study."""
    resumed_from: int = 0
    """The epoch of the checkpoint the trial last continued from (0: it never did)."""


class TrialLedger:
    def __init__(self, spec: SpaceSpec, total: int, prune_log: PruneLog | None = None):
        self.spec = spec
        self.total = total
        """Trials the study runs in all (those not started yet included)."""
        self.prune_log = prune_log if prune_log is not None else PruneLog()
        """The trials the scheduler stopped; the scheduler writes it, the ledger reads it when a trial ends."""
        self.outcomes: dict[str, TrialOutcome] = {}
        self.first_trial_after: float | None = None
        """Seconds from the driver's start to the first trial's start."""
        self.restored = False
        """True once a snapshot's ledger was restored into this one (a resumed study)."""

    def restore(self, saved: TrialLedger | dict[str, Any]) -> None:
        """Take over the trials of a snapshot's ledger. The prune log stays this ledger's own: the restored
        scheduler, unpickled together with it, writes to this one. A dict is the snapshot of a monitor that kept
        its trials itself (as plain dicts)."""
        if isinstance(saved, dict):
            saved = _from_flat_state(self.spec, self.total, saved)
        # copies: the saved ledger may be a live one (a snapshot not pickled yet)
        self.outcomes = {trial_id: dataclasses.replace(o) for trial_id, o in saved.outcomes.items()}
        self.first_trial_after = saved.first_trial_after
        self.prune_log.pruned.update(saved.prune_log.pruned)
        self.restored = True

    def next_number(self) -> int:
        """Trials are numbered in the order they started (numbers stay unique when a resume drops an entry)."""
        return max((o.number for o in self.outcomes.values()), default=0) + 1

    def start(self, trial: Any, elapsed: float) -> tuple[TrialOutcome, bool]:
        """A trial starts ``elapsed`` seconds into the study; True with it when it is new. A trial retried after
        a lost worker, or resumed with the study, keeps its number (and its MLflow run)."""
        if self.first_trial_after is None:
            self.first_trial_after = elapsed
        known = self.outcomes.get(trial.trial_id)
        if known is not None:
            known.status, known.restarts = TrialStatus.RUNNING, known.restarts + 1
            return known, False
        return self._add(trial), True

    def record_result(self, trial_id: str, result: dict[str, Any]) -> bool:
        """A trial's epoch result; True when it shows the trial just continued from a checkpoint (of epoch
        ``resumed_from``) after a restart."""
        outcome = self.outcomes[trial_id]
        outcome.last = result
        outcome.epochs = int(result.get(EPOCH, outcome.epochs))
        resumed_from = int(result.get(RESUMED_FROM) or 0)
        if not resumed_from or not outcome.restarts or resumed_from == outcome.resumed_from:
            return False
        outcome.resumed_from = resumed_from
        return True

    def complete(self, trial: Any) -> TrialOutcome:
        """Tune ended the trial without an error: its own end reason, or the scheduler's or the budget's stop."""
        outcome = self.outcomes[trial.trial_id]
        outcome.status, outcome.message = self.end_of(outcome)
        self._record_end(outcome, trial)
        return outcome

    def fail(self, trial: Any) -> TrialOutcome:
        """The trial raised (or lost its worker more often than the retries allow), maybe before it started."""
        outcome = self.outcomes.get(trial.trial_id) or self._add(trial)
        outcome.status, outcome.message = TrialStatus.FAILED, error_text(trial)
        self._record_end(outcome, trial)
        return outcome

    def end_of(self, outcome: TrialOutcome) -> tuple[str, str]:
        """A trial's status and message when Tune ended it: its own end reason, else the scheduler's stop."""
        reason = outcome.last.get(END_REASON) or ""
        if reason:
            return reason, outcome.last.get(END_MESSAGE, "")
        if outcome.trial_id in self.prune_log.pruned:
            return TrialStatus.PRUNED, f"stopped by the scheduler after epoch {self.prune_log.pruned[outcome.trial_id]}"
        return TrialStatus.STOPPED, "stopped before finishing (time budget or interrupt)"

    def adopt_trials(self, trials: list[Any]) -> None:
        """Make a restored ledger agree with the trials Tune restored. Tune saves a snapshot's trials and its
        callbacks' state in separate files, one after the other: a driver killed between the two leaves this
        ledger a snapshot older than the trials. A trial that ended in between gets its end from Tune's record of
        it (its last result, its latest checkpoint), a trial that started in between gets an entry, and an entry
        Tune has no trial for is dropped (its MLflow run is closed as lost)."""
        from ray.tune.experiment import Trial

        known = {trial.trial_id for trial in trials}
        for trial_id in [t for t in self.outcomes if t not in known]:
            del self.outcomes[trial_id]
        for trial in trials:
            outcome = self.outcomes.get(trial.trial_id)
            last = dict(getattr(trial, "last_result", None) or {})
            if outcome is None:
                if not last.get(EPOCH):  # never started or never reported: it starts as a new trial
                    continue
                outcome = self._add(trial)
            if outcome.status != TrialStatus.RUNNING or trial.status not in (Trial.TERMINATED, Trial.ERROR):
                continue
            outcome.last, outcome.epochs = last, int(last.get(EPOCH, outcome.epochs) or 0)
            if trial.status == Trial.ERROR:
                outcome.status, outcome.message = TrialStatus.FAILED, error_text(trial)
            else:
                if not last.get(END_REASON):  # Tune ended it without an end of its own: the scheduler stopped it
                    self.prune_log.pruned.setdefault(trial.trial_id, outcome.epochs)
                outcome.status, outcome.message = self.end_of(outcome)
            self._record_end(outcome, trial)

    def counts(self) -> Counter:
        return Counter(o.status for o in self.outcomes.values())

    def ranked(self) -> list[TrialOutcome]:
        """Trials with a score, best first. When the score is the last epoch's aggregate (K-fold mean), a trial
        stopped early only has a partial one: trials that ran every epoch rank first."""
        scored = [o for o in self.outcomes.values() if o.score is not None]
        sign = -1 if self.spec.mode == "max" else 1
        if self.spec.score == "last_epoch":
            return sorted(scored, key=lambda o: (o.epochs < self.spec.max_epochs, sign * o.score))
        return sorted(scored, key=lambda o: sign * o.score)

    def best(self) -> TrialOutcome | None:
        ranked = self.ranked()
        return ranked[0] if ranked else None

    def _add(self, trial: Any) -> TrialOutcome:
        outcome = TrialOutcome(trial.trial_id, self.next_number(), self.spec.active_config(trial.config))
        self.outcomes[trial.trial_id] = outcome
        return outcome

    def _record_end(self, outcome: TrialOutcome, trial: Any) -> None:
        checkpoint = getattr(trial, "checkpoint", None)
        outcome.checkpoint_path = checkpoint.path if checkpoint is not None else None
        outcome.score = real_score(outcome.last.get(SCORE))
        outcome.best_epoch = int(outcome.last.get(BEST_EPOCH, 0) or 0)


def _from_flat_state(spec: SpaceSpec, total: int, state: dict[str, Any]) -> TrialLedger:
    ledger = TrialLedger(spec, total)
    ledger.outcomes = {o["trial_id"]: TrialOutcome(**o) for o in state.get("outcomes", [])}
    ledger.first_trial_after = state.get("first_trial_after")
    ledger.prune_log.pruned.update(state.get("pruned", {}))
    return ledger


def config_key(config: dict[str, Any]) -> str:
    """A config as one comparable string: how runs of the same config are matched across phases."""
    return json.dumps(config, sort_keys=True, default=str)


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def real_score(value: Any) -> float | None:
    """A trial's score, or None while it has none: not finite, or the penalty a trial reports before its first
    finite epoch."""
    return value if finite(value) and abs(value) < 1e11 else None


def error_text(trial: Any) -> str:
    """The last line of a trial's error file (Tune's record of its exception), else Tune's error message."""
    path = getattr(trial, "error_file", None)
    try:
        if path:
            lines = [line for line in Path(path).read_text().strip().splitlines() if line.strip()]
            return lines[-1][:2000] if lines else "unknown error"
    except OSError:
        pass
    return str(getattr(trial, "error_msg", None) or "unknown error")[:2000]

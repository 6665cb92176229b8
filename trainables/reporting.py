"""The piece every model family shares: report each epoch, stop early inside the trial, keep the best epoch.

A trial's score is its BEST epoch's value of the searched metric (``SCORE`` in every report), and the
checkpoint kept is that epoch's weights: Ray Tune's "last result" is then the best one too, which removes the
last-vs-best ambiguity. (A space whose metric is an aggregate completed only by the last epoch, such as a K-fold
mean, scores the latest epoch instead and checkpoints every epoch; its family keeps the best weights per fold.)
The reason a trial ended is reported with its final epoch (``END_REASON``); a trial
whose last report carries no reason was stopped from outside (pruned by the scheduler, or by the time budget).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCORE = "score"
BEST_EPOCH = "best_epoch"
EPOCH = "epoch"
END_REASON = "end_reason"
END_MESSAGE = "end_message"

COMPLETED = "completed"
EARLY_STOPPED = "early_stopped"
DIVERGED = "diverged"
FAILED = "failed"
"""End reason of a trial whose code raised (set by the trial runner, tuner.trial)."""

CHECKPOINT_FILE = "model.pt"

ReportFn = Callable[[dict[str, Any], Path | None], None]
"""Hands one epoch's metrics (and the folder of a new best checkpoint, or None) to the tuning engine."""


@dataclass(frozen=True)
class TrialContext:
    """What a trainable needs besides its config and data: budgets, stopping rules, device, reporting."""

    metric: str
    mode: str
    max_epochs: int
    fixed: dict[str, Any]
    seed: int
    report: ReportFn
    device: str = "cpu"
    early_stopping_monitor: str | None = None
    early_stopping_mode: str = "min"
    early_stopping_patience: int = 0
    early_stopping_min_delta: float = 0.0
    score_last_epoch: bool = False
    """Score = the latest epoch's metric (an aggregate such as a K-fold mean), not the best epoch's."""
    extra: dict[str, Any] = field(default_factory=dict)

    def penalty(self) -> float:
        """The score of a trial with no finite epoch: worse than any real value, finite for every searcher."""
        return -1e12 if self.mode == "max" else 1e12


def better(value: float, best: float | None, mode: str, min_delta: float = 0.0) -> bool:
    """True when ``value`` beats ``best`` by more than ``min_delta`` in the given mode (None loses to all)."""
    if best is None:
        return True
    return value > best + min_delta if mode == "max" else value < best - min_delta


class EpochReporter:
    """Call ``epoch()`` once per finished epoch; it returns True when the trial must stop."""

    def __init__(self, ctx: TrialContext):
        self.ctx = ctx
        self.best: float | None = None
        self.best_epoch = 0
        self._monitor_best: float | None = None
        self._epochs_without_improvement = 0

    def epoch(self, epoch: int, metrics: dict[str, float], save_checkpoint: Callable[[Path], None] | None) -> bool:
        """Report one epoch. ``save_checkpoint(path)`` writes the model; it is called only for a new best epoch
        (None: the family keeps no checkpoints)."""
        ctx = self.ctx
        row = {k: float(v) for k, v in metrics.items()}
        row[EPOCH] = epoch
        bad = sorted(k for k, v in row.items() if not math.isfinite(v))
        if bad:
            row.update({k: None for k in bad})
            self._send(row, DIVERGED, f"non-finite {', '.join(bad)} at epoch {epoch}", None)
            return True

        checkpoint_dir = None
        value = row[ctx.metric]
        if ctx.score_last_epoch or better(value, self.best, ctx.mode):
            self.best, self.best_epoch = value, epoch
        if self.best_epoch == epoch and save_checkpoint is not None:
            checkpoint_dir = Path(tempfile.mkdtemp(prefix="tuner-ckpt-"))
            save_checkpoint(checkpoint_dir / CHECKPOINT_FILE)

        reason, message = "", ""
        if ctx.early_stopping_monitor:
            monitored = row[ctx.early_stopping_monitor]
            if better(monitored, self._monitor_best, ctx.early_stopping_mode, ctx.early_stopping_min_delta):
                self._monitor_best, self._epochs_without_improvement = monitored, 0
            else:
                self._epochs_without_improvement += 1
            if self._epochs_without_improvement >= ctx.early_stopping_patience:
                reason = EARLY_STOPPED
                message = (
                    f"{ctx.early_stopping_monitor} did not improve by {ctx.early_stopping_min_delta} "
                    f"for {ctx.early_stopping_patience} epochs"
                )
        if not reason and epoch >= ctx.max_epochs:
            reason, message = COMPLETED, f"reached max_epochs={ctx.max_epochs}"
        self._send(row, reason, message, checkpoint_dir)
        return bool(reason)

    def _send(self, row: dict[str, Any], reason: str, message: str, checkpoint_dir: Path | None) -> None:
        row[SCORE] = self.best if self.best is not None else self.ctx.penalty()
        row[BEST_EPOCH] = self.best_epoch
        row[END_REASON] = reason
        row[END_MESSAGE] = message
        self.ctx.report(row, checkpoint_dir)

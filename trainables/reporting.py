"""The piece every model family shares: report each epoch, stop early inside the trial, keep the best epoch.

A trial's score is its BEST epoch's value of the searched metric (``SCORE`` in every report), and the
checkpoint kept is that epoch's weights: Ray Tune's "last result" is then the best one too, which removes the
last-vs-best ambiguity. (A space whose metric is an aggregate completed only by the last epoch, such as a K-fold
mean, scores the latest epoch instead and checkpoints every epoch; its family keeps the best weights per fold.)
The reason a trial ended is reported with its final epoch (``END_REASON``); a trial
whose last report carries no reason was stopped from outside (pruned by the scheduler, or by the time budget).

A family that can hand over its training state (``save_state``/``load_state``: weights, optimizer, schedules,
random generators) makes its trials resumable: a checkpoint then also holds that state and this reporter's own
counters (best so far, early-stopping patience), written at every new best epoch and at least every
``checkpoint_every_s`` seconds, and a trial Tune restarts from it (its worker or node was lost, or its study is
resumed) continues after the checkpoint's epoch instead of from epoch 1 (``EpochReporter.restore``). Every
checkpoint holds the best epoch's weights as ``CHECKPOINT_FILE``, so the latest checkpoint is always the one to
evaluate.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
import weakref
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

RESUMED_FROM = "resumed_from_epoch"
"""In every report of a trial that continued from a checkpoint: the checkpoint's epoch (absent otherwise)."""

COMPUTE_S = "compute_s"
"""In every report: seconds the trial's family has spent in its epochs so far (training and validating: from the
end of one report, or of ``restore``, to the next ``epoch`` call), since the trial (re)started."""
CHECKPOINT_S = "checkpoint_s"
"""In every report: seconds spent writing the trial's checkpoints so far."""
REPORT_S = "report_s"
"""In every report: seconds the reports before this one took to hand over (``ctx.report``: Tune's ``report``,
which also persists a checkpoint). With ``COMPUTE_S`` and ``CHECKPOINT_S`` it says where a trial's time went
(benchmarks/study_profile.py)."""
TIMERS = (COMPUTE_S, CHECKPOINT_S, REPORT_S)

CHECKPOINT_FILE = "model.pt"
TEMP_PREFIX = "tuner-"
"""Temporary folders of a trial (``tuner-trial-PID-*``, ``tuner-ckpt-PID-*``): named after the process that made
them, so that those of a killed process can be found and removed (``remove_orphaned_temp_folders``)."""
STATE_FILE = "state.pt"
"""The family's training state (``save_state``), in checkpoints of resumable families."""
REPORTER_FILE = "reporter.json"
"""This reporter's counters at the checkpoint's epoch."""

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
    checkpoint_every_s: float = 60.0
    """A resumable family's trial checkpoints its training state at least this often (and at every new best
    epoch); 0: after every epoch."""
    restore: Path | None = None
    """The checkpoint folder Tune restarted this trial from (None: a fresh start)."""
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
    """Call ``restore()`` once before the first epoch, then ``epoch()`` once per finished epoch; ``epoch()`` returns
    True when the trial must stop."""

    def __init__(self, ctx: TrialContext):
        self.ctx = ctx
        self.best: float | None = None
        self.best_epoch = 0
        self.resumed_from = 0
        self._monitor_best: float | None = None
        self._epochs_without_improvement = 0
        self._last_checkpoint = time.monotonic()
        self._timers = dict.fromkeys(TIMERS, 0.0)
        self._since = time.monotonic()
        self._scratch = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}trial-{os.getpid()}-"))
        """Private to this trial: the best epoch's weights, linked into every later checkpoint."""
        weakref.finalize(self, shutil.rmtree, self._scratch, ignore_errors=True)

    @property
    def _best_weights(self) -> Path:
        return self._scratch / CHECKPOINT_FILE

    def restore(self, load_state: Callable[[Path], None]) -> int:
        """Continue from ``ctx.restore`` when it holds a training state: ``load_state(path)`` loads the family's
        part, the reporter takes back its counters and the best weights. Returns the first epoch to run (1 for a
        fresh start)."""
        self._since = time.monotonic()
        folder = self.ctx.restore
        if folder is None or not (folder / STATE_FILE).is_file() or not (folder / REPORTER_FILE).is_file():
            return 1
        counters = json.loads((folder / REPORTER_FILE).read_text())
        load_state(folder / STATE_FILE)
        self.best, self.best_epoch = counters["best"], counters["best_epoch"]
        self._monitor_best = counters["monitor_best"]
        self._epochs_without_improvement = counters["epochs_without_improvement"]
        if (folder / CHECKPOINT_FILE).is_file():
            _link_or_copy(folder / CHECKPOINT_FILE, self._best_weights)
        self.resumed_from = int(counters["epoch"])
        self._since = time.monotonic()
        return self.resumed_from + 1

    def epoch(
        self,
        epoch: int,
        metrics: dict[str, float],
        save_checkpoint: Callable[[Path], None] | None,
        save_state: Callable[[Path], None] | None = None,
    ) -> bool:
        """Report one epoch. ``save_checkpoint(path)`` writes the model's weights; it is called only for a new best
        epoch (None: the family keeps no checkpoints). ``save_state(path)`` writes the family's training state (None:
        the family's trials cannot continue from a checkpoint)."""
        self._timers[COMPUTE_S] += time.monotonic() - self._since
        ctx = self.ctx
        row = {k: float(v) for k, v in metrics.items()}
        row[EPOCH] = epoch
        bad = sorted(k for k, v in row.items() if not math.isfinite(v))
        if bad:
            row.update({k: None for k in bad})
            self._send(row, DIVERGED, f"non-finite {', '.join(bad)} at epoch {epoch}", None)
            return True

        value = row[ctx.metric]
        if ctx.score_last_epoch or better(value, self.best, ctx.mode):
            self.best, self.best_epoch = value, epoch

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
        self._send(row, reason, message, self._checkpoint(epoch, save_checkpoint, save_state, ended=bool(reason)))
        return bool(reason)

    def _checkpoint(self, epoch: int, save_checkpoint, save_state, ended: bool) -> Path | None:
        """The folder of this epoch's checkpoint, or None when this epoch keeps none."""
        new_best = self.best_epoch == epoch and save_checkpoint is not None
        due = save_state is not None and not ended
        due = due and time.monotonic() - self._last_checkpoint >= self.ctx.checkpoint_every_s
        if not (new_best or due):
            return None
        started = time.monotonic()
        folder = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}ckpt-{os.getpid()}-"))
        if new_best:
            save_checkpoint(folder / CHECKPOINT_FILE)
            _link_or_copy(folder / CHECKPOINT_FILE, self._best_weights)
        elif self._best_weights.is_file():
            _link_or_copy(self._best_weights, folder / CHECKPOINT_FILE)
        if save_state is not None and not ended:
            save_state(folder / STATE_FILE)
            counters = {"epoch": epoch, "best": self.best, "best_epoch": self.best_epoch,
                        "monitor_best": self._monitor_best,
                        "epochs_without_improvement": self._epochs_without_improvement}  # fmt: skip
            (folder / REPORTER_FILE).write_text(json.dumps(counters))
        self._last_checkpoint = time.monotonic()
        self._timers[CHECKPOINT_S] += time.monotonic() - started
        return folder

    def _send(self, row: dict[str, Any], reason: str, message: str, checkpoint_dir: Path | None) -> None:
        row[SCORE] = self.best if self.best is not None else self.ctx.penalty()
        row[BEST_EPOCH] = self.best_epoch
        row[END_REASON] = reason
        row[END_MESSAGE] = message
        if self.resumed_from:
            row[RESUMED_FROM] = self.resumed_from
        row.update(self._timers)
        started = time.monotonic()
        self.ctx.report(row, checkpoint_dir)
        self._since = time.monotonic()
        self._timers[REPORT_S] += self._since - started


def remove_orphaned_temp_folders(root: Path | None = None) -> int:
    """Remove the temporary folders that trial processes no longer alive on this machine left behind (a killed
    worker runs no cleanup: its best weights and unsent checkpoints would pile up). Returns how many went."""
    import re

    root = Path(root or tempfile.gettempdir())
    removed = 0
    for folder in root.glob(f"{TEMP_PREFIX}*-*-*"):
        match = re.match(rf"{TEMP_PREFIX}(?:trial|ckpt)-(\d+)-", folder.name)
        if not match or not folder.is_dir() or _alive(int(match.group(1))):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _link_or_copy(source: Path, target: Path) -> None:
    """``target`` becomes ``source``'s content: a hard link when both are on one filesystem (no copy), else a copy."""
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)

"""A Ray Tune callback in the driver: each trial's final status, its MLflow child run, progress lines, and a
periodic table of the running trials."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import posixpath
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray.tune import Callback

from trainables.reporting import BEST_EPOCH, END_MESSAGE, END_REASON, EPOCH, RESUMED_FROM, SCORE
from tuner.search import PruneLog
from tuner.spec import SpaceSpec
from tuner.tracking import SPACE_TAG, StudyTracker
from tuner.trial import NODE_ID, TRACEBACK, TRIAL_DIR_PREFIX

_ON_RESTORE: dict[str, Callable[[StudyMonitor], None]] = {}


def on_restore(progress_path: Path, hook: Callable[[StudyMonitor], None]) -> None:
    """Run ``hook(monitor)`` when Tune sets up the monitor it restored (unpickled, without this driver's MLflow
    writer) for the study whose progress file is ``progress_path``: the driver hands it the live pieces."""
    _ON_RESTORE[str(progress_path)] = hook


STATUSES = ("completed", "early_stopped", "pruned", "diverged", "failed", "stopped")
TABLE_ROWS = 10
SNAPSHOTS_KEPT = 2
"""A trial's checkpoints older than the one the third-newest experiment snapshot points at are deleted: the
newest snapshot is being saved and the one before may still be uploading when the driver dies, so the one before
those must still find its checkpoints (Tune's own ``num_to_keep`` deletes a checkpoint before the snapshot that
stops pointing at it is saved)."""
PROGRESS_WRITE_S = 1.0
"""Least seconds between two writes of the progress file: trials ending every few milliseconds must not each
rewrite it (the study's last state is always written, at its end)."""
"""Running trials listed in a progress table; the others are counted on one line."""


@dataclass
class TrialOutcome:
    trial_id: str
    number: int
    config: dict[str, Any]
    status: str = "running"
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


class StudyMonitor(Callback):
    # Defaults for a monitor unpickled from a snapshot taken before these attributes existed.
    table_every: float | None = None
    _last_table: float | None = None
    _revision = 0
    _table_revision = 0
    _progress_written: float | None = None
    _progress_dirty = False
    scheduler = None
    _checkpoints: dict[str, list] = {}
    _snapshot_marks: list[dict[str, int]] = []

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
    ):
        self.spec = spec
        self.tracker = tracker
        self.prune_log = prune_log
        self.total = total
        self.echo = echo
        self.outcomes: dict[str, TrialOutcome] = {}
        self.started = time.monotonic() if started is None else started
        self.first_trial_after: float | None = None
        self._logged_keys = (*spec.metrics, SCORE, "lr")
        self.progress_path = progress_path
        self.restored = False
        """True once Tune restored this monitor's state from an experiment snapshot (a resumed study)."""
        self.table_every = table_every
        """Seconds between progress tables of the running trials; None or 0: no table."""
        self.scheduler = scheduler
        """The study's trial scheduler: Tune's snapshots leave it out, so its state (ASHA's rungs, the median rule's
        results) travels in this monitor's state, and a resumed study's scheduler keeps comparing new trials with
        the ones that ran before."""
        self._checkpoints: dict[str, list] = {}
        """trial id -> [(registration number, Checkpoint)] not deleted yet, oldest first."""
        self._registered: dict[str, int] = {}
        self._snapshot_marks: list[dict[str, int]] = []
        """Per recent experiment snapshot: trial id -> checkpoints registered when it was taken."""
        self._trial_ids: set[str] = set()
        """The study's trials, as Tune had them at its end."""
        self._latest: dict[str, Any] = {}
        """trial id -> its latest checkpoint (a ``tune.Checkpoint``): registered with this driver, or at the study's
        end, from Tune's trials (also those a resumed study restored)."""
        self._last_table: float | None = None
        """``time.monotonic()`` of the last table (or of the first loop step); None until the loop runs."""
        self._revision = 0
        """Bumped by every trial start, result and end: a table is printed again only when something changed
        (or some trial is running)."""
        self._table_revision = 0

    def __getstate__(self) -> dict[str, Any]:
        # Ray Tune pickles its callbacks into the experiment state; the MLflow writer thread and the printer
        # belong to this driver process only.
        state = dict(self.__dict__)
        # A monotonic clock reading means nothing in another process: a restored monitor starts its timer anew.
        state.update(tracker=None, echo=print, _last_table=None, _progress_written=None, _checkpoints={},
                     _registered={}, _snapshot_marks=[], _latest={}, _trial_ids=set(), _restore_hook=None)  # fmt: skip
        return state

    # --- the study's state travels with Tune's experiment snapshots, so a resumed study continues it ---
    def get_state(self) -> dict[str, Any]:
        state = {"outcomes": [dataclasses.asdict(o) for o in self.outcomes.values()],
                 "first_trial_after": self.first_trial_after, "pruned": dict(self.prune_log.pruned)}  # fmt: skip
        if hasattr(self.scheduler, "export_state"):
            state["scheduler"] = self.scheduler.export_state()
        self._after_snapshot()  # Tune calls this while it saves an experiment snapshot
        return state

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        number = self._registered.get(trial.trial_id, 0) + 1
        self._registered[trial.trial_id] = number
        self._checkpoints.setdefault(trial.trial_id, []).append((number, checkpoint))
        self._latest[trial.trial_id] = checkpoint

    def _after_snapshot(self) -> None:
        self._snapshot_marks = [*self._snapshot_marks, dict(self._registered)][-(SNAPSHOTS_KEPT + 1) :]
        if len(self._snapshot_marks) > SNAPSHOTS_KEPT:
            oldest = self._snapshot_marks[0]
            self._delete_checkpoints(lambda trial_id, number: number < oldest.get(trial_id, 0))

    def prune_checkpoints(self) -> None:
        """After the study (Tune's last snapshot saved): keep each trial's latest checkpoint only, sweeping its folder
        (a resumed study's trials also hold checkpoints a driver before it registered)."""
        for checkpoint in self._latest.values():
            trial_folder, keep = posixpath.split(checkpoint.path.rstrip("/"))
            _delete_folders(checkpoint.filesystem, trial_folder,
                            lambda name, keep=keep: name.startswith("checkpoint_") and name != keep)  # fmt: skip
        if self.restored and self._latest and self._trial_ids:
            # Trials a killed driver started after its last snapshot ran again under new ids: their old folders
            # (checkpoints included) belong to no trial of the study.
            some = next(iter(self._latest.values()))
            study = posixpath.dirname(posixpath.dirname(some.path.rstrip("/")))
            known = {f"{TRIAL_DIR_PREFIX}{trial_id}" for trial_id in self._trial_ids}
            unknown = lambda name: name.startswith(TRIAL_DIR_PREFIX) and name not in known  # noqa: E731
            _delete_folders(some.filesystem, study, unknown)

    def _delete_checkpoints(self, superseded: Callable[[str, int], bool]) -> None:
        for trial_id, entries in self._checkpoints.items():
            keep = []
            for number, checkpoint in entries:
                if not superseded(trial_id, number):
                    keep.append((number, checkpoint))
                    continue
                _delete_dir(checkpoint.filesystem, checkpoint.path)
            entries[:] = keep

    def set_state(self, state: dict[str, Any]) -> None:
        self.outcomes = {o["trial_id"]: TrialOutcome(**o) for o in state.get("outcomes", [])}
        self.first_trial_after = state.get("first_trial_after")
        self.prune_log.pruned.update(state.get("pruned", {}))
        if state.get("scheduler") is not None and hasattr(getattr(self, "scheduler", None), "import_state"):
            # the scheduler unpickled with this monitor is the one the resumed study runs with (one pickle)
            self.scheduler.import_state(state["scheduler"])
        self.restored = True
        self._last_table = None
        self._revision += 1

    def setup(self, **info):
        # The driver's hook runs at the first step, once Tune has restored the study's trials.
        self._restore_hook = _ON_RESTORE.pop(str(self.progress_path), None)

    def on_step_begin(self, iteration, trials, **info):
        hook, self._restore_hook = getattr(self, "_restore_hook", None), None
        if hook is not None:
            self.adopt_trials(trials)
            hook(self)

    def adopt_trials(self, trials) -> None:
        """Make a restored monitor agree with the trials Tune restored. Tune saves a snapshot's trials and its
        callbacks' state in separate files, one after the other: a driver killed between the two leaves this
        monitor's state a snapshot older than the trials. A trial that ended in between gets its end from Tune's
        record of it (its last result, its latest checkpoint), a trial that started in between gets an entry, and
        an entry Tune has no trial for is dropped (its MLflow run is closed as lost)."""
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
                outcome = TrialOutcome(trial.trial_id, self._next_number(), self.spec.active_config(trial.config))
                self.outcomes[trial.trial_id] = outcome
            if outcome.status != "running" or trial.status not in (Trial.TERMINATED, Trial.ERROR):
                continue
            outcome.last, outcome.epochs = last, int(last.get(EPOCH, outcome.epochs) or 0)
            if trial.status == Trial.ERROR:
                outcome.status, outcome.message = "failed", _error_text(trial)
            else:
                if not last.get(END_REASON):  # Tune ended it without an end of its own: the scheduler stopped it
                    self.prune_log.pruned.setdefault(trial.trial_id, outcome.epochs)
                outcome.status, outcome.message = self._end_of(outcome)
            self._record_end(outcome, trial)
        self._revision += 1

    def reconcile_mlflow(self) -> None:
        """Make MLflow agree with the restored snapshot: one child run per trial it holds, no others."""
        if self.tracker is None:
            return
        finished = {tid: o.status != "running" for tid, o in self.outcomes.items()}
        starts = {
            tid: (f"trial-{o.number:03d}", o.config, {SPACE_TAG: self.spec.name}) for tid, o in self.outcomes.items()
        }
        self.tracker.reconcile(finished, starts)
        for outcome in self.outcomes.values():
            if outcome.status != "running":  # its end may not have reached MLflow before the driver stopped
                self.tracker.end_child(outcome.trial_id, outcome.status, *self._final_record(outcome))

    def on_trial_start(self, iteration, trials, trial, **info):
        if self.first_trial_after is None:
            self.first_trial_after = time.monotonic() - self.started
        known = self.outcomes.get(trial.trial_id)
        if known is not None:  # retried after a lost worker, or resumed with the study: same number, same MLflow run
            known.status, known.restarts = "running", known.restarts + 1
            self._revision += 1
            self.write_progress()
            return
        number = self._next_number()
        config = self.spec.active_config(trial.config)
        self.outcomes[trial.trial_id] = TrialOutcome(trial.trial_id, number, config)
        if self.tracker:
            self.tracker.start_child(trial.trial_id, f"trial-{number:03d}", config, {SPACE_TAG: self.spec.name})
        self._revision += 1
        self.write_progress()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        outcome = self.outcomes[trial.trial_id]
        outcome.last = result
        outcome.epochs = int(result.get(EPOCH, outcome.epochs))
        self._progress_dirty = True  # running trials' epochs reach the progress file with the next write
        resumed_from = int(result.get(RESUMED_FROM) or 0)
        if resumed_from and outcome.restarts and resumed_from != outcome.resumed_from:
            outcome.resumed_from = resumed_from
            self.echo(f"[{time.monotonic() - self.started:7.1f}s] trial {outcome.number:3d} continues from its "
                      f"checkpoint of epoch {resumed_from}")  # fmt: skip
        self._revision += 1
        if self.tracker:
            metrics = {k: result.get(k) for k in self._logged_keys if _finite(result.get(k))}
            self.tracker.log_epoch(trial.trial_id, metrics, step=outcome.epochs)

    def on_trial_complete(self, iteration, trials, trial, **info):
        outcome = self.outcomes[trial.trial_id]
        outcome.status, outcome.message = self._end_of(outcome)
        self._finish(outcome, trial)

    def _next_number(self) -> int:
        """Trials are numbered in the order they started (numbers stay unique when a resume drops an entry)."""
        return max((o.number for o in self.outcomes.values()), default=0) + 1

    def _end_of(self, outcome: TrialOutcome) -> tuple[str, str]:
        """A trial's status and message when Tune ended it: its own end reason, else the scheduler's stop."""
        reason = outcome.last.get(END_REASON) or ""
        if reason:
            return reason, outcome.last.get(END_MESSAGE, "")
        if outcome.trial_id in self.prune_log.pruned:
            return "pruned", f"stopped by the scheduler after epoch {self.prune_log.pruned[outcome.trial_id]}"
        return "stopped", "stopped before finishing (time budget or interrupt)"

    def on_trial_recover(self, iteration, trials, trial, **info):
        outcome = self.outcomes.get(trial.trial_id)
        if outcome is not None:
            self.echo(f"[{time.monotonic() - self.started:7.1f}s] trial {outcome.number:3d} lost its worker "
                      f"({_error_text(trial)[:200]}); retrying it")  # fmt: skip

    def on_trial_error(self, iteration, trials, trial, **info):
        outcome = self.outcomes.get(trial.trial_id) or TrialOutcome(
            trial.trial_id, self._next_number(), self.spec.active_config(trial.config)
        )
        self.outcomes[trial.trial_id] = outcome
        outcome.status = "failed"
        outcome.message = _error_text(trial)
        self._finish(outcome, trial)

    def _finish(self, outcome: TrialOutcome, trial) -> None:
        if self.tracker is not None and self.tracker.error is not None:
            raise RuntimeError(f"MLflow store {self.tracker.tracking_uri} failed: {self.tracker.error}")
        self._record_end(outcome, trial)
        if self.tracker:
            self.tracker.end_child(outcome.trial_id, outcome.status, *self._final_record(outcome))
        self.echo(self._progress_line(outcome))
        self.write_progress()

    def _record_end(self, outcome: TrialOutcome, trial) -> None:
        checkpoint = getattr(trial, "checkpoint", None)
        outcome.checkpoint_path = checkpoint.path if checkpoint is not None else None
        outcome.score = _real_score(outcome.last.get(SCORE))
        outcome.best_epoch = int(outcome.last.get(BEST_EPOCH, 0) or 0)
        self._revision += 1

    def on_step_end(self, iteration, trials, **info):
        """Called at every step of Tune's loop: write the progress file when a write was held back, and print a
        progress table once ``table_every`` seconds passed since the last one, unless nothing changed and no
        trial is running."""
        if self._progress_dirty:
            self.write_progress()
        if not self.table_every or self.table_every <= 0:
            return
        now = time.monotonic()
        if self._last_table is None or now < self._last_table:
            self._last_table = now
            return
        if now - self._last_table < self.table_every:
            return
        self._last_table = now
        if self._revision == self._table_revision and not self.counts()["running"]:
            return
        self._table_revision = self._revision
        self.echo(self.progress_table(now))

    def progress_table(self, now: float | None = None) -> str:
        """The study so far: elapsed time, counts, best so far, and one row per running trial."""
        elapsed = (time.monotonic() if now is None else now) - self.started
        counts = self.counts()
        done = sum(counts[s] for s in STATUSES)
        tally = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
        waiting = max(0, self.total - len(self.outcomes))
        best = self.best()
        best_text = f"best {self.spec.metric}={best.score:.4f} (trial {best.number})" if best else "best -"
        lines = [
            f"[{elapsed:7.1f}s] progress after {_duration(elapsed)}: {done}/{self.total} done"
            f"{f' ({tally})' if tally else ''}, {counts['running']} running, {waiting} not started | {best_text}"
        ]
        running = sorted((o for o in self.outcomes.values() if o.status == "running"), key=lambda o: o.number)
        if running:
            metric = self.spec.metric
            width = max(len(metric), 8)
            lines.append(f"  {'trial':>5}  {'epochs':>6}  {metric:>{width}}  {'best':>8}  {'node':<15}  restarts")
            for o in running[:TABLE_ROWS]:
                node = str(o.last.get("node_ip") or "-")
                lines.append(
                    f"  {o.number:5d}  {o.epochs:6d}  {_number(o.last.get(metric)):>{width}}  "
                    f"{_number(_real_score(o.last.get(SCORE))):>8}  {node:<15}  {o.restarts:8d}"
                )
            if len(running) > TABLE_ROWS:
                lines.append(f"  ... and {len(running) - TABLE_ROWS} more running")
        return "\n".join(lines)

    def _final_record(self, outcome: TrialOutcome) -> tuple[dict[str, float], dict[str, str]]:
        final = {f"best_{self.spec.metric}": outcome.score, "best_epoch": outcome.best_epoch,
                 "epochs_run": outcome.epochs}  # fmt: skip
        tags = {"tuner.end_message": outcome.message[:5000], "tuner.node_ip": outcome.last.get("node_ip", ""),
                "tuner.hostname": outcome.last.get("hostname", ""), "tuner.node_id": outcome.last.get(NODE_ID, ""),
                "tuner.restarts": str(outcome.restarts),
                "tuner.resumed_from_epoch": str(outcome.resumed_from)}  # fmt: skip
        if outcome.last.get(TRACEBACK):
            tags["tuner.traceback"] = str(outcome.last[TRACEBACK])[-5000:]
        return final, tags

    def on_experiment_end(self, trials, **info):
        self._trial_ids = {trial.trial_id for trial in trials}
        for trial in trials:  # with those a resumed study restored from its snapshot
            if getattr(trial, "checkpoint", None) is not None:
                self._latest[trial.trial_id] = trial.checkpoint
        if self._progress_dirty:
            self.write_progress(force=True)

    def write_progress(self, force: bool = False) -> None:
        """The study so far, for ``tuner status`` (written atomically: a reader never sees half a file). At most
        once per ``PROGRESS_WRITE_S`` unless ``force``: a write held back is done by a later step of Tune's loop."""
        if self.progress_path is None:
            return
        now = time.monotonic()
        if not force and self._progress_written is not None and now - self._progress_written < PROGRESS_WRITE_S:
            self._progress_dirty = True
            return
        self._progress_written, self._progress_dirty = now, False
        from tuner.export import write_json

        best = self.best()
        write_json(self.progress_path, {
            "updated": dt.datetime.now().isoformat(timespec="seconds"),
            "elapsed_s": round(time.monotonic() - self.started, 1),
            "total": self.total,
            "metric": self.spec.metric,
            "mode": self.spec.mode,
            "counts": dict(self.counts()),
            "best": None if best is None else {"trial": best.number, "score": best.score, "config": best.config},
            "trials": [
                {"trial": o.number, "trial_id": o.trial_id, "status": o.status, "score": o.score,
                 "epochs": o.epochs, "node_ip": o.last.get("node_ip"), "node_id": o.last.get(NODE_ID),
                 "restarts": o.restarts, "config": o.config}
                for o in self.outcomes.values()
            ],
        })  # fmt: skip

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

    def _progress_line(self, outcome: TrialOutcome) -> str:
        counts = self.counts()
        done = sum(counts[s] for s in STATUSES)
        running = counts["running"]
        best = self.best()
        score = f"{outcome.score:.4f}" if outcome.score is not None else "-"
        tally = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
        best_text = f"best {best.score:.4f} (trial {best.number})" if best else "best -"
        return (
            f"[{time.monotonic() - self.started:7.1f}s] trial {outcome.number:3d} {outcome.status:<13} "
            f"epochs {outcome.epochs:3d} {self.spec.metric}={score} | {done}/{self.total} done ({tally}), "
            f"{running} running, {best_text}"
        )


def _delete_folders(filesystem: Any, folder: str, unwanted: Callable[[str], bool]) -> None:
    """Delete the sub-folders of ``folder`` whose name is ``unwanted`` (in the study's storage, local or a bucket).
    A folder that is gone or unreadable, or a delete that fails, only costs space: the study's results stand."""
    import pyarrow.fs

    try:
        entries = filesystem.get_file_info(pyarrow.fs.FileSelector(folder))
    except (FileNotFoundError, OSError):
        return
    for entry in entries:
        if entry.type == pyarrow.fs.FileType.Directory and unwanted(posixpath.basename(entry.path.rstrip("/"))):
            _delete_dir(filesystem, entry.path)


def _delete_dir(filesystem: Any, path: str) -> None:
    try:
        filesystem.delete_dir(path)
    except (FileNotFoundError, OSError):  # gone already; a failed delete only costs space
        pass


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _real_score(value: Any) -> float | None:
    """A trial's score, or None while it has none: not finite, or the penalty a trial reports before its first
    finite epoch."""
    return value if _finite(value) and abs(value) < 1e11 else None


def _number(value: Any) -> str:
    return f"{value:.4f}" if _finite(value) else "-"


def _duration(seconds: float) -> str:
    seconds = int(max(0.0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m{rest % 60:02d}s" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _error_text(trial) -> str:
    path = getattr(trial, "error_file", None)
    try:
        if path:
            lines = [line for line in open(path).read().strip().splitlines() if line.strip()]
            return lines[-1][:2000] if lines else "unknown error"
    except OSError:
        pass
    return str(getattr(trial, "error_msg", None) or "unknown error")[:2000]

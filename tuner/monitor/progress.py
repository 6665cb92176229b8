"""What the driver shows of a running study: a line per ended trial, a periodic table of the running trials, and
the progress file ``tuner status`` reads."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.tune.result import NODE_IP

from trainables.reporting import SCORE
from tuner.monitor.ledger import TrialLedger, TrialOutcome, finite, real_score
from tuner.run_files import write_json
from tuner.schema import ENDED, TrialStatus
from tuner.trial import NODE_ID

TABLE_ROWS = 10
"""Running trials listed in a progress table; the others are counted on one line."""
PROGRESS_WRITE_S = 1.0
"""Least seconds between two writes of the progress file: trials ending every few milliseconds must not each
rewrite it (the study's last state is always written, at its end)."""


class ProgressReporter:
    def __init__(
        self,
        ledger: TrialLedger,
        echo: Callable[[str], None] = print,
        started: float | None = None,
        path: Path | None = None,
        table_every: float | None = None,
        label: str = "trial",
    ):
        self.ledger = ledger
        self.label = label
        """What a line calls one of its trials ("trial 3", or "verify 3" for a verify phase's runs)."""
        self.echo = echo
        self.started = time.monotonic() if started is None else started
        """``time.monotonic()`` when the driver started: the lines' and tables' elapsed time counts from it."""
        self.path = path
        """The progress file; None: none is written."""
        self.table_every = table_every
        """Seconds between progress tables of the running trials; None or 0: no table."""
        self._written: float | None = None
        self._dirty = False
        """A change the progress file does not have yet (a held-back write, or epochs of running trials)."""
        self._last_table: float | None = None
        """``time.monotonic()`` of the last table (or of the first loop step); None until the loop runs."""
        self._revision = 0
        """Bumped by every trial start, result and end: a table is printed again only when something changed
        (or some trial is running)."""
        self._table_revision = 0

    def __getstate__(self) -> dict[str, Any]:
        # Ray Tune pickles the monitor into its experiment state: the printer belongs to this driver process, and
        # a monotonic clock reading means nothing in another, so a restored reporter starts its timers anew.
        return {**self.__dict__, "echo": print, "_written": None, "_last_table": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({"label": "trial", **state})  # a saved reporter without a label: a search phase's

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def note(self, text: str) -> None:
        self.echo(f"[{self.elapsed():7.1f}s] {text}")

    def changed(self) -> None:
        """The ledger changed in a way the next table should show."""
        self._revision += 1

    def trial_started(self) -> None:
        self.changed()
        self.write()

    def result_seen(self) -> None:
        # running trials' epochs reach the progress file with the next write, not each with its own
        self.changed()
        self._dirty = True

    def trial_ended(self, outcome: TrialOutcome) -> None:
        self.changed()
        self.echo(self.trial_line(outcome))
        self.write()

    def step(self) -> None:
        """At every step of Tune's loop: write the progress file when a write was held back, and print a progress
        table once ``table_every`` seconds passed since the last one, unless nothing changed and no trial runs."""
        if self._dirty:
            self.write()
        if not self.table_every or self.table_every <= 0:
            return
        now = time.monotonic()
        if self._last_table is None or now < self._last_table:
            self._last_table = now
            return
        if now - self._last_table < self.table_every:
            return
        self._last_table = now
        if self._revision == self._table_revision and not self.ledger.counts()[TrialStatus.RUNNING]:
            return
        self._table_revision = self._revision
        self.echo(self.table(now))

    def study_ended(self) -> None:
        if self._dirty:
            self.write(force=True)

    def trial_line(self, outcome: TrialOutcome) -> str:
        score = f"{outcome.score:.4f}" if outcome.score is not None else "-"
        return (
            f"[{self.elapsed():7.1f}s] {self.label} {outcome.number:3d} {outcome.status:<13} epochs "
            f"{outcome.epochs:3d} {self.ledger.spec.metric}={score} | {_standing(self.ledger, self.label)}"
        )

    def table(self, now: float | None = None) -> str:
        """The study so far: elapsed time, counts, best so far, and one row per running trial."""
        elapsed = (time.monotonic() if now is None else now) - self.started
        lines = [f"[{elapsed:7.1f}s] progress after {_duration(elapsed)}: {_standing(self.ledger, self.label)}"]
        running = sorted(
            (o for o in self.ledger.outcomes.values() if o.status == TrialStatus.RUNNING), key=lambda o: o.number
        )
        if running:
            metric = self.ledger.spec.metric
            width = max(len(metric), 8)
            lines.append(f"  {'trial':>5}  {'epochs':>6}  {metric:>{width}}  {'best':>8}  {'node':<15}  restarts")
            for o in running[:TABLE_ROWS]:
                node = str(o.last.get(NODE_IP) or "-")
                lines.append(
                    f"  {o.number:5d}  {o.epochs:6d}  {_number(o.last.get(metric)):>{width}}  "
                    f"{_number(real_score(o.last.get(SCORE))):>8}  {node:<15}  {o.restarts:8d}"
                )
            if len(running) > TABLE_ROWS:
                lines.append(f"  ... and {len(running) - TABLE_ROWS} more running")
        return "\n".join(lines)

    def write(self, force: bool = False) -> None:
        """The study so far, for ``tuner status`` (written atomically: a reader never sees half a file). At most
        once per ``PROGRESS_WRITE_S`` unless ``force``: a write held back is done by a later step of Tune's loop."""
        if self.path is None:
            return
        now = time.monotonic()
        if not force and self._written is not None and now - self._written < PROGRESS_WRITE_S:
            self._dirty = True
            return
        self._written, self._dirty = now, False
        ledger = self.ledger
        best = ledger.best()
        write_json(
            self.path,
            {
                "updated": dt.datetime.now().isoformat(timespec="seconds"),
                "elapsed_s": round(now - self.started, 1),
                "total": ledger.total,
                "metric": ledger.spec.metric,
                "mode": ledger.spec.mode,
                "counts": dict(ledger.counts()),
                "best": None if best is None else {"trial": best.number, "score": best.score, "config": best.config},
                "trials": [
                    {
                        "trial": o.number,
                        "trial_id": o.trial_id,
                        "status": o.status,
                        "score": o.score,
                        "epochs": o.epochs,
                        "node_ip": o.last.get(NODE_IP),
                        "node_id": o.last.get(NODE_ID),
                        "restarts": o.restarts,
                        "config": o.config,
                    }
                    for o in ledger.outcomes.values()
                ],
            },
        )


def _standing(ledger: TrialLedger, label: str = "trial") -> str:
    """Where the study stands, the same in a trial's line and in a table: "3/20 done (2 completed, 1 pruned),
    2 running, 15 not started | best val_accuracy=0.8100 (trial 4)"."""
    counts = ledger.counts()
    done = sum(counts[s] for s in ENDED)
    tally = ", ".join(f"{counts[s]} {s}" for s in ENDED if counts[s])
    waiting = max(0, ledger.total - len(ledger.outcomes))
    best = ledger.best()
    best_text = f"best {ledger.spec.metric}={best.score:.4f} ({label} {best.number})" if best else "best -"
    return (
        f"{done}/{ledger.total} done{f' ({tally})' if tally else ''}, {counts[TrialStatus.RUNNING]} running, "
        f"{waiting} not started | {best_text}"
    )


def _number(value: Any) -> str:
    return f"{value:.4f}" if finite(value) else "-"


def _duration(seconds: float) -> str:
    seconds = int(max(0.0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m{rest % 60:02d}s" if hours else f"{rest // 60}m{rest % 60:02d}s"

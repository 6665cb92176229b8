"""Replay recorded learning curves in simulated time through the service's own searcher and scheduler.

A strategy's searcher and scheduler are the objects a study runs (``tuner.search.build_search`` and
``build_scheduler``), driven the way Ray Tune's controller drives them, against a curve table
(``benchmarks.curves``) instead of training:

* W workers; whenever one is free the search algorithm is asked for a trial (``next_trial``, through Tune's own
  ``SearchGenerator`` for a ``Searcher``, as the controller does), and the scheduler hears of it (``on_trial_add``);
* a trial's proposed config gets the curve of its nearest recorded config (its distance is kept) and one of that
  config's recorded seeds, drawn with the run's seed; a config in the table replays its own curve exactly;
* an event queue holds each running trial's next result, at its start + ``trial_overhead_s`` + the recorded
  seconds to that epoch; a result goes to the scheduler (``on_trial_result``) and, unless it stops the trial, to the
  search algorithm; a stopped trial's later events are dropped; a trial's last epoch (``max_epochs``, the space's
  early-stopping rule applied to the recorded curve, or a divergence) ends it: ``on_trial_complete`` for both;
* the searcher's and the scheduler's own decision time is added to the clock (measured in wall or CPU seconds, as
  the table is replayed, or a fixed cost);
* the budget in simulated seconds ends the run; a trial still running counts with its running best at its last
  result, as ``benchmarks/search_efficiency.py`` counts a real study's.

A trial's ``score`` is what a study's trial reports (``trainables.reporting``): its running best of the metric
(the latest value for a ``score="last_epoch"`` space). With a fixed decision cost the run is a deterministic
function of its seed (Tune's trial ids are random, and nothing below depends on them); with measured decision
time, microsecond differences can reorder near-simultaneous events.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks.curves import CurveTable, nearest
from trainables.reporting import COMPLETED, DIVERGED, EARLY_STOPPED, END_REASON, EPOCH, SCORE, better
from tuner.search import REDUCTION_FACTOR, PruneLog, build_scheduler, build_search
from tuner.spec import SpaceSpec

UNBOUNDED_TRIALS = 100_000
"""The trial count a budgeted study hands the searcher (as ``benchmarks/search_efficiency.py`` does)."""


@dataclass(frozen=True)
class Strategy:
    """A searcher and a scheduler as a study builds them, with optional settings (None: the study's own):
    ``max_concurrent`` (default: the worker count, a study's trial slots), ``grace`` (the space's grace period),
    ``rf`` (reduction factor), ``brackets`` (Hyperband's) and ``startup`` (a model-based searcher's random
    start-up trials)."""

    searcher: str
    scheduler: str
    max_concurrent: int | None = None
    grace: int | None = None
    rf: int | None = None
    brackets: int | None = None
    startup: int | None = None

    @classmethod
    def parse(cls, name: str, parse_pair) -> Strategy:
        """``optuna_asha`` or with settings, ``optuna_asha:grace=10:rf=2``; ``parse_pair`` splits the first part
        into (searcher, scheduler)."""
        head, *settings = name.split(":")
        known = {f.name for f in dataclasses.fields(cls)} - {"searcher", "scheduler"}
        values = {}
        for item in settings:
            key, _, value = item.partition("=")
            if key not in known or not value.isdigit() or int(value) < 1:
                raise ValueError(
                    f"strategy {name!r}: setting {item!r}; expected KEY=N (N >= 1) with KEY one of "
                    f"{', '.join(sorted(known))}"
                )
            values[key] = int(value)
        return cls(*parse_pair(head), **values)


@dataclass
class Replay:
    """One simulated trial: which recorded curve it replays and how far it got."""

    trial: Any
    config: int
    seed: int
    distance: float
    start: float
    scores: np.ndarray
    last: int
    """The epoch the trial ends at by itself (max_epochs, early stopping or divergence)."""
    end_reason: str
    reported: int = 0
    stopped: bool = False


@dataclass
class SimRun:
    """A simulated study: ``timeline`` as ``search_efficiency.Timeline`` ((end seconds, score) per trial, sorted),
    and each trial's replay."""

    timeline: list[tuple[float, float]]
    trials: list[Replay] = field(default_factory=list)
    decision_s: float = 0.0

    @property
    def distances(self) -> np.ndarray:
        return np.array([t.distance for t in self.trials])


def trial_scores(spec: SpaceSpec, values: np.ndarray) -> np.ndarray:
    """A trial's reported ``score`` after each epoch: the running best (NaN never counts), the penalty before the
    first finite value, or the latest value for a ``last_epoch`` space."""
    penalty = -1e12 if spec.mode == "max" else 1e12
    out, best = np.empty(len(values)), None
    for e, v in enumerate(values):
        if np.isfinite(v) and (spec.score == "last_epoch" or better(float(v), best, spec.mode)):
            best = float(v)
        out[e] = penalty if best is None else best
    return out


def natural_end(spec: SpaceSpec, table: CurveTable, config: int, seed: int) -> tuple[int, str]:
    """The epoch a trial of this recorded curve ends at by itself, and why: the space's early-stopping rule (as
    ``trainables.reporting.EpochReporter`` applies it), a non-finite metric, or max_epochs."""
    n = int(table.lengths[config, seed])
    values = table.objectives[config, seed, :n]
    es, best, waited = spec.early_stopping, None, 0
    for e in range(n):
        if not np.isfinite(values[e]).all():
            return e + 1, DIVERGED
        if es is not None:
            monitored = float(values[e, table.metrics.index(es.monitor)])
            if better(monitored, best, es.mode, es.min_delta):
                best, waited = monitored, 0
            else:
                waited += 1
            if waited >= es.patience:
                return e + 1, EARLY_STOPPED
    return n, COMPLETED


def simulation_spec(spec: SpaceSpec, table: CurveTable) -> SpaceSpec:
    """The space at the table's epoch budget (a table may be recorded with fewer epochs than the space's)."""
    epochs = int(table.meta["max_epochs"])
    return dataclasses.replace(spec, max_epochs=epochs, grace_period=min(spec.grace_period, epochs))


class _Searcher:
    """The study's search algorithm as Tune's controller sees it: a ``SearchAlgorithm`` with one experiment."""

    def __init__(self, spec: SpaceSpec, strategy: Strategy, workers: int, seed: int):
        from ray.tune.experiment import Experiment
        from ray.tune.search import SearchAlgorithm, SearchGenerator

        plan = build_search(
            spec,
            strategy.searcher,
            UNBOUNDED_TRIALS,
            seed,
            strategy.max_concurrent or workers,
            [],
            startup=strategy.startup,
        )
        alg = plan.search_alg
        self.alg = alg if isinstance(alg, SearchAlgorithm) else SearchGenerator(alg)
        self.alg.set_search_properties(SCORE, spec.mode, plan.param_space)
        self._storage = tempfile.TemporaryDirectory(prefix="tuner-sim-")  # Tune's Experiment wants a storage path
        experiment = Experiment(
            "simulated",
            run=_never_trained,
            config=plan.param_space,
            num_samples=plan.num_samples,
            storage_path=self._storage.name,
        )
        self.alg.add_configurations([experiment])


def _never_trained(config):
    """The experiment's trainable: the simulator replays curves instead of running it."""
    raise RuntimeError("a simulated trial is never trained")


@dataclass
class _Clock:
    """Simulated seconds; decisions advance it by their time on ``timer`` (wall or CPU seconds, as the table's
    clock), or by a fixed ``cost``."""

    now: float = 0.0
    cost: float | None = None
    timer: Callable[[], float] = time.perf_counter
    spent: float = 0.0

    def timed(self, call, *args):
        started = self.timer()
        out = call(*args)
        took = self.timer() - started if self.cost is None else self.cost
        self.now += took
        self.spent += took
        return out


def simulate(
    spec: SpaceSpec,
    table: CurveTable,
    strategy: Strategy,
    workers: int,
    budget_s: float,
    seed: int,
    decision_cost: float | None = None,
    trial_overhead_s: float = 0.0,
    decision_timer: Callable[[], float] = time.perf_counter,
) -> SimRun:
    """One simulated study of ``strategy`` with ``workers`` trial slots for ``budget_s`` simulated seconds;
    decisions cost ``decision_cost`` seconds each, or their time on ``decision_timer`` (``time.process_time`` for
    a table replayed in CPU seconds)."""
    from ray.tune.schedulers import TrialScheduler

    spec = simulation_spec(spec, table)
    if strategy.grace is not None:
        spec = dataclasses.replace(spec, grace_period=min(strategy.grace, spec.max_epochs))
    np.random.seed(seed)  # Tune's Hyperband picks a new trial's bracket with numpy's global generator
    rng = np.random.default_rng(seed)
    search = _Searcher(spec, strategy, workers, seed)
    scheduler = build_scheduler(
        spec, strategy.scheduler, PruneLog(), strategy.rf or REDUCTION_FACTOR, strategy.brackets
    )
    scheduler.set_search_properties(SCORE, spec.mode)
    clock, run, events, running = (
        _Clock(cost=decision_cost, timer=decision_timer),
        SimRun([]),
        _Events(table, trial_overhead_s),
        {},
    )
    while True:
        while len(running) < workers and clock.now < budget_s:
            trial = clock.timed(search.alg.next_trial)
            if trial is None:
                break
            replay = _start(spec, table, trial, clock.now, rng)
            clock.timed(scheduler.on_trial_add, None, trial)
            running[trial.trial_id] = replay
            run.trials.append(replay)
            events.push(replay, 1)
        if not events:
            break
        at, trial_id, epoch = events.pop()
        if at > budget_s:
            break
        clock.now = max(clock.now, at)
        replay = running[trial_id]
        result = _result(spec, table, replay, epoch, at)
        replay.reported = epoch
        if epoch >= replay.last:
            result.update({END_REASON: replay.end_reason, "done": True})
        elif clock.timed(scheduler.on_trial_result, None, replay.trial, result) != TrialScheduler.STOP:
            clock.timed(search.alg.on_trial_result, trial_id, result)
            events.push(replay, epoch + 1)
            continue
        else:
            replay.stopped = True
        clock.timed(scheduler.on_trial_complete, None, replay.trial, result)
        clock.timed(search.alg.on_trial_complete, trial_id, result)
        run.timeline.append((at, float(replay.scores[epoch - 1])))
        del running[trial_id]
    run.timeline += [
        (_report_time(r, table, trial_overhead_s), float(r.scores[r.reported - 1]))
        for r in running.values()
        if r.reported
    ]
    run.timeline.sort()
    run.decision_s = clock.spent
    return run


def _start(spec: SpaceSpec, table: CurveTable, trial, now: float, rng: np.random.Generator) -> Replay:
    config, distance = nearest(spec, table, trial.config)
    seed = int(rng.choice(table.seeds_of(config)))
    last, reason = natural_end(spec, table, config, seed)
    scores = trial_scores(spec, table.curve(config, seed, spec.metric))
    return Replay(trial, config, seed, distance, now, scores, last, reason)


def _report_time(replay: Replay, table: CurveTable, overhead: float) -> float:
    return replay.start + overhead + float(table.elapsed[replay.config, replay.seed, replay.reported - 1])


class _Events:
    """Trials' next results by simulated time; among equal times, in the order they were queued (never by the
    random trial id)."""

    def __init__(self, table: CurveTable, overhead: float):
        self._heap: list[tuple[float, int, str, int]] = []
        self._queued = itertools.count()
        self._table, self._overhead = table, overhead

    def __bool__(self) -> bool:
        return bool(self._heap)

    def push(self, replay: Replay, epoch: int) -> None:
        at = replay.start + self._overhead + float(self._table.elapsed[replay.config, replay.seed, epoch - 1])
        heapq.heappush(self._heap, (at, next(self._queued), replay.trial.trial_id, epoch))

    def pop(self) -> tuple[float, str, int]:
        at, _, trial_id, epoch = heapq.heappop(self._heap)
        return at, trial_id, epoch


def _result(spec: SpaceSpec, table: CurveTable, replay: Replay, epoch: int, at: float) -> dict[str, Any]:
    """The result a study's trial reports after ``epoch`` (the fields the scheduler and searchers read)."""
    values = table.objectives[replay.config, replay.seed, epoch - 1]
    row = {m: float(v) for m, v in zip(table.metrics, values, strict=True) if np.isfinite(v)}
    return {**row, EPOCH: epoch, SCORE: float(replay.scores[epoch - 1]), "training_iteration": epoch,
            "time_total_s": float(table.elapsed[replay.config, replay.seed, epoch - 1]), END_REASON: "",
            "trial_id": replay.trial.trial_id, "timestamp": at}  # fmt: skip

"""Spec -> Ray Tune search algorithm, parameter space and scheduler.

Searchers are built lazily (hyperopt and optuna are imported only when chosen). Every searcher is seeded from
the run's seed in its own way (Ray's searchers name the seed differently), and every searcher that can take
starting points evaluates the report's own config first unless told not to. A warm start (``tuner.warmstart``)
hands earlier trials to the searcher before its first proposal.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainables.reporting import END_REASON, EPOCH
from tuner.internals.ray_tune import asha_state, median_rule_keys, median_rule_results, restore_asha_state
from tuner.spec import SCHEDULERS, SEARCHERS, Choice, IntUniform, LogUniform, SpaceSpec, Uniform

MAX_GRID = 100_000


@dataclass
class SearchPlan:
    search_alg: Any
    param_space: dict[str, Any]
    num_samples: int
    note: str = ""


def tune_domain(domain):
    from ray import tune

    if isinstance(domain, LogUniform):
        return tune.loguniform(domain.low, domain.high)
    if isinstance(domain, Uniform):
        return tune.uniform(domain.low, domain.high)
    if isinstance(domain, IntUniform):
        return tune.randint(domain.low, domain.high + 1)
    if isinstance(domain, Choice):
        return tune.choice(list(domain.values))
    raise TypeError(f"unsupported domain {domain!r}")


def tune_param_space(spec: SpaceSpec) -> dict[str, Any]:
    return {p.name: tune_domain(p.domain) for p in spec.params}


def grid_configs(spec: SpaceSpec) -> list[dict[str, Any]]:
    """Every point of the spec's grid, conditional parameters expanded only where they are active."""
    size = math.prod(len(p.grid_points()) for p in spec.params)
    if size > MAX_GRID:
        raise ValueError(f"grid of space {spec.name} has {size} points (> {MAX_GRID}); give its params smaller grids")
    seen, configs = set(), []
    for values in itertools.product(*(p.grid_points() for p in spec.params)):
        active = spec.active_config(dict(zip(spec.param_names, values, strict=True)))
        key = tuple(sorted((k, repr(v)) for k, v in active.items()))
        if key not in seen:
            seen.add(key)
            configs.append(spec.complete_config(active))
    return configs


WARM_TOP = 3
"""A warm start evaluates the best few earlier configs first (after the start points), with this study's seed:
random search has no model to feed, and a model-based searcher learns at once how those configs hold up."""

OPTUNA_SAMPLERS = {
    "optuna": "Optuna TPE",
    "optuna_grouped": "Optuna multivariate TPE, grouped by conditional parameters",
    "optuna_gp": "Optuna Gaussian process",
    "optuna_cmaes": "Optuna CMA-ES (categorical parameters by TPE)",
}


def build_search(
    spec: SpaceSpec,
    searcher: str,
    trials: int,
    seed: int,
    max_concurrent: int | None,
    start_points: list[dict[str, Any]],
    warm: Sequence[tuple[dict[str, Any], float]] = (),
    startup: int | None = None,
) -> SearchPlan:
    """The search algorithm for ``searcher``; ``start_points`` are evaluated first (e.g. the report's config).
    ``warm``: earlier trials' (config, score), complete points of this space, which the searcher learns from
    before it proposes (a warm start). ``startup``: random start-up trials of a model-based searcher (default: a
    share of ``trials``, see below)."""
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter

    # Concurrency is limited here for every searcher: Tune's max_concurrent_trials ignores BasicVariantGenerator.
    if searcher not in SEARCHERS:
        raise ValueError(f"unknown searcher {searcher!r}; accepted: {', '.join(SEARCHERS)}")
    space = tune_param_space(spec)
    points = [spec.complete_config(p) for p in start_points]
    if searcher == "grid":
        if warm:
            raise ValueError("a grid does not learn from earlier trials; warm-start random, hyperopt or optuna*")
        return _grid_search(spec, trials, seed, max_concurrent, space)
    best = sorted(warm, key=lambda w: w[1], reverse=spec.mode == "max")[:WARM_TOP]
    points += [config for config, _ in best]
    note = f"; warm start: the best {len(best)} of {len(warm)} earlier trial(s) first" if warm else ""
    if searcher == "random":
        alg = BasicVariantGenerator(
            points_to_evaluate=points or None, random_state=seed, max_concurrent=max_concurrent or 0
        )
        return SearchPlan(alg, space, trials, "random sampling" + note)
    if searcher == "hyperopt":
        startup = startup or min(20, max(2, trials // 3))
        from tuner.model_searchers import WarmHyperOptSearch

        alg = WarmHyperOptSearch(
            warm, points_to_evaluate=points or None, random_state_seed=seed, n_initial_points=startup
        )
        name = f"HyperOpt TPE ({startup} random start-up trials)"
    else:
        from tuner.model_searchers import optuna_search

        startup = startup or min(10, max(2, trials // 4))
        alg = optuna_search(searcher, seed, startup, points, warm)
        name = f"{OPTUNA_SAMPLERS[searcher]} ({startup} random start-up trials)"
    if max_concurrent:
        alg = ConcurrencyLimiter(alg, max_concurrent=max_concurrent)
    note += f", learnt from all {len(warm)}" if warm else ""
    return SearchPlan(alg, space, trials, name + note)


def _grid_search(spec: SpaceSpec, trials: int, seed: int, max_concurrent: int | None, space) -> SearchPlan:
    from ray.tune.search import BasicVariantGenerator

    grid = grid_configs(spec)
    note = f"grid of {len(grid)} points"
    if trials < len(grid):
        chosen = np.random.default_rng(seed).choice(len(grid), size=trials, replace=False)
        grid = [grid[i] for i in sorted(chosen)]
        note += f"; running a seeded subset of {trials}"
    elif trials > len(grid):
        note += f"; --trials {trials} is more than the grid, running all {len(grid)}"
    return SearchPlan(
        BasicVariantGenerator(points_to_evaluate=grid, max_concurrent=max_concurrent or 0), space, len(grid), note
    )


class _AshaState:
    """ASHA's state is plain (rungs of trial ids and values): it travels as it is."""

    def export_state(self) -> dict[str, Any]:
        """What a resumed study's scheduler continues with (Tune's experiment snapshots leave schedulers out)."""
        return asha_state(self)

    def import_state(self, state: dict[str, Any]) -> None:
        restore_asha_state(self, state)


class _MedianState:
    """The median rule keeps every trial's results keyed by its Trial object, which a resumed study does not have:
    they travel keyed by trial id, slimmed to the step and the metric the rule compares. A trial that runs again
    gets its results back when it next reports; the others count as the completed trials they are."""

    def export_state(self) -> dict[str, Any]:
        keys = median_rule_keys(self)
        return {
            "results": {
                getattr(trial, "trial_id", trial): [{k: r[k] for k in keys if k in r} for r in results]
                for trial, results in median_rule_results(self).items()
            }
        }

    def import_state(self, state: dict[str, Any]) -> None:
        median_rule_results(self).clear()
        median_rule_results(self).update(state["results"])

    def _rebind(self, trial) -> None:
        results = median_rule_results(self)
        restored = results.pop(trial.trial_id, None)
        if restored is not None:
            results[trial] = restored + results.get(trial, [])

    def on_trial_result(self, tune_controller, trial, result):
        self._rebind(trial)
        return super().on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller, trial, result):
        self._rebind(trial)
        return super().on_trial_complete(tune_controller, trial, result)


class PruneLog:
    """Remembers which trials a scheduler stopped before they ended on their own."""

    def __init__(self) -> None:
        self.pruned: dict[str, int] = {}


HYPERBAND_BRACKETS = 3
"""Brackets of the asynchronous Hyperband scheduler: each starts pruning at a later rung (grace, 3x grace, 9x
grace epochs), hedging against ASHA stopping slow starters too early."""


REDUCTION_FACTOR = 3
"""ASHA's and Hyperband's: a third of the trials that reach a rung go on to the next."""


def build_scheduler(
    spec: SpaceSpec,
    scheduler: str,
    prune_log: PruneLog,
    reduction_factor: int = REDUCTION_FACTOR,
    brackets: int | None = None,
):
    """ASHA, asynchronous Hyperband, median stopping or FIFO, acting on the per-epoch running best (``score``)
    over ``epoch``; ``brackets`` overrides Hyperband's (ASHA has one)."""
    from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, MedianStoppingRule, TrialScheduler

    if scheduler not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {scheduler!r}; accepted: {', '.join(SCHEDULERS)}")
    if scheduler == "fifo":
        return FIFOScheduler()
    # Ray's ASHAScheduler is AsyncHyperBandScheduler with one bracket
    asha = scheduler in ("asha", "hyperband")
    base, state = (AsyncHyperBandScheduler, _AshaState) if asha else (MedianStoppingRule, _MedianState)

    class Recording(state, base):
        def on_trial_result(self, tune_controller, trial, result):
            decision = super().on_trial_result(tune_controller, trial, result)
            if decision == TrialScheduler.STOP and not result.get(END_REASON):
                prune_log.pruned[trial.trial_id] = int(result.get(EPOCH, 0))
            return decision

    Recording.__name__ = base.__name__
    if asha:
        if scheduler == "asha":
            brackets = 1
        return Recording(
            time_attr=EPOCH,
            max_t=spec.max_epochs,
            grace_period=spec.grace_period,
            reduction_factor=reduction_factor,
            brackets=brackets or HYPERBAND_BRACKETS,
        )
    return Recording(time_attr=EPOCH, grace_period=spec.grace_period, min_samples_required=3)


__all__ = ["PruneLog", "SearchPlan", "build_scheduler", "build_search", "grid_configs", "tune_param_space"]

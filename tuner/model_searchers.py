"""The model-based searchers (HyperOpt TPE and Optuna's samplers), able to start from earlier trials.

Imported only when such a searcher is chosen: hyperopt and optuna load with it. A warm start adds earlier
trials to the searcher's own record of finished trials (HyperOpt's ``Trials``, Optuna's study) once Ray Tune has
given the searcher its space, so the first proposal already learns from them; the points are then part of the
searcher's saved state, and a resumed study does not add them again.
"""

from __future__ import annotations

import warnings
from typing import Any

import hyperopt
import optuna
from ray.tune.search.hyperopt import HyperOptSearch
from ray.tune.search.optuna import OptunaSearch

from tuner.internals.ray_tune import hyperopt_point, hyperopt_trials

Warm = list[tuple[dict[str, Any], float]]


class _WarmStart:
    """Adds the earlier trials (``_learn``) once Ray Tune has given the searcher its space and metric."""

    def __init__(self, warm: Warm, **kwargs: Any):
        super().__init__(**kwargs)
        self._warm = list(warm)

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        if not super().set_search_properties(metric, mode, config, **spec):
            return False
        if self._warm:
            self._learn(self._warm)
            self._warm = []
        return True


class WarmHyperOptSearch(_WarmStart, HyperOptSearch):
    """HyperOpt TPE whose ``Trials`` start with earlier finished trials (Ray Tune's HyperOptSearch takes only
    points to evaluate, not their scores)."""

    def _learn(self, warm: Warm) -> None:
        from hyperopt.fmin import generate_trial

        trials = hyperopt_trials(self)
        docs = []
        for tid, (config, score) in zip(trials.new_trial_ids(len(warm)), warm, strict=True):
            doc = generate_trial(tid, hyperopt_point(self, config))  # HyperOpt records a choice by its index
            # HyperOpt minimises; metric_op is -1 for a maximised metric
            doc.update(state=hyperopt.JOB_STATE_DONE, result={"loss": self.metric_op * score, "status": "ok"})
            docs.append(doc)
        trials.insert_trial_docs(docs)
        trials.refresh()


class WarmOptunaSearch(_WarmStart, OptunaSearch):
    """Ray Tune's OptunaSearch whose study starts with earlier finished trials. Ray's own ``evaluated_rewards``
    needs a score for every point to evaluate, and the report's config, evaluated first, has none."""

    def _learn(self, warm: Warm) -> None:
        for point, score in warm:
            self.add_evaluated_point(point, score)


def optuna_search(kind: str, seed: int, startup: int, points: list[dict[str, Any]], warm: Warm) -> OptunaSearch:
    """Ray Tune's OptunaSearch with the sampler ``kind`` names (see ``tuner.search.OPTUNA_SAMPLERS``)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return WarmOptunaSearch(warm, points_to_evaluate=points or None, sampler=optuna_sampler(kind, seed, startup))


def optuna_sampler(kind: str, seed: int, startup: int) -> optuna.samplers.BaseSampler:
    samplers = optuna.samplers
    tpe = samplers.TPESampler(seed=seed, n_startup_trials=startup)
    with warnings.catch_warnings():  # multivariate TPE, GP and some CMA-ES options are marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if kind == "optuna":
            return tpe
        if kind == "optuna_grouped":
            # group: parameters that exist only under a condition are modelled with the others of their group
            return samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True, group=True)
        if kind == "optuna_gp":
            return samplers.GPSampler(seed=seed, n_startup_trials=startup)
        if kind == "optuna_cmaes":
            # CMA-ES models numbers only: categorical parameters are sampled by TPE (its independent sampler)
            return samplers.CmaEsSampler(
                seed=seed, n_startup_trials=startup, independent_sampler=tpe, warn_independent_sampling=False
            )
    raise ValueError(f"unknown Optuna sampler {kind!r}")


__all__ = ["WarmHyperOptSearch", "WarmOptunaSearch", "optuna_sampler", "optuna_search"]

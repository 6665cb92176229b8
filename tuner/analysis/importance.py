"""Hyperparameter importance of a finished study with Optuna's evaluators (fANOVA and PED-ANOVA), whatever
searcher ran it: the trials become an in-memory Optuna study whose distributions are the space's domains.

Optuna's evaluators only use parameters present in every trial they are given. So the parameters active in every
trial are ranked over all of them, and each conditional parameter (``Param.active_if``) is evaluated on its own
study of the trials where it is active, together with the parameters active in all of those; its value is labelled
with that condition and trial count and is not comparable with the main ranking (another set of trials, another
normalisation). Too few trials for either is said, with no numbers.

Which trials are compared (``compared_trials``): every search trial with a score and a learning curve, each scored
at the highest epoch all of them reached (with ASHA, the first rung: the way multi-fidelity importance is usually
computed), not only the trials that ended on their own, which under a pruning scheduler are a few survivors
selected by the very parameters being ranked. Without learning curves (the MLflow store did not answer) the
trials that ended on their own are compared on their final scores, and ``basis`` says so.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import Any

from tuner.analysis.trials import StudyTrials, TrialRecord
from tuner.schema import ENDED_ON_ITS_OWN, TrialStatus
from tuner.spec import Choice, Domain, IntUniform, LogUniform, SpaceSpec, Uniform

MIN_TRIALS = 5
"""Fewer trials to compare than this: no importance (a forest on 4 points ranks noise)."""
EVALUATORS = ("fanova", "ped_anova")


def distribution(domain: Domain):
    """The Optuna distribution of one of the space's domains."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(domain, LogUniform):
        return FloatDistribution(domain.low, domain.high, log=True)
    if isinstance(domain, Uniform):
        return FloatDistribution(domain.low, domain.high)
    if isinstance(domain, IntUniform):
        return IntDistribution(domain.low, domain.high)
    if isinstance(domain, Choice):
        return CategoricalDistribution(domain.values)
    raise TypeError(f"no Optuna distribution for {domain!r}")


def optuna_study(spec: SpaceSpec, mode: str, trials: list[TrialRecord], params: list[str] | None = None):
    """An in-memory Optuna study of ``trials`` (their scores as values) over ``params`` (default: every active
    parameter of each trial); a trial with a value outside its domain (a study older than the space) is left out."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    for trial in trials:
        names = [p for p in (params or trial.config) if p in trial.config]
        try:
            frozen = optuna.trial.create_trial(
                value=trial.score,
                params={p: trial.config[p] for p in names},
                distributions={p: distribution(spec.param(p).domain) for p in names},
                user_attrs={"number": trial.number},
            )
        except (ValueError, KeyError):
            continue
        study.add_trial(frozen)
    return study


def evaluate(study, params: list[str]) -> dict[str, dict[str, float]]:
    """Both evaluators' normalised importances of ``params`` on ``study``, largest first."""
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator, get_param_importances

    evaluators = {"fanova": FanovaImportanceEvaluator(seed=0), "ped_anova": PedAnovaImportanceEvaluator()}
    found = {}
    with warnings.catch_warnings():  # Optuna marks PED-ANOVA experimental
        warnings.simplefilter("ignore")
        for name, evaluator in evaluators.items():
            values = get_param_importances(study, evaluator=evaluator, params=params)
            found[name] = {p: round(float(v), 6) for p, v in values.items()}
    return found


@dataclass(frozen=True)
class Compared:
    """The trials importance, slices and parallel coordinates compare, with the scores they are compared on."""

    trials: list[TrialRecord]
    metric: str
    mode: str
    epoch: int | None
    """The epoch every score is taken at; None: each trial's final score."""
    basis: str
    """What was compared, in words."""
    chosen: int | None = None
    """The number of the trial the study chose (marked in the figures)."""

    @property
    def at(self) -> str:
        return "" if self.epoch is None else f" at epoch {self.epoch}"


def compared_trials(spec: SpaceSpec, trials: StudyTrials, chosen: int | None = None) -> Compared:
    """Every trial with a learning curve, scored at the highest epoch all of them reached; without learning curves,
    the trials that ended on their own with their final scores."""
    ran = [t for t in trials.scored() if t.status not in (TrialStatus.FAILED, TrialStatus.DIVERGED)]
    curves = [t for t in ran if t.history]
    if not ran or len(curves) < len(ran):
        missing = f" ({len(ran) - len(curves)} trial(s) without a learning curve)" if ran else ""
        basis = (
            f"trials that ended on their own ({', '.join(ENDED_ON_ITS_OWN)}) with their final score{missing}; "
            f"pruned, stopped, failed and diverged trials left out"
        )
        return Compared(trials.final(), trials.metric, trials.mode, None, basis, chosen)
    epoch = min(max(t.history) for t in curves)
    rescored = [dataclasses.replace(t, score=_score_at(spec, trials.mode, t.history, epoch)) for t in curves]
    kept = [t for t in rescored if t.score is not None and math.isfinite(t.score)]
    rule = "its latest value" if spec.score == "last_epoch" else "its best value up to then"
    basis = (
        f"every trial with a learning curve, scored at epoch {epoch}, the highest all of them reached "
        f"({rule}); failed and diverged trials left out"
    )
    return Compared(kept, trials.metric, trials.mode, epoch, basis, chosen)


def _score_at(spec: SpaceSpec, mode: str, history: dict[int, float], epoch: int) -> float | None:
    seen = [value for step, value in sorted(history.items()) if step <= epoch]
    if not seen:
        return None
    if spec.score == "last_epoch":
        return seen[-1]
    return max(seen) if mode == "max" else min(seen)


def param_importance(spec: SpaceSpec, trials: StudyTrials) -> dict[str, Any]:
    """``importance.json``: the main ranking, the conditional parameters' own, and what was left out and why."""
    found = compared_trials(spec, trials)
    compared = found.trials
    result: dict[str, Any] = {
        "metric": trials.metric, "mode": trials.mode, "evaluators": list(EVALUATORS),
        "trials_used": len(compared),
        "trials_left_out": len(trials.trials) - len(compared),
        "scored_at_epoch": found.epoch,
        "basis": found.basis,
    }  # fmt: skip
    if len(compared) < MIN_TRIALS:
        result["note"] = f"too few trials to compare ({len(compared)}; need {MIN_TRIALS}): no importance"
        return result
    shared = [p.name for p in spec.params if all(p.name in t.config for t in compared)]
    varied = [p for p in shared if len({repr(t.config[p]) for t in compared}) > 1]
    result["constant"] = [p for p in shared if p not in varied]
    result["importance"] = {}
    if varied:
        study = optuna_study(spec, trials.mode, compared, varied)
        result["trials_used"] = len(study.trials)  # less any trial whose value lies outside its domain
        result["importance"] = evaluate(study, varied)
    result["conditional"] = {
        p.name: _conditional(spec, trials.mode, compared, p.name) for p in spec.params if p.name not in shared
    }
    return result


def _conditional(spec: SpaceSpec, mode: str, final: list[TrialRecord], name: str) -> dict[str, Any]:
    """One conditional parameter, evaluated on the trials where it is active."""
    parent, allowed = spec.param(name).active_if or ("?", ())
    active = [t for t in final if name in t.config]
    entry: dict[str, Any] = {"condition": f"{parent} in {list(allowed)}", "trials": len(active)}
    if len(active) < MIN_TRIALS:
        entry["excluded"] = f"active in {len(active)} of the {len(final)} trials; need {MIN_TRIALS}"
        return entry
    shared = [p.name for p in spec.params if all(p.name in t.config for t in active)]
    varied = [p for p in shared if len({repr(t.config[p]) for t in active}) > 1]
    if name not in varied:
        entry["excluded"] = f"it took one value in the {len(active)} trials where it is active"
        return entry
    values = evaluate(optuna_study(spec, mode, active, varied), varied)
    entry.update({key: found[name] for key, found in values.items()})
    entry["evaluated_with"] = varied
    return entry


def ranking(importance: dict[str, Any], evaluator: str = "fanova") -> list[tuple[str, float]]:
    """(parameter, importance) of the main ranking, largest first; empty when there is none."""
    values = (importance.get("importance") or {}).get(evaluator) or {}
    return sorted(values.items(), key=lambda kv: -kv[1])

"""The verify phase: the search's top configs trained again with fresh seeds, so the chosen config is the one with
the best mean, not the luckiest single run.

The top ``--verify-top`` trials (by search score; for spaces scored on their last epoch, those that ran every
epoch) are each trained ``--verify-seeds`` more times, every run to its end (no pruning), as their own Ray Tune
experiment in the study's storage (``tuner.study.search.train_to_end``). Their MLflow child runs are tagged
``tuner.phase=verify``. The mean is over the fresh seeds only: the search score of a top trial is biased
upwards by the very selection that made it top.
The chosen config's search trial keeps its role as the study's best trial (its weights are what the test split
scores): re-verification chooses the config, it does not look at the test split.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from tuner.schema import VERIFY_PHASE
from tuner.study.prepare import Study
from tuner.study.search import SearchResult, best_trial, train_to_end


@dataclass(frozen=True)
class Candidate:
    """One top config of the search and its scores with fresh seeds (None: that run produced no score)."""

    trial: Any
    """Its search trial (``tuner.monitor.TrialOutcome``)."""
    seeds: tuple[int, ...]
    scores: tuple[float | None, ...]

    @property
    def values(self) -> list[float]:
        return [s for s in self.scores if s is not None]

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def sd(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    def record(self) -> dict[str, Any]:
        return {"trial_number": self.trial.number, "trial_id": self.trial.trial_id, "search_score": self.trial.score,
                "config": self.trial.config, "seeds": list(self.seeds), "scores": list(self.scores),
                "mean": self.mean, "sd": self.sd}  # fmt: skip


@dataclass(frozen=True)
class Verification:
    chosen: Any
    """The trial whose config the study hands back (``tuner.monitor.TrialOutcome``)."""
    candidates: tuple[Candidate, ...] = ()
    """Empty when verification is off (``--verify-top 0``, ``--config``)."""

    def record(self) -> dict[str, Any] | None:
        """What ``best_config.json`` keeps of the verification."""
        if not self.candidates:
            return None
        return {"chosen_trial_number": self.chosen.number, "candidates": [c.record() for c in self.candidates]}

    @property
    def chosen_candidate(self) -> Candidate | None:
        return next((c for c in self.candidates if c.trial is self.chosen), None)


def verify(study: Study, search: SearchResult) -> Verification:
    plan, opts = study.plan, study.plan.options
    best = best_trial(study, search)
    top = top_trials(study, search)[: opts.verify_top]
    if not top or plan.fixed_config is not None:
        return Verification(best)
    seeds = tuple(opts.seed + 1 + i for i in range(opts.verify_seeds))  # the search trained every trial with seed
    study.echo(f"verify: the top {len(top)} config(s), each with {len(seeds)} fresh seed(s) {list(seeds)}")
    # Only the search trials' weights are evaluated later: the verify runs' checkpoints are not kept.
    runs = [(trial.config, seed) for trial in top for seed in seeds]
    from tuner.monitor.ledger import config_key  # with Ray Tune: imported as Ray starts (tuner.cluster)

    reruns = {config_key(trial.config): trial.number for trial in top}
    ledger = train_to_end(study, runs, VERIFY_PHASE, keep=False, reruns=reruns)
    candidates = tuple(_candidate(trial, seeds, ledger) for trial in top)
    chosen = _choose(study, candidates, best)
    _say(study, candidates, chosen)
    return Verification(chosen.trial, candidates)


def top_trials(study: Study, search: SearchResult) -> list[Any]:
    """The search's trials in the order verification takes its candidates from."""
    spec = study.plan.spec
    ranked = search.ledger.ranked()
    if spec.score == "last_epoch":  # a partial K-fold mean is no candidate
        ranked = [o for o in ranked if o.epochs >= spec.max_epochs]
    return ranked


def _candidate(trial: Any, seeds: tuple[int, ...], ledger) -> Candidate:
    from tuner.monitor.ledger import config_key
    from tuner.trial import SEED

    key = config_key(trial.config)
    by_seed = {o.last.get(SEED): o.score for o in ledger.outcomes.values() if config_key(o.config) == key}
    return Candidate(trial, seeds, tuple(by_seed.get(seed) for seed in seeds))


def _choose(study: Study, candidates: tuple[Candidate, ...], best: Any) -> Candidate:
    """The candidate with the best mean over fresh seeds; ties and candidates without any score keep the search's
    order (the search's best first)."""
    sign = -1 if study.plan.spec.mode == "max" else 1
    scored = [c for c in candidates if c.mean is not None]
    if not scored:
        return next(c for c in candidates if c.trial is best)
    return min(scored, key=lambda c: sign * c.mean)


def _say(study: Study, candidates: tuple[Candidate, ...], chosen: Candidate) -> None:
    metric = study.plan.spec.metric
    study.echo(f"verify: {metric} with fresh seeds (mean +- sd), search score beside it:")
    for c in candidates:
        mean = "-" if c.mean is None else f"{c.mean:.4f}"
        sd = "" if c.sd is None else f" +- {c.sd:.4f}"
        mark = "  <- chosen" if c is chosen else ""
        study.echo(
            f"  trial {c.trial.number:3d}  {mean}{sd}  (search {c.trial.score:.4f}; "
            f"{len(c.values)}/{len(c.seeds)} runs scored){mark}"
        )


__all__ = ["Candidate", "Verification", "top_trials", "verify"]

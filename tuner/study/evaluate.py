"""The evaluate phase: the chosen trial's best-epoch weights scored once on the held-out test split, beside the
report config's on the same split, each with a 95 % bootstrap interval; and, where the space asks for it (report
003, 2.6), the mean prediction of the top-k complete trials.

The interval resamples the test split's units (rows, or the subjects or beats a family's split holds) with
replacement and scores each resample with the family's own ``evaluate``, so every metric a family reports gets
one, computed as the family computes it. A family with a ``split_scorer`` (``trainables.family.ResamplingFamily``)
runs its models on the split once and scores each resample from those outputs; for any other family each resample
runs its ``evaluate`` again. Resampling stops at ``RESAMPLES`` or after ``RESAMPLE_BUDGET_S`` seconds per trial,
and the count used is recorded beside it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainables.family import EnsemblingFamily, ResamplingFamily, load_family
from trainables.reporting import CHECKPOINT_FILE
from tuner.errors import TunerError
from tuner.storage import local_checkpoint
from tuner.study.baseline import Baseline
from tuner.study.prepare import Study
from tuner.study.search import SearchResult

RESAMPLES = 200
RESAMPLE_BUDGET_S = 5.0
LEVEL = 0.95


@dataclass(frozen=True)
class TestFigures:
    """One trial's figures on the test split and their bootstrap intervals."""

    values: dict[str, float]
    interval: dict[str, tuple[float, float]]
    """metric -> (low, high), the central ``LEVEL`` of the resampled figures."""
    resamples: int

    def record(self) -> dict[str, Any]:
        return {"values": self.values, "interval": {k: list(v) for k, v in self.interval.items()},
                "level": LEVEL, "resamples": self.resamples}  # fmt: skip


@dataclass(frozen=True)
class Evaluation:
    best: Any
    """The chosen trial (``tuner.monitor.TrialOutcome``)."""
    test: TestFigures | None
    """The chosen trial on the test split; None when the data has no test split."""
    baseline: TestFigures | None
    """The report's config on the same test split; None when the baseline phase was skipped."""
    baseline_note: str
    ensemble: dict[str, Any] | None
    """The top-k ensemble's figures, a note saying why it was skipped, or None when the space has none."""
    references: dict[str, Any] | None = None
    """The reference phase's record (``tuner.study.references``): the references' figures and the paired
    differences, or a note saying why there are none; None before that phase."""


def evaluate(study: Study, search: SearchResult, chosen, reference: Baseline) -> Evaluation:
    """Score the ``chosen`` trial and the report config's ``reference`` trial on the test split, and the ensemble."""
    test = _test_figures(study, chosen)
    base = _test_figures(study, reference.trial) if reference.trial is not None and test is not None else None
    ensemble = None if study.plan.fixed_config else _ensemble(study, search)
    return Evaluation(chosen, test, base, reference.note, ensemble)


def trial_context(study: Study):
    """The context a family's ``evaluate`` and ``predict`` run with: the study's seed, on the CPU, reporting nowhere."""
    from tuner.trial import make_context

    return make_context(study.plan.spec, study.plan.options.seed, "cpu", report=lambda row, ckpt: None)


def _test_figures(study: Study, trial) -> TestFigures | None:
    data = study.data
    if data is None or "test" not in data.splits:
        return None
    if trial.checkpoint_path is None:
        raise TunerError(f"trial {trial.trial_id} left no checkpoint; cannot evaluate it on the test split")
    family, ctx = load_family(study.plan.spec.trainable), trial_context(study)
    with local_checkpoint(study.plan.options.storage, trial.checkpoint_path) as folder:
        score = _resample_scorer(family, trial.config, data, ctx, folder / CHECKPOINT_FILE)
        values = score(None)
        interval, count = bootstrap_interval(score, data.splits["test"], study.plan.options.seed)
    return TestFigures(values, interval, count)


def _resample_scorer(family, config: dict[str, Any], data, ctx, weights):
    """``score(units)``: the family's test figures of a resample of the test split's units (None: the split)."""
    if isinstance(family, ResamplingFamily):
        return family.split_scorer(config, data, ctx, weights, split="test")

    def score(rows: np.ndarray | None) -> dict[str, float]:
        resampled = data if rows is None else dataclasses.replace(data, splits={**data.splits, "test": rows})
        return family.evaluate(config, resampled, ctx, weights, split="test")

    return score


def bootstrap_interval(score, units: np.ndarray, seed: int) -> tuple[dict[str, tuple[float, float]], int]:
    """The central ``LEVEL`` interval of ``score`` over resamples of ``units`` drawn with replacement."""
    rng = np.random.default_rng(seed)
    deadline = time.monotonic() + RESAMPLE_BUDGET_S
    samples: list[dict[str, float]] = []
    with warnings.catch_warnings():  # a resample may miss a class: scikit-learn warns, the figure is still right
        warnings.simplefilter("ignore")
        while len(samples) < RESAMPLES and (len(samples) < 20 or time.monotonic() < deadline):
            samples.append(score(rng.choice(units, size=len(units), replace=True)))
    tail = (1 - LEVEL) / 2 * 100
    interval = {}
    for key in samples[0]:
        values = np.array([s[key] for s in samples], dtype=float)
        if np.isfinite(values).all():
            low, high = np.percentile(values, [tail, 100 - tail])
            interval[key] = (float(low), float(high))
    return interval, len(samples)


def ensemble_members(study: Study, search: SearchResult) -> list[Any] | None:
    """The trials whose mean prediction the ensemble scores (the top ``ensemble_top_k`` that ran every epoch); None
    when the space has no ensemble."""
    spec = study.plan.spec
    top_k = int(spec.fixed.get("ensemble_top_k", 0))
    if top_k < 2 or study.data is None or not isinstance(load_family(spec.trainable), EnsemblingFamily):
        return None
    return [o for o in search.ledger.ranked() if o.epochs >= spec.max_epochs and o.checkpoint_path][:top_k]


def _ensemble(study: Study, search: SearchResult) -> dict[str, Any] | None:
    spec = study.plan.spec
    complete = ensemble_members(study, search)
    if complete is None:
        return None
    if len(complete) < 2:
        return {"note": f"skipped: {len(complete)} trial(s) ran all {spec.max_epochs} epochs; need at least 2"}
    with contextlib.ExitStack() as stack:
        members = [
            (
                o.config,
                stack.enter_context(local_checkpoint(study.plan.options.storage, o.checkpoint_path)) / CHECKPOINT_FILE,
            )
            for o in complete
        ]
        figures = load_family(spec.trainable).ensemble(members, study.data, trial_context(study))
    return {**figures, "trial_numbers": [o.number for o in complete]}


__all__ = [
    "Evaluation",
    "TestFigures",
    "bootstrap_interval",
    "ensemble_members",
    "evaluate",
    "trial_context",
]

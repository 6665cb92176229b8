"""Phase 4, evaluate: the best trial's best-epoch weights scored once on the held-out test split, and, where the
space asks for it (report 003, 2.6), the mean prediction of the top-k complete trials."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from trainables.family import EnsemblingFamily, load_family
from trainables.reporting import CHECKPOINT_FILE
from tuner.errors import TunerError
from tuner.storage import local_checkpoint
from tuner.study.fit import SearchResult
from tuner.study.prepare import Study


@dataclass(frozen=True)
class Evaluation:
    best: Any
    """The best trial (``tuner.monitor.TrialOutcome``)."""
    test: dict[str, float] | None
    """The best trial's figures on the test split; None when the data has no test split."""
    ensemble: dict[str, Any] | None
    """The top-k ensemble's figures, a note saying why it was skipped, or None when the space has none."""


def evaluate(study: Study, search: SearchResult, chosen) -> Evaluation:
    """Score the ``chosen`` trial (``tuner.monitor.TrialOutcome``) on the test split, and the ensemble."""
    test = _test_figures(study, chosen)
    return Evaluation(chosen, test, None if study.plan.fixed_config else _ensemble(study, search))


def _context(study: Study):
    from tuner.trial import make_context

    return make_context(study.plan.spec, study.plan.options.seed, "cpu", report=lambda row, ckpt: None)


def _test_figures(study: Study, best) -> dict[str, float] | None:
    data = study.data
    if data is None or "test" not in data.splits:
        return None
    if best.checkpoint_path is None:
        raise TunerError(f"the best trial {best.trial_id} left no checkpoint; cannot evaluate it on the test split")
    family = load_family(study.plan.spec.trainable)
    with local_checkpoint(study.plan.options.storage, best.checkpoint_path) as folder:
        return family.evaluate(best.config, data, _context(study), folder / CHECKPOINT_FILE, split="test")


def _ensemble(study: Study, search: SearchResult) -> dict[str, Any] | None:
    spec = study.plan.spec
    top_k = int(spec.fixed.get("ensemble_top_k", 0))
    family = load_family(spec.trainable)
    if top_k < 2 or study.data is None or not isinstance(family, EnsemblingFamily):
        return None
    complete = [o for o in search.ledger.ranked() if o.epochs >= spec.max_epochs and o.checkpoint_path]
    if len(complete) < 2:
        return {"note": f"skipped: {len(complete)} trial(s) ran all {spec.max_epochs} epochs; need at least 2"}
    with contextlib.ExitStack() as stack:
        members = [(o.config, stack.enter_context(local_checkpoint(study.plan.options.storage, o.checkpoint_path))
                    / CHECKPOINT_FILE) for o in complete[:top_k]]  # fmt: skip
        figures = family.ensemble(members, study.data, _context(study))
    return {**figures, "trial_numbers": [o.number for o in complete[:top_k]]}


__all__ = ["Evaluation", "evaluate"]

"""The tidy phase: what a finished study keeps in its storage.

Later commands read the weights of a few trials only: the chosen one, the top ``--verify-top`` (at least
``tuner verify``'s default; it chooses among them again, and the top K of an extended study are among the old top
K and the new trials), the ensemble's members, and the search's trial of the report's config (the baseline). Those
keep their latest checkpoint's weights; no trial resumes once the study has finished, so training states go, and
every other trial's checkpoints with them (``tuner.monitor.janitor.keep_only``). ``--keep-checkpoints`` keeps
everything. An interrupted study never gets here: its trials keep what they resume from.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tuner.options import RunOptions
from tuner.storage import SEARCH_EXPERIMENT, is_uri
from tuner.study.baseline import BASELINE_EXPERIMENT, Baseline
from tuner.study.evaluate import ensemble_members
from tuner.study.prepare import Study
from tuner.study.search import SearchResult
from tuner.study.verify import Verification, top_trials

KEPT_RECORD = "checkpoints_kept"
"""In ``run.json`` of a tidied study: ``{"top": K, "trials": [numbers]}``, the search trials whose weights stay
(the top K among them). Absent: every checkpoint is still there."""


def tidy(study: Study, search: SearchResult, checked: Verification, reference: Baseline) -> None:
    """Delete what no later command reads (unless ``--keep-checkpoints``) and say what the run folder holds."""
    from tuner.monitor.janitor import keep_only

    plan = study.plan
    if plan.options.keep_checkpoints:
        study.echo(f"run folder: {_size(plan.run_dir)} (every checkpoint kept: --keep-checkpoints)")
        return
    kept = kept_trials(study, search, checked, reference)
    # Recorded before anything goes: `tuner verify --top K` may only choose among trials whose weights stay.
    study.record.info[KEPT_RECORD] = {"top": kept_top_count(plan.options), "trials": sorted(kept.values())}
    study.record.write()
    # The baseline's own run is trained again by any later command that needs it.
    keep_only(plan.study_root, {SEARCH_EXPERIMENT: set(kept), BASELINE_EXPERIMENT: set()})
    where = f" in {plan.study_root}" if is_uri(plan.study_root) else ""
    study.echo(
        f"run folder: {_size(plan.run_dir)} (checkpoints of {len(kept)} trial(s) kept{where}; "
        f"--keep-checkpoints keeps all)"
    )


def kept_trials(study: Study, search: SearchResult, checked: Verification, reference: Baseline) -> dict[str, int]:
    """Trial id -> number of the search trials whose weights a later command may read."""
    top = top_trials(study, search)[: kept_top_count(study.plan.options)]
    members = ensemble_members(study, search) or []
    searched = search.ledger.outcomes
    baseline = [reference.trial] if reference.trial is not None and reference.trial.trial_id in searched else []
    return {o.trial_id: o.number for o in [checked.chosen, *top, *members, *baseline]}


def kept_top_count(options: RunOptions) -> int:
    """How many of the search's top trials keep their weights: the study's ``--verify-top``, and at least
    ``tuner verify``'s default, so that a study run without verification can still be verified."""
    return max(options.verify_top, RunOptions().verify_top)


def _size(folder: Path) -> str:
    total = 0
    for parent, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(parent, name)).st_size
            except OSError:  # removed while counted
                pass
    for unit in ("B", "kB", "MB", "GB"):
        if total < 1000 or unit == "GB":
            return f"{total:.0f} {unit}" if unit == "B" else f"{total:.1f} {unit}"
        total /= 1000
    raise AssertionError("unreachable")


def kept_top(info: dict[str, Any]) -> int | None:
    """How many of a finished study's top trials kept their weights (None: all did)."""
    kept = info.get(KEPT_RECORD)
    return int(kept["top"]) if kept else None


__all__ = ["KEPT_RECORD", "kept_top", "kept_trials", "tidy"]

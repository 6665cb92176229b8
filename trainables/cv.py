"""Cross-validated objectives: a trial trains K fold models side by side and reports their mean every epoch.

A space turns it on with the fixed setting ``cv_folds`` (``--set cv_folds=K``): the non-test rows (the loader's
train and validation splits together) are cut into K folds, stratified by class for classification, drawn with
the trial's seed (so the verify phase's fresh seeds also reshuffle the folds). Each fold model trains on K-1 folds
and validates on the remaining one; the trial reports the mean of the K validation rows after every epoch, so
ASHA, median stopping and early stopping act on a figure measured on every non-test row instead of on one small
validation split (the learning rate reported is fold 0's: ``FIRST_FOLD_KEYS``). ``cv_folds = 1`` is the loader's
own single train/validation split, as the reports trained. The test rows are never part of a fold: they are scored
once, after the search, by the mean prediction of the K fold models.

(``pain_rnn`` and the ``hms_*`` spaces fold inside the trial their own way: by subject and by patient, as their
reports did, with the folds fixed by the loader.)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

CV_FOLDS = "cv_folds"
"""The fixed setting that turns cross-validation on: the number of folds (1: the single split)."""
BATCHED_FOLDS = "batched_folds"
"""The fixed setting (true by default) that trains a trial's fold models as one computation where the family can
(trainables.mlp_batched); false: one after the other."""


def fold_count(fixed: dict[str, Any]) -> int:
    k = int(fixed.get(CV_FOLDS, 1))
    if k < 1:
        raise ValueError(f"{CV_FOLDS} must be 1 (the single split) or more, got {k}")
    return k


def fold_indices(data: Any, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, validation rows) of each of the ``k`` folds over the non-test rows of ``data`` (row indices
    into its arrays). ``k == 1``: the loader's own train and validation splits."""
    if k == 1:
        return [(data.splits["train"], data.splits["val"])]
    from sklearn.model_selection import KFold, StratifiedKFold

    rows = np.sort(np.concatenate([data.splits["train"], data.splits["val"]]))
    y = np.asarray(data.arrays["y"])[rows]
    classes = y.dtype.kind in "iub"
    splitter = (StratifiedKFold if classes else KFold)(n_splits=k, shuffle=True, random_state=seed)
    return [(rows[train], rows[val]) for train, val in splitter.split(rows, y if classes else None)]


FIRST_FOLD_KEYS = ("lr",)
"""Keys of a fold's epoch row that are a setting the fold model trained with, not a measurement: the trial reports
fold 0's value. Each fold's LR schedule reacts to its own validation loss, so a mean of the folds' rates would be
a rate no model used."""


def mean_row(rows: list[dict[str, float]]) -> dict[str, float]:
    """The folds' epoch rows averaged key by key, but for ``FIRST_FOLD_KEYS`` (fold 0's value); a key whose value
    is not finite in some fold is not finite in the mean either (a diverged fold makes the trial diverge)."""
    if len(rows) == 1:
        return dict(rows[0])
    keys = [key for key in rows[0] if all(key in row for row in rows)]
    return {key: rows[0][key] if key in FIRST_FOLD_KEYS else _mean(rows, key) for key in keys}


def _mean(rows: list[dict[str, float]], key: str) -> float:
    return float(np.mean([row[key] for row in rows])) if _all_finite(rows, key) else math.nan


def _all_finite(rows: list[dict[str, float]], key: str) -> bool:
    return all(isinstance(row[key], int | float) and math.isfinite(row[key]) for row in rows)


__all__ = ["BATCHED_FOLDS", "CV_FOLDS", "FIRST_FOLD_KEYS", "fold_count", "fold_indices", "mean_row"]

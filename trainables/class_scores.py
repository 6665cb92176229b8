"""Classification figures from one confusion matrix, with scikit-learn's definitions and zero-division rules.

scikit-learn's metric functions validate their inputs on every call (about 5 ms each); the test figures' bootstrap
scores 200 resamples per trial and the references' paired intervals as many again, so those checks cost seconds
per study. These functions count a confusion matrix with ``np.bincount`` once and read each figure from it.
``tests/test_class_scores.py`` checks them against scikit-learn on random and degenerate inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class Confusion:
    """The confusion matrix of integer labels ``y`` (true) and ``pred``; ``labels``: the classes it covers (by
    default, as scikit-learn: the sorted union of the labels present in either)."""

    def __init__(self, y: np.ndarray, pred: np.ndarray, labels: Sequence[int] | None = None):
        y, pred = np.asarray(y).astype(np.int64, copy=False), np.asarray(pred).astype(np.int64, copy=False)
        self.labels = np.union1d(y, pred) if labels is None else np.asarray(labels, dtype=np.int64)
        n = len(self.labels)
        yi, pi = np.searchsorted(self.labels, y), np.searchsorted(self.labels, pred)
        # Labels outside ``labels`` (only possible when given) are not counted, as scikit-learn does.
        inside = (yi < n) & (pi < n)
        inside[inside] = (self.labels[yi[inside]] == y[inside]) & (self.labels[pi[inside]] == pred[inside])
        self.matrix = np.bincount(yi[inside] * n + pi[inside], minlength=n * n).reshape(n, n)
        self.correct = int(np.count_nonzero(y == pred))
        self.total = len(y)

    @property
    def true_positives(self) -> np.ndarray:
        return np.diag(self.matrix)

    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def precision(self) -> np.ndarray:
        """Per class: true positives over predicted positives, 0 where nothing was predicted."""
        return _ratio(self.true_positives, self.matrix.sum(axis=0))

    def recall(self) -> np.ndarray:
        """Per class: true positives over actual positives, 0 where the class has no rows."""
        return _ratio(self.true_positives, self.matrix.sum(axis=1))

    def f1(self) -> np.ndarray:
        """Per class: 2 tp / (2 tp + fp + fn), 0 where the class is neither present nor predicted."""
        tp = self.true_positives
        return _ratio(2 * tp, self.matrix.sum(axis=0) + self.matrix.sum(axis=1))

    def label_precision(self, label: int) -> float:
        """The precision of one class (``precision_score(pos_label=label, zero_division=0)``)."""
        where = np.flatnonzero(self.labels == label)
        return float(self.precision()[where[0]]) if len(where) else 0.0

    def balanced_accuracy(self) -> float:
        """The mean recall over the classes present in ``y`` (``balanced_accuracy_score``: a class only predicted
        has no recall and is left out)."""
        actual = self.matrix.sum(axis=1)
        present = actual > 0
        return float(np.mean(self.true_positives[present] / actual[present])) if present.any() else 0.0


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros(len(numerator)), where=denominator > 0)


__all__ = ["Confusion"]

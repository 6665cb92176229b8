"""The confusion-matrix figures give scikit-learn's numbers, zero-division rules included."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, precision_score, recall_score

from trainables.class_scores import Confusion


def _pairs():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n_classes = int(rng.integers(2, 8))
        n = int(rng.integers(1, 40))
        # Skewed draws so that some classes are missing from y, from pred, or from both.
        p = rng.dirichlet(np.full(n_classes, 0.3))
        yield n_classes, rng.choice(n_classes, n, p=p), rng.choice(n_classes, n, p=rng.permutation(p))
    yield 3, np.zeros(5, int), np.zeros(5, int)  # one class only
    yield 3, np.zeros(4, int), np.array([1, 2, 1, 2])  # nothing right, predicted classes absent from y
    yield 2, np.array([0, 1, 1, 0]), np.array([0, 1, 1, 0])  # perfect


def test_figures_are_scikit_learns():
    for n_classes, y, pred in _pairs():
        _check_against_scikit_learn(n_classes, y, pred)


def _check_against_scikit_learn(n_classes, y, pred):
    counts, given = Confusion(y, pred), Confusion(y, pred, labels=range(n_classes))
    labels = list(range(n_classes))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns of the classes a balanced accuracy leaves out
        expected_balanced = balanced_accuracy_score(y, pred)
    assert counts.accuracy() == pytest.approx(accuracy_score(y, pred), abs=1e-12)
    assert counts.balanced_accuracy() == pytest.approx(expected_balanced, abs=1e-12)
    assert np.mean(counts.precision()) == pytest.approx(
        precision_score(y, pred, average="macro", zero_division=0), abs=1e-12
    )
    assert np.mean(given.recall()) == pytest.approx(
        recall_score(y, pred, labels=labels, average="macro", zero_division=0), abs=1e-12
    )
    assert np.mean(given.f1()) == pytest.approx(
        f1_score(y, pred, labels=labels, average="macro", zero_division=0), abs=1e-12
    )
    if set(np.unique(np.concatenate([y, pred]))) <= {0, 1}:
        for label in (0, 1):
            assert counts.label_precision(label) == pytest.approx(
                precision_score(y, pred, pos_label=label, zero_division=0), abs=1e-12
            )


def test_labels_outside_the_given_ones_are_not_counted():
    counts = Confusion(np.array([0, 1, 5]), np.array([0, 5, 5]), labels=range(2))
    assert counts.matrix.tolist() == [[1, 0], [0, 0]]
    assert np.mean(counts.recall()) == pytest.approx(
        recall_score([0, 1, 5], [0, 5, 5], labels=[0, 1], average="macro", zero_division=0)
    )

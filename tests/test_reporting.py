"""Unit tests of the shared per-epoch reporter (a fake report function collects what Tune would get)."""

from __future__ import annotations

import math

from trainables.reporting import (
    BEST_EPOCH,
    CHECKPOINT_FILE,
    COMPLETED,
    DIVERGED,
    EARLY_STOPPED,
    END_REASON,
    SCORE,
    EpochReporter,
    TrialContext,
)


def make(mode="max", max_epochs=10, patience=3, min_delta=0.0, monitor="val_loss"):
    rows = []
    ctx = TrialContext(
        metric="val_acc", mode=mode, max_epochs=max_epochs, fixed={}, seed=0,
        report=lambda row, ckpt: rows.append((row, ckpt)), early_stopping_monitor=monitor,
        early_stopping_mode="min", early_stopping_patience=patience, early_stopping_min_delta=min_delta,
    )  # fmt: skip
    return EpochReporter(ctx), rows


def saver(saved):
    def save(path):
        path.write_text("weights")
        saved.append(path)

    return save


def test_score_is_best_epoch_not_last_and_only_best_epochs_are_checkpointed():
    reporter, rows = make(patience=100)
    saved = []
    for epoch, acc in enumerate([0.5, 0.8, 0.7, 0.6], start=1):
        reporter.epoch(epoch, {"val_acc": acc, "val_loss": 1.0 - acc}, saver(saved))
    assert [r[SCORE] for r, _ in rows] == [0.5, 0.8, 0.8, 0.8]
    assert rows[-1][0][BEST_EPOCH] == 2
    assert [ckpt is not None for _, ckpt in rows] == [True, True, False, False]
    assert all(p.name == CHECKPOINT_FILE for p in saved)


def test_min_mode_tracks_the_lowest_value():
    reporter, rows = make(mode="min", patience=100)
    for epoch, value in enumerate([3.0, 1.0, 2.0], start=1):
        reporter.epoch(epoch, {"val_acc": value, "val_loss": value}, None)
    assert rows[-1][0][SCORE] == 1.0 and rows[-1][0][BEST_EPOCH] == 2


def test_early_stopping_needs_improvement_by_min_delta_for_patience_epochs():
    reporter, rows = make(patience=2, min_delta=0.01)
    losses = [1.0, 0.995, 0.992]  # improvements smaller than min_delta do not count
    stops = [reporter.epoch(e, {"val_acc": 0.5, "val_loss": v}, None) for e, v in enumerate(losses, start=1)]
    assert stops == [False, False, True]
    assert rows[-1][0][END_REASON] == EARLY_STOPPED


def test_reaching_max_epochs_completes():
    reporter, rows = make(max_epochs=2, patience=100)
    stops = [reporter.epoch(e, {"val_acc": 0.1 * e, "val_loss": 1.0 / e}, None) for e in (1, 2)]
    assert stops == [False, True]
    assert [r[END_REASON] for r, _ in rows] == ["", COMPLETED]


def test_nan_loss_ends_the_trial_as_diverged_with_a_finite_score():
    reporter, rows = make(patience=100)
    reporter.epoch(1, {"val_acc": 0.6, "val_loss": 0.4}, None)
    assert reporter.epoch(2, {"val_acc": 0.7, "val_loss": float("nan")}, None) is True
    row = rows[-1][0]
    assert row[END_REASON] == DIVERGED and "val_loss" in row["end_message"]
    assert row[SCORE] == 0.6 and row["val_loss"] is None


def test_divergence_on_the_first_epoch_reports_the_penalty_not_nan():
    reporter, rows = make(mode="max", patience=100)
    reporter.epoch(1, {"val_acc": float("inf"), "val_loss": 1.0}, None)
    score = rows[-1][0][SCORE]
    assert math.isfinite(score) and score < -1e9

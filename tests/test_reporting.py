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
        metric="val_acc",
        mode=mode,
        max_epochs=max_epochs,
        fixed={},
        seed=0,
        report=lambda row, ckpt: rows.append((row, ckpt)),
        early_stopping_monitor=monitor,
        early_stopping_mode="min",
        early_stopping_patience=patience,
        early_stopping_min_delta=min_delta,
    )
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


class _Clock:
    def __init__(self):
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


def _resumable(monkeypatch, every: float, patience: int = 5, restore=None, max_epochs: int = 10):
    import dataclasses
    import types

    import trainables.reporting as reporting

    clock = _Clock()
    monkeypatch.setattr(reporting, "time", types.SimpleNamespace(monotonic=clock.monotonic))
    reporter, rows = make(patience=patience, max_epochs=max_epochs)
    reporter = EpochReporter(dataclasses.replace(reporter.ctx, checkpoint_every_s=every, restore=restore))
    return reporter, rows, clock


def _weights_saver(epoch):
    return lambda path: path.write_text(f"weights of epoch {epoch}")


def test_a_resumable_family_checkpoints_its_state_at_new_bests_and_when_the_interval_has_passed(monkeypatch):
    import json

    from trainables.reporting import REPORTER_FILE, STATE_FILE

    reporter, rows, clock = _resumable(monkeypatch, every=10.0)
    states = []
    for epoch, acc in enumerate([0.5, 0.8, 0.7, 0.6, 0.55], start=1):
        clock.now += 4.0
        reporter.epoch(
            epoch,
            {"val_acc": acc, "val_loss": 1.0 - acc},
            _weights_saver(epoch),
            lambda path, epoch=epoch: (path.write_text(f"state {epoch}"), states.append(epoch)),
        )
    # epochs 1, 2: new bests; 3, 4: 4 and 8 s after the last checkpoint; 5: 12 s after it
    assert [ckpt is not None for _, ckpt in rows] == [True, True, False, False, True]
    assert states == [1, 2, 5]
    periodic = rows[-1][1]
    assert (periodic / CHECKPOINT_FILE).read_text() == "weights of epoch 2", "every checkpoint holds the best weights"
    assert (periodic / STATE_FILE).read_text() == "state 5"
    counters = json.loads((periodic / REPORTER_FILE).read_text())
    assert counters == {
        "epoch": 5,
        "best": 0.8,
        "best_epoch": 2,
        "monitor_best": 0.19999999999999996,
        "epochs_without_improvement": 3,
    }


def test_the_epoch_that_ends_a_trial_saves_no_state(monkeypatch):
    from trainables.reporting import STATE_FILE

    reporter, rows, clock = _resumable(monkeypatch, every=0.0, max_epochs=2)
    for epoch in (1, 2):
        reporter.epoch(
            epoch,
            {"val_acc": 0.1 * epoch, "val_loss": 1.0 / epoch},
            _weights_saver(epoch),
            lambda path: path.write_text("state"),
        )
    (first_row, first), (last_row, last) = rows
    assert first_row[END_REASON] == "" and (first / STATE_FILE).is_file()
    assert last_row[END_REASON] == COMPLETED
    assert (last / CHECKPOINT_FILE).read_text() == "weights of epoch 2" and not (last / STATE_FILE).exists()


def test_a_restored_trial_continues_after_the_checkpoint_with_its_counters(monkeypatch, tmp_path):
    import shutil

    from trainables.reporting import RESUMED_FROM

    reporter, rows, clock = _resumable(monkeypatch, every=10.0)
    for epoch, acc in enumerate([0.5, 0.8, 0.7, 0.6, 0.55], start=1):
        clock.now += 4.0
        reporter.epoch(
            epoch, {"val_acc": acc, "val_loss": 1.0 - acc}, _weights_saver(epoch), lambda path: path.write_text("state")
        )
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(rows[-1][1], checkpoint)

    restored, rows2, clock2 = _resumable(monkeypatch, every=10.0, restore=checkpoint)
    loaded = []
    assert restored.restore(lambda path: loaded.append(path.read_text())) == 6
    assert loaded == ["state"]
    stops = [restored.epoch(e, {"val_acc": 0.5, "val_loss": 0.5}, _weights_saver(e)) for e in (6, 7)]
    # patience 5: epochs 3-5 did not improve before the checkpoint, 6 and 7 after it
    assert stops == [False, True] and rows2[-1][0][END_REASON] == EARLY_STOPPED
    assert [r[SCORE] for r, _ in rows2] == [0.8, 0.8] and rows2[-1][0][BEST_EPOCH] == 2
    assert all(r[RESUMED_FROM] == 5 for r, _ in rows2)


def test_restoring_from_a_checkpoint_without_state_starts_over(monkeypatch, tmp_path):
    (tmp_path / CHECKPOINT_FILE).write_text("weights only")
    reporter, rows, _ = _resumable(monkeypatch, every=10.0, restore=tmp_path)
    assert reporter.restore(lambda path: (_ for _ in ()).throw(AssertionError("nothing to load"))) == 1
    reporter.epoch(1, {"val_acc": 0.5, "val_loss": 0.5}, None)
    assert "resumed_from_epoch" not in rows[0][0]


def test_temporary_folders_of_dead_trial_processes_are_removed_and_live_ones_kept(tmp_path):
    import os
    import subprocess
    import sys

    from trainables.reporting import remove_orphaned_temp_folders

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # exited: no process has this pid now (unless reused, which keeps its folders)
    orphans = [tmp_path / f"tuner-trial-{dead_pid}-abc", tmp_path / f"tuner-ckpt-{dead_pid}-def"]
    mine = [tmp_path / f"tuner-trial-{os.getpid()}-ghi", tmp_path / f"tuner-ckpt-{os.getpid()}-jkl"]
    other = tmp_path / "tuner-data-cache"
    for folder in (*orphans, *mine, other):
        folder.mkdir()
        (folder / "model.pt").write_text("weights")
    assert remove_orphaned_temp_folders(tmp_path) == 2
    assert not any(f.exists() for f in orphans)
    assert all(f.exists() for f in mine) and other.exists()

"""pain_rnn: the pirate pain loader and its errors, subject-wise splits, windows, preprocessing and voting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainables import recurrent
from trainables.reporting import CHECKPOINT_FILE
from tuner import spaces
from tuner.datasets import pirate_pain
from tuner.errors import DataError, TunerError
from tuner.trial import make_context

OPTIONS = {"test_fraction": 0.2, "cv_folds": 3, "split_seed": 42}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The synthetic dataset written once in the real layout: the two CSVs in one folder."""
    path = tmp_path_factory.mktemp("pirate")
    train, labels = pirate_pain.generate_csvs()
    (path / pirate_pain.TRAIN_FILE).write_text(train)
    (path / pirate_pain.LABELS_FILE).write_text(labels)
    return path


def _copy(folder, tmp_path, train=None, labels=None):
    """A copy of the dataset folder with the train and/or labels text replaced."""
    (tmp_path / pirate_pain.TRAIN_FILE).write_text(train or (folder / pirate_pain.TRAIN_FILE).read_text())
    (tmp_path / pirate_pain.LABELS_FILE).write_text(labels or (folder / pirate_pain.LABELS_FILE).read_text())
    return tmp_path


def test_generated_files_have_the_real_headers_ids_and_class_counts(folder):
    train = (folder / pirate_pain.TRAIN_FILE).read_text().splitlines()
    assert train[0] == ",".join(pirate_pain.COLUMNS) and len(pirate_pain.COLUMNS) == 40
    labels = (folder / pirate_pain.LABELS_FILE).read_text().splitlines()
    assert labels[:2] == ["sample_index,label", f"000,{labels[1].split(',')[1]}"]
    data = pirate_pain.load(folder, OPTIONS, folder)
    assert not data.synthetic
    assert tuple(np.bincount(data.arrays["y"])) == pirate_pain.REAL_COUNTS
    assert data.arrays["series"].shape == (sum(pirate_pain.REAL_COUNTS), pirate_pain.SYNTHETIC_STEPS, 46)


def test_without_a_path_synthetic_data_is_generated_once_and_flagged(tmp_path):
    data = pirate_pain.load(None, OPTIONS, tmp_path)
    assert data.synthetic and "SYNTHETIC" in data.summary
    written = tmp_path / pirate_pain.SYNTHETIC_DIR / pirate_pain.TRAIN_FILE
    stamp = written.stat().st_mtime_ns
    assert pirate_pain.load(None, OPTIONS, tmp_path).fingerprint == data.fingerprint
    assert written.stat().st_mtime_ns == stamp


def test_splits_are_by_subject_stratified_and_never_overlap(folder):
    data = pirate_pain.load(folder, OPTIONS, folder)
    ids, y = data.arrays["sample_index"], data.arrays["y"]
    assert len(np.unique(ids)) == len(ids)  # one row per subject: row indices are subjects
    dev, test = data.splits["train"], data.splits["test"]
    assert len(np.intersect1d(dev, test)) == 0 and len(dev) + len(test) == len(y)
    vals = [data.splits[f"fold{k}_val"] for k in range(3)]
    for k in range(3):
        fit, val = data.splits[f"fold{k}_train"], vals[k]
        assert len(np.intersect1d(fit, val)) == 0
        assert len(np.intersect1d(fit, test)) == 0 and len(np.intersect1d(val, test)) == 0
        np.testing.assert_array_equal(np.union1d(fit, val), dev)
        assert set(y[val]) == {0, 1, 2}
    np.testing.assert_array_equal(np.sort(np.concatenate(vals)), dev)  # each dev subject validated exactly once
    assert set(y[test]) == {0, 1, 2}
    assert abs(np.mean(y[test] == 2) - np.mean(y == 2)) < 0.03
    again = pirate_pain.load(folder, OPTIONS, folder)
    np.testing.assert_array_equal(again.splits["fold1_val"], data.splits["fold1_val"])


def test_too_few_subjects_of_a_class_for_the_folds_is_an_error(folder):
    with pytest.raises(DataError, match="class high_pain has 45 development subjects; cv_folds=50 needs 50"):
        pirate_pain.load(folder, {**OPTIONS, "cv_folds": 50}, folder)
    with pytest.raises(TunerError, match="cv_folds=1: must be an integer of at least 2"):
        pirate_pain.load(folder, {**OPTIONS, "cv_folds": 1}, folder)
    with pytest.raises(TunerError, match="unknown option\\(s\\) folds; accepted: cv_folds, split_seed, test_fraction"):
        pirate_pain.load(folder, {"folds": 3}, folder)


@pytest.mark.parametrize(
    ("length", "window", "stride", "count", "padded"),
    [(160, 25, 2, 69, 161), (30, 10, 5, 5, 30), (32, 10, 5, 6, 35), (10, 25, 2, 1, 25), (30, 25, 2, 4, 31)],
)
def test_window_counts_and_zero_padded_tail(length, window, stride, count, padded):
    starts = recurrent.window_starts(length, window, stride)
    assert len(starts) == count and starts[0] == 0 and np.all(np.diff(starts) == stride)
    series = np.arange(1, 2 * length + 1, dtype=np.float32).reshape(1, length, 2)
    out, starts2 = recurrent.pad_for_windows(series, window, stride)
    np.testing.assert_array_equal(starts, starts2)
    assert out.shape == (1, padded, 2)
    np.testing.assert_array_equal(out[0, :length], series[0])
    assert not out[0, length:].any()  # the padding is zeros
    last = out[0, starts[-1] : starts[-1] + window]
    assert len(last) == window  # the last window is full length, its tail beyond the series being zeros
    assert not last[window - (padded - length) :].any()
    assert last[: window - (padded - length)].all()


def test_window_arguments_must_be_positive():
    with pytest.raises(ValueError, match="need length, window and stride >= 1"):
        recurrent.window_starts(10, 5, 0)


def test_majority_vote_over_windows_on_a_hand_made_case():
    #            subject 7: 0 0 2 -> 0 | subject 3: 1 2 2 2 -> 2 | subject 9: 1 0 -> tie -> lower index 0
    classes = np.array([0, 0, 2, 1, 2, 2, 2, 1, 0])
    subjects = np.array([7, 7, 7, 3, 3, 3, 3, 9, 9])
    votes = recurrent.majority_vote(classes, subjects, np.array([3, 7, 9]), n_classes=3)
    np.testing.assert_array_equal(votes, [2, 0, 0])


def test_preprocessing_is_fitted_on_training_subjects_only(folder):
    data = pirate_pain.load(folder, OPTIONS, folder)
    series, fit = data.arrays["series"], data.splits["fold0_train"]
    names, groups = data.meta["feature_names"], data.meta["joint_groups"]
    plain = recurrent.SeriesPreprocessor(names, groups, None).fit(series[fit])
    out = plain.transform(series)
    assert out.shape[2] == len(names) - 1  # joint_30 (constant 0.5) dropped as zero-variance
    assert out[fit].min() == pytest.approx(0.0) and out[fit].max() == pytest.approx(1.0)
    shifted = series.copy()
    shifted[data.splits["test"], :, names.index("joint_00")] += 10.0
    moved = plain.transform(shifted)[data.splits["test"]]
    assert moved.max() > 1.5  # the scaler never saw the test subjects, so it does not absorb their shift
    reduced = recurrent.SeriesPreprocessor(names, groups, 0.9).fit(series[fit]).transform(series)
    assert reduced.shape[2] < out.shape[2]


def test_one_epoch_checkpoints_every_fold_and_evaluate_votes_on_test_subjects(folder):
    spec = spaces.get("pain_rnn")
    data = pirate_pain.load(folder, {**OPTIONS, "cv_folds": 2}, folder)
    config = spec.active_config(spec.report_variants["rnn"])
    rows = []
    ctx = make_context(spec, seed=0, device="cpu", report=lambda row, ckpt: rows.append((row, ckpt)))
    ctx = type(ctx)(**{**ctx.__dict__, "max_epochs": 2})
    recurrent.train(config, data, ctx)
    assert [row["epoch"] for row, _ in rows] == [1, 2]
    checkpoint = next(ckpt for _, ckpt in reversed(rows) if ckpt is not None) / CHECKPOINT_FILE
    assert len(torch.load(checkpoint, weights_only=True)["folds"]) == 2
    test = recurrent.evaluate(config, data, ctx, checkpoint)
    assert set(test) == {"test_loss", "test_macro_f1", "test_accuracy"}
    assert 0.0 <= test["test_macro_f1"] <= 1.0 and test["test_loss"] > 0


def _bad(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("which", "old", "new", "message"),
    [
        ("train", "joint_05", "joint_5", "missing column\\(s\\) joint_05"),
        ("train", ",two,", ",three,", "column n_legs has value 'three'; accepted: two, one\\+peg_leg"),
        ("labels", "sample_index,label", "id,label", "missing column\\(s\\) sample_index"),
        ("labels", ",low_pain\n", ",medium_pain\n", "unknown label 'medium_pain'; accepted: no_pain, low_pain"),
        ("labels", "000,", "0x0,", "row 2, column sample_index: '0x0' is not an integer"),
    ],
)
def test_bad_files_give_one_line_errors_naming_the_file(folder, tmp_path, which, old, new, message):
    train, labels = (folder / pirate_pain.TRAIN_FILE).read_text(), (folder / pirate_pain.LABELS_FILE).read_text()
    if which == "train":
        train = _bad(train, old, new)
    else:
        labels = _bad(labels, old, new)
    path = _copy(folder, tmp_path, train, labels)
    named = path / (pirate_pain.TRAIN_FILE if which == "train" else pirate_pain.LABELS_FILE)
    with pytest.raises(DataError, match=message) as info:
        pirate_pain.load(path, OPTIONS, tmp_path)
    assert str(named) in str(info.value) and "\n" not in str(info.value)


def test_missing_file_unlabelled_subject_and_ragged_series_are_named(folder, tmp_path):
    (tmp_path / pirate_pain.TRAIN_FILE).write_text((folder / pirate_pain.TRAIN_FILE).read_text())
    with pytest.raises(DataError, match=f"{tmp_path / pirate_pain.LABELS_FILE}: no such file"):
        pirate_pain.load(tmp_path, OPTIONS, tmp_path)
    labels = (folder / pirate_pain.LABELS_FILE).read_text().splitlines()
    _copy(folder, tmp_path, labels="\n".join(labels[:1] + labels[2:]) + "\n")
    with pytest.raises(DataError, match="pirate_pain_train_labels.csv: no label for sample\\(s\\) 0$"):
        pirate_pain.load(tmp_path, OPTIONS, tmp_path)
    train = (folder / pirate_pain.TRAIN_FILE).read_text().splitlines()
    _copy(folder, tmp_path, train="\n".join(train[:2] + train[3:]) + "\n")
    steps = pirate_pain.SYNTHETIC_STEPS
    with pytest.raises(DataError, match=f"train.csv: sample 0 has {steps - 1} time steps; the others have {steps}"):
        pirate_pain.load(tmp_path, OPTIONS, tmp_path)
    with pytest.raises(DataError, match="not a folder"):
        pirate_pain.load(tmp_path / pirate_pain.TRAIN_FILE, OPTIONS, tmp_path)


def test_synthetic_data_is_learnable_but_not_trivial(tmp_path):
    """The report's small RNN, a few epochs: clearly above a constant predictor's macro F1, below perfect."""
    spec = spaces.get("pain_rnn")
    data = pirate_pain.load(None, spec.data_options, tmp_path)
    constant_f1 = 2 * 0.77 / (1 + 0.77) / 3  # always no_pain: F1 of the majority class only, averaged over 3
    rows = []
    ctx = make_context(spec, seed=0, device="cpu", report=lambda row, ckpt: rows.append(row))
    ctx = type(ctx)(**{**ctx.__dict__, "max_epochs": 20})
    recurrent.train(spec.active_config(spec.report_variants["rnn"]), data, ctx)
    best = max(row["val_macro_f1"] for row in rows)
    assert constant_f1 + 0.3 < best < 0.99, best

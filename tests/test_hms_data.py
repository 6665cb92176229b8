"""HMS data (report 003): the competition layout, the label windows, the magic formula, leak-free statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trainables.hms import kl_divergence, patient_folds
from trainables.hms_inputs import build_images, datawide_stats, fold_stats, log_spectrogram
from tuner.datasets import hms, load_dataset
from tuner.datasets.hms_signal import (
    CHAINS,
    EEG_COLUMNS,
    EEG_RATE,
    SPEC_COLUMNS,
    bipolar_pairs,
    eeg_spectrogram,
)
from tuner.datasets.hms_synthetic import TRAIN_COLUMNS, generate_competition
from tuner.errors import DataError

OPTIONS = {"windows": "all", "test_fraction": 0.25, "split_seed": 1}


@pytest.fixture(scope="session")
def small_competition(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hms") / "competition"
    generate_competition(folder, n_patients=8, recordings_per_patient=(1, 2), windows_per_recording=(2, 3), seed=5)
    return folder


@pytest.fixture(scope="session")
def small_data(small_competition, tmp_path_factory):
    return load_dataset("hms", small_competition, OPTIONS, tmp_path_factory.mktemp("hms_cache"))


def _ramp_folder(folder: Path, spec_offsets: list[float], eeg_offsets: list[float], spec_rows: int, eeg_s: int):
    """A one-recording folder whose spectrogram holds its row number and whose EEG holds its sample number."""
    (folder / "train_spectrograms").mkdir(parents=True)
    (folder / "train_eegs").mkdir(parents=True)
    spec = pd.DataFrame({c: np.arange(spec_rows, dtype=np.float32) for c in SPEC_COLUMNS})
    spec.insert(0, "time", np.arange(spec_rows) * 2 + 1)
    spec.to_parquet(folder / "train_spectrograms" / "77.parquet")
    eeg = pd.DataFrame({c: np.arange(eeg_s * EEG_RATE, dtype=np.float32) for c in EEG_COLUMNS})
    eeg.to_parquet(folder / "train_eegs" / "55.parquet")
    rows = [
        (55, k, eo, 77, k, so, 900 + k, 3 + k, "GRDA", 0, 0, 0, 1, 3, 0)
        for k, (so, eo) in enumerate(zip(spec_offsets, eeg_offsets, strict=True))
    ]
    pd.DataFrame(rows, columns=list(TRAIN_COLUMNS)).to_csv(folder / "train.csv", index=False)


def test_windows_follow_the_offsets(tmp_path):
    _ramp_folder(tmp_path, spec_offsets=[0.0, 10.0, 46.0], eeg_offsets=[0.0, 4.0, 12.0], spec_rows=400, eeg_s=70)
    train = hms.read_train_csv(tmp_path)
    kaggle = hms.kaggle_windows(tmp_path, train)
    assert kaggle.shape == (3, 4, 100, 256)
    for row, offset in enumerate([0, 10, 46]):
        # 300 rows from offset // 2, the middle 256 of them: rows offset//2 + 22 ... offset//2 + 277
        expected = np.arange(offset // 2 + 22, offset // 2 + 278)
        np.testing.assert_array_equal(kaggle[row, 2, 17], expected.astype(np.float16))
    windows = dict(hms.eeg_windows(tmp_path, train))
    for row, offset in enumerate([0.0, 4.0, 12.0]):
        fp1 = windows[row]["Fp1"]
        assert len(fp1) == 10_000 and fp1[0] == offset * EEG_RATE and fp1[-1] == offset * EEG_RATE + 9_999


def test_targets_are_normalised_votes(tmp_path):
    _ramp_folder(tmp_path, spec_offsets=[0.0, 10.0, 20.0], eeg_offsets=[0.0, 4.0, 8.0], spec_rows=400, eeg_s=70)
    data = load_dataset("hms", tmp_path, {**OPTIONS, "test_fraction": 0.3}, tmp_path / "cache")
    np.testing.assert_allclose(data.arrays["y"], [[0, 0, 0, 0.25, 0.75, 0]] * 3)
    assert len(data.splits["test"]) == 1 and len(data.splits["train"]) == 2


def test_too_few_patients_is_an_error_naming_the_file(tmp_path):
    _ramp_folder(tmp_path, spec_offsets=[0.0, 10.0], eeg_offsets=[0.0, 4.0], spec_rows=400, eeg_s=70)
    with pytest.raises(DataError, match=r"train\.csv: 2 patients; at least 3 are needed"):
        load_dataset("hms", tmp_path, OPTIONS, tmp_path / "cache")


def test_a_window_past_the_end_of_its_file_is_an_error(tmp_path):
    _ramp_folder(tmp_path, spec_offsets=[0.0, 300.0], eeg_offsets=[0.0, 4.0], spec_rows=400, eeg_s=70)
    with pytest.raises(DataError, match=r"77\.parquet: label window at 300 s needs rows 150\.\.449, the file has 400"):
        hms.kaggle_windows(tmp_path, hms.read_train_csv(tmp_path))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "train.csv").unlink(), r"train\.csv: missing; expected a Kaggle HMS competition folder"),
        (lambda f: _rewrite_csv(f, lambda t: t.drop(columns=["lpd_vote"])), r"train\.csv: missing columns lpd_vote"),
        (lambda f: _rewrite_csv(f, lambda t: t.assign(expert_consensus="Spike")), r"expert_consensus \['Spike'\]"),
        (lambda f: _rewrite_csv(f, lambda t: t.assign(seizure_vote=-1)), r"row 2: votes must be non-negative"),
        (lambda f: next((f / "train_eegs").iterdir()).unlink(), r"train_eegs/\d+\.parquet: missing \(1 of the"),
        (lambda f: _drop_spectrogram_column(f), r"expected 100 columns RL_<Hz>, found 99"),
    ],
)
def test_damaged_folders_give_one_line_errors_naming_the_file(small_competition, tmp_path, damage, message):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(small_competition, folder)
    damage(folder)
    with pytest.raises(DataError, match=message) as info:
        load_dataset("hms", folder, OPTIONS, tmp_path / "cache")
    assert "\n" not in str(info.value)


def _rewrite_csv(folder: Path, change) -> None:
    change(pd.read_csv(folder / "train.csv")).to_csv(folder / "train.csv", index=False)


def _drop_spectrogram_column(folder: Path) -> None:
    path = next((folder / "train_spectrograms").iterdir())
    pd.read_parquet(path).drop(columns=["RL_0.59"]).to_parquet(path)


def test_generated_folder_has_the_competition_layout(small_competition, small_data):
    train = pd.read_csv(small_competition / "train.csv")
    assert tuple(train.columns) == TRAIN_COLUMNS
    assert train.groupby("eeg_id").size().min() >= 2  # several label windows per EEG
    assert (train[["seizure_vote", "lpd_vote", "gpd_vote", "lrda_vote", "grda_vote", "other_vote"]] > 0).sum(
        axis=1
    ).max() > 1  # annotators disagree somewhere
    spec = pd.read_parquet(next((small_competition / "train_spectrograms").iterdir()))
    assert list(spec.columns[:3]) == ["time", "LL_0.59", "LL_0.79"] and spec.shape[1] == 401
    assert list(spec["time"][:3]) == [1, 3, 5]
    eeg = pd.read_parquet(next((small_competition / "train_eegs").iterdir()))
    assert tuple(eeg.columns) == EEG_COLUMNS
    assert small_data.synthetic is False  # read through --data: the real parser, not the cache
    assert "SYNTHETIC" not in small_data.summary


def test_patients_never_cross_splits_or_folds(small_data):
    patients = small_data.arrays["patient"]
    test, pool = small_data.splits["test"], small_data.splits["train"]
    assert not set(patients[test]) & set(patients[pool])
    assert len(test) and len(pool)
    for train_rows, val_rows in patient_folds(small_data, 2, seed=0):
        assert not set(patients[train_rows]) & set(patients[val_rows])
        assert set(train_rows) | set(val_rows) == set(pool)


def _known_signal_window() -> dict[str, np.ndarray]:
    t = np.arange(10_000) / EEG_RATE
    window = {e: np.zeros(10_000) for e in EEG_COLUMNS}
    window["Fp1"] = 50 * np.sin(2 * np.pi * 10.0 * t)  # 10 Hz on Fp1 only: LL and LP see it in their first pair
    window["O2"] = 30 * np.sin(2 * np.pi * 3.0 * t)
    window["O2"][100:200] = np.nan
    return window


def test_magic_formula_matches_a_direct_librosa_computation():
    import librosa

    window = _known_signal_window()
    image = eeg_spectrogram(window)
    assert image.shape == (4, 128, 256) and image.dtype == np.float32
    for k, chain in enumerate(CHAINS):
        expected = np.zeros((128, 256))
        for a, b in bipolar_pairs(chain):
            x = window[a] - window[b]
            x = np.where(np.isnan(x), np.nanmean(x), x)
            mel = librosa.feature.melspectrogram(
                y=x, sr=200, hop_length=len(x) // 256, n_fft=1024, n_mels=128, fmin=0, fmax=20, win_length=128
            )
            expected += (librosa.power_to_db(mel, ref=np.max)[:, :256] + 40) / 40
        np.testing.assert_allclose(image[k], expected / 4, atol=1e-4)
    peak = int(image[0].mean(axis=1).argmax())  # LL: the 10 Hz sine's mel band is the brightest
    centres = librosa.mel_frequencies(n_mels=128, fmin=0, fmax=20)
    assert abs(centres[peak] - 10.0) < 0.5


def test_loaded_eeg_images_are_the_formula_of_their_window(small_competition, small_data):
    train = hms.read_train_csv(small_competition)
    row, window = next(iter(hms.eeg_windows(small_competition, train)))
    np.testing.assert_allclose(small_data.arrays["eeg"][row], eeg_spectrogram(window), atol=2e-3)


def test_datawide_statistics_come_from_the_training_fold_only(small_data):
    config = {"normalisation": "datawide", "input_source": "kaggle", "highpass": -6.0, "lowpass": 10.0}
    train_rows, val_rows = patient_folds(small_data, 2, seed=0)[0]
    stats = fold_stats(config, small_data, train_rows)
    log_train = log_spectrogram(small_data.arrays["kaggle"][train_rows], -6.0, 10.0).astype(np.float64)
    assert stats.mean == pytest.approx(log_train.mean(), rel=1e-6)
    assert stats.std == pytest.approx(log_train.std(), rel=1e-5)

    # Make the validation windows wildly different: the statistics and the training images must not move.
    leaked = type(small_data)(**{**small_data.__dict__, "arrays": dict(small_data.arrays)})
    kaggle = small_data.arrays["kaggle"].copy()
    kaggle[val_rows] = np.float16(20000.0)
    leaked.arrays["kaggle"] = kaggle
    assert fold_stats(config, leaked, train_rows) == stats
    before = build_images(config, small_data, train_rows, stats, 0.25)
    after = build_images(config, leaked, train_rows, fold_stats(config, leaked, train_rows), 0.25)
    assert before.shape == (len(train_rows), 1, 128, 64)
    assert np.array_equal(before.numpy(), after.numpy())
    assert datawide_stats(kaggle, val_rows, -6.0, 10.0).mean == pytest.approx(np.log(20000.0), rel=1e-3)


def test_instance_normalisation_is_per_window_and_chain(small_data):
    config = {"normalisation": "instance", "input_source": "both", "highpass": -6.0, "lowpass": 10.0}
    rows = small_data.splits["train"][:3]
    assert fold_stats(config, small_data, rows) is None
    images = build_images(config, small_data, rows, None, 1.0).numpy()
    assert images.shape == (3, 1, 512, 512)
    kaggle_ll = images[:, 0, 14:114, :256]  # LL chain, inside its zero padding
    np.testing.assert_allclose(kaggle_ll.mean(axis=(1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(kaggle_ll.std(axis=(1, 2)), 1.0, atol=1e-3)
    np.testing.assert_array_equal(images[:, 0, :14, :256], 0.0)
    np.testing.assert_allclose(images[:, 0, :128, 256:], small_data.arrays["eeg"][rows, 0].astype(np.float32))


def test_kl_divergence_is_the_competition_metric():
    y = np.array([[0.5, 0.5, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1.0]])
    p = np.array([[0.25, 0.25, 0.125, 0.125, 0.125, 0.125], [0.2] * 5 + [0.0]])
    expected = (0.5 * np.log(2) * 2 + np.log(1 / 1e-15)) / 2
    assert kl_divergence(y, p) == pytest.approx(expected, rel=1e-6)
    assert kl_divergence(y, y) == pytest.approx(0.0, abs=1e-9)

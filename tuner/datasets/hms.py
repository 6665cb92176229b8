"""HMS Harmful Brain Activity (report 003): the Kaggle competition folder, parsed into label windows.

For every labelled row of ``train.csv`` the loader cuts its two windows exactly as DATA_FORMATS.md describes:
the 300 spectrogram rows (10 minutes) from ``spectrogram_label_offset_seconds // 2`` of
``train_spectrograms/<spectrogram_id>.parquet``, of which the middle 256 are kept (as the report's baseline),
and the 10,000 EEG samples (50 s) from ``eeg_label_offset_seconds * 200`` of ``train_eegs/<eeg_id>.parquet``,
which become the four magic-formula chain images. Raw power is kept (as float16, NaN included) because clipping
and normalisation are hyperparameters applied inside each trial. Targets are the six votes normalised to sum 1.

Splits are by patient: a held-out test share of patients (the final figures), the rest is the pool the trial
cross-validates on with patient-grouped folds. Without ``--data`` a small synthetic folder in the same layout
is generated once (``hms_synthetic``) and read back through this parser.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tuner.datasets.base import LoadedData
from tuner.datasets.hms_signal import (
    CHAINS,
    EEG_RATE,
    EEG_WINDOW,
    MONTAGE,
    SPEC_BINS,
    SPEC_WINDOW_ROWS,
    eeg_spectrogram,
)
from tuner.datasets.hms_synthetic import (
    CLASSES,
    GENERATOR_VERSION,
    TRAIN_COLUMNS,
    VOTE_COLUMNS,
    generate_competition,
)
from tuner.errors import DataError, first_line

SPEC_KEEP = 256
SPEC_CROP = (SPEC_WINDOW_ROWS - SPEC_KEEP) // 2
"""Of a window's 300 spectrogram rows the middle 256 are kept (rows 22..277), as the baseline notebook."""
WINDOW_POLICIES = ("all", "first_per_eeg")
SYNTHETIC_DIR = f"hms_synthetic_v{GENERATOR_VERSION}"
EEG_CACHE_VERSION = "1"
FOLDER_HINT = "a Kaggle HMS competition folder with train.csv, train_spectrograms/ and train_eegs/"


def load(path: Path | None, options: dict[str, Any], cache_dir: Path) -> LoadedData:
    policy = options.get("windows", "all")
    if policy not in WINDOW_POLICIES:
        raise ValueError(f"hms windows must be one of {WINDOW_POLICIES}, got {policy!r}")
    synthetic = path is None
    folder = synthetic_folder(cache_dir) if synthetic else Path(path)
    train = read_train_csv(folder)
    if policy == "first_per_eeg":  # the baseline's one sample per EEG (its first label window)
        train = train.drop_duplicates("eeg_id", keep="first").reset_index(drop=True)
    fingerprint = folder_fingerprint(folder, train, policy)
    kaggle = kaggle_windows(folder, train)
    cache = cache_dir / "hms_eeg_spectrograms" / f"{fingerprint}.v{EEG_CACHE_VERSION}.npy"
    eeg = cached_eeg_spectrograms(folder, train, cache)
    votes = train[list(VOTE_COLUMNS)].to_numpy(np.float32)
    patients = train["patient_id"].to_numpy(np.int64)
    if len(np.unique(patients)) < 3:
        raise DataError(
            f"{folder / 'train.csv'}: {len(np.unique(patients))} patients; at least 3 are needed to hold "
            f"some out for testing and cross-validate on the rest"
        )
    test_idx, pool_idx = patient_split(
        patients, float(options.get("test_fraction", 0.2)), int(options.get("split_seed", 42))
    )
    kind = "SYNTHETIC (generated, not the Kaggle data)" if synthetic else "Kaggle competition folder"
    return LoadedData(
        arrays={
            "kaggle": kaggle,
            "eeg": eeg,
            "y": votes / votes.sum(axis=1, keepdims=True),
            "patient": patients,
            "eeg_id": train["eeg_id"].to_numpy(np.int64),
        },
        splits={"train": pool_idx, "test": test_idx},
        meta={"classes": CLASSES, "n_patients": int(len(np.unique(patients))), "windows": policy},
        source=str(folder),
        synthetic=synthetic,
        fingerprint=fingerprint,
        summary=(
            f"{kind}: {len(train)} label windows of {train['eeg_id'].nunique()} EEGs from "
            f"{len(np.unique(patients))} patients; {len(pool_idx)} for cross-validation, {len(test_idx)} held-out "
            f"test windows (patients never shared)"
        ),
    )


def synthetic_folder(cache_dir: Path) -> Path:
    """The generated competition folder, written once (into a temporary folder, then renamed)."""
    folder = cache_dir / SYNTHETIC_DIR
    if not (folder / "train.csv").exists():
        partial = cache_dir / f".{SYNTHETIC_DIR}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        generate_competition(partial)
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
    return folder


def read_train_csv(folder: Path) -> pd.DataFrame:
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder; expected {FOLDER_HINT}")
    path = folder / "train.csv"
    if not path.exists():
        raise DataError(f"{path}: missing; expected {FOLDER_HINT}")
    try:
        train = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV ({first_line(exc)})") from None
    missing = [c for c in TRAIN_COLUMNS if c not in train.columns]
    if missing:
        raise DataError(f"{path}: missing columns {', '.join(missing)}")
    if train.empty:
        raise DataError(f"{path}: no rows")
    unknown = sorted(set(train["expert_consensus"].astype(str)) - set(CLASSES))
    if unknown:
        raise DataError(f"{path}: unknown expert_consensus {unknown[:5]}; expected one of {', '.join(CLASSES)}")
    votes = train[list(VOTE_COLUMNS)]
    numeric = votes.apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna().any(axis=1) | (numeric < 0).any(axis=1) | (numeric.sum(axis=1) <= 0)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{path}: row {row + 2}: votes must be non-negative numbers with a positive sum, "
            f"got {votes.iloc[row].tolist()}"
        )
    for column in ("eeg_id", "spectrogram_id", "patient_id"):
        if not pd.api.types.is_integer_dtype(train[column]):
            raise DataError(f"{path}: column {column} must hold integer ids")
    train[list(VOTE_COLUMNS)] = numeric
    return train


def folder_fingerprint(folder: Path, train: pd.DataFrame, policy: str) -> str:
    """sha256 over train.csv, the window policy and the name, size and mtime of every parquet file used: cheap
    on 20k files, and it changes whenever a file is replaced."""
    digest = hashlib.sha256((folder / "train.csv").read_bytes() + policy.encode())
    for kind, column in (("train_spectrograms", "spectrogram_id"), ("train_eegs", "eeg_id")):
        for file_id in sorted(train[column].unique()):
            file = folder / kind / f"{file_id}.parquet"
            size, mtime = (file.stat().st_size, file.stat().st_mtime_ns) if file.exists() else (-1, -1)
            digest.update(f"{kind}/{file_id}:{size}:{mtime}".encode())
    return digest.hexdigest()[:16]


def _files(folder: Path, train: pd.DataFrame, kind: str, column: str) -> dict[int, Path]:
    files = {int(i): folder / kind / f"{int(i)}.parquet" for i in train[column].unique()}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise DataError(
            f"{missing[0]}: missing ({len(missing)} of the {len(files)} {column}s in "
            f"{folder / 'train.csv'} have no file in {kind}/)"
        )
    return files


def spectrogram_chain_columns(columns: list[str], path: Path) -> list[str]:
    """The 400 power columns in ``CHAINS`` order (each chain's 100 bins as they appear in the file)."""
    if not columns or columns[0] != "time":
        raise DataError(f"{path}: first column must be 'time', got {columns[:1]}")
    ordered = []
    for chain in CHAINS:
        bins = [c for c in columns if c.startswith(f"{chain}_")]
        if len(bins) != SPEC_BINS:
            raise DataError(f"{path}: expected {SPEC_BINS} columns {chain}_<Hz>, found {len(bins)}")
        ordered += bins
    return ordered


def kaggle_windows(folder: Path, train: pd.DataFrame) -> np.ndarray:
    """(N, 4, 100, 256) float16: each row's 10-minute window, middle 256 steps, chains x frequency x time."""
    files = _files(folder, train, "train_spectrograms", "spectrogram_id")
    out = np.empty((len(train), len(CHAINS), SPEC_BINS, SPEC_KEEP), dtype=np.float16)
    for spec_id, rows in train.groupby("spectrogram_id").groups.items():
        path = files[int(spec_id)]
        frame = pd.read_parquet(path)
        power = frame[spectrogram_chain_columns(list(frame.columns), path)].to_numpy(np.float32)
        for row in rows:
            offset = float(train.at[row, "spectrogram_label_offset_seconds"])
            start = int(offset // 2)
            if offset < 0 or start + SPEC_WINDOW_ROWS > len(power):
                last = start + SPEC_WINDOW_ROWS - 1
                raise DataError(
                    f"{path}: label window at {offset:g} s needs rows {start}..{last}, the file has {len(power)} rows"
                )
            window = power[start + SPEC_CROP : start + SPEC_CROP + SPEC_KEEP]  # (256, 400)
            window = np.minimum(window, np.finfo(np.float16).max)  # stored as float16; beyond any clip bound
            out[row] = window.reshape(SPEC_KEEP, len(CHAINS), SPEC_BINS).transpose(1, 2, 0)
    return out


EEG_USED = tuple(sorted({e for chain in CHAINS for e in MONTAGE[chain]}))


def eeg_windows(folder: Path, train: pd.DataFrame):
    """Yield (row, {electrode: 10,000 samples}) for every row, reading each EEG file once."""
    files = _files(folder, train, "train_eegs", "eeg_id")
    for eeg_id, rows in train.groupby("eeg_id").groups.items():
        path = files[int(eeg_id)]
        frame = pd.read_parquet(path)
        missing = [e for e in EEG_USED if e not in frame.columns]
        if missing:
            raise DataError(f"{path}: missing EEG columns {', '.join(missing)}")
        signals = {e: frame[e].to_numpy(np.float64) for e in EEG_USED}
        for row in rows:
            offset = float(train.at[row, "eeg_label_offset_seconds"])
            start = int(round(offset * EEG_RATE))
            if offset < 0 or start + EEG_WINDOW > len(frame):
                last = start + EEG_WINDOW - 1
                raise DataError(
                    f"{path}: label window at {offset:g} s needs samples {start}..{last}, the file has {len(frame)}"
                )
            yield row, {e: x[start : start + EEG_WINDOW] for e, x in signals.items()}


def cached_eeg_spectrograms(folder: Path, train: pd.DataFrame, cache: Path) -> np.ndarray:
    """(N, 4, 128, 256) float16 magic-formula images, computed once per dataset fingerprint and cached."""
    if cache.exists():
        images = np.load(cache)
        if images.shape[0] == len(train):
            return images
    from concurrent.futures import ThreadPoolExecutor

    images = np.empty((len(train), len(CHAINS), 128, 256), dtype=np.float16)

    def compute(item) -> None:
        row, window = item
        images[row] = eeg_spectrogram(window)

    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:  # FFTs release the GIL
        list(pool.map(compute, eeg_windows(folder, train)))
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".partial.npy")
    np.save(tmp, images)
    tmp.replace(cache)
    return images


def patient_split(patients: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(test rows, pool rows): a seeded share of patients is held out entirely."""
    from sklearn.model_selection import GroupShuffleSplit

    if not 0 < test_fraction < 1:
        raise ValueError(f"hms test_fraction must be in (0, 1), got {test_fraction}")
    splitter = GroupShuffleSplit(n_splits=1, test_size=test_fraction, random_state=seed)
    pool, test = next(splitter.split(np.zeros(len(patients)), groups=patients))
    return np.sort(test), np.sort(pool)

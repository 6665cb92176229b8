"""MIT-BIH heartbeats (report 001): Kaggle "ECG Heartbeat Categorization" ``mitbih_train.csv``/``mitbih_test.csv``.

Each file has no header; a row is 187 samples of one beat (scaled to [0, 1], zero-padded at the end) and the
class as a float 0.0..4.0 (N, S, V, F, Q). ``path`` is the folder holding both files. The validation split is
taken from the train file (stratified, seeded); the test split is the whole test file, as in the report.

Without a path, a small synthetic pair of files is written in that layout (five beat morphologies built from
Gaussian P/QRS/T waves, with per-beat jitter, baseline wander and noise) and read back by the same parser.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tuner.datasets.base import LoadedData, file_fingerprint, train_file_splits, write_atomically
from tuner.errors import DataError, first_line

CLASS_NAMES = ("N", "S", "V", "F", "Q")
N_SAMPLES = 187
TRAIN_FILE, TEST_FILE = "mitbih_train.csv", "mitbih_test.csv"
# The synthetic train file keeps N the large majority (73%; real 83%) with a few rows of every other class, so
# that a stratified validation split and SMOTE (5 neighbours) still work; the test file is larger and closer
# to the real mix (81% N). They are small on purpose: a balanced training set is 5x its N rows, and the
# report's models cost 5-20 ms per beat and epoch on one CPU core.
SYNTHETIC_TRAIN_COUNTS = (120, 8, 14, 8, 14)
SYNTHETIC_TEST_COUNTS = (360, 12, 30, 10, 32)
SYNTHETIC_DIR = "mitbih_synthetic"
SYNTHETIC_SEED = 187


def load(path: Path | None, options: dict[str, Any], cache_dir: Path) -> LoadedData:
    synthetic = path is None
    folder = cache_dir / SYNTHETIC_DIR if synthetic else Path(path)
    if synthetic:
        for name, counts, seed in (
            (TRAIN_FILE, SYNTHETIC_TRAIN_COUNTS, SYNTHETIC_SEED),
            (TEST_FILE, SYNTHETIC_TEST_COUNTS, SYNTHETIC_SEED + 1),
        ):
            if not (folder / name).exists():
                write_atomically(folder / name, generate_csv(counts, seed))
    train_path, test_path = find_files(folder)
    x_train, y_train = read_mitbih_csv(train_path)
    x_test, y_test = read_mitbih_csv(test_path)
    for cls, name in enumerate(CLASS_NAMES):
        if (y_train == cls).sum() < 2:
            raise DataError(f"{train_path}: class {name} has {(y_train == cls).sum()} rows; need at least 2")
    splits = train_file_splits("mitbih", options, y_train, len(y_test))
    train, val, test = splits["train"], splits["val"], splits["test"]
    val_fraction = float(options.get("val_fraction", 0.2))
    y = np.concatenate([y_train, y_test])

    def counts(labels: np.ndarray) -> str:
        return " ".join(f"{name} {int((labels == i).sum())}" for i, name in enumerate(CLASS_NAMES))

    summary = (
        f"{TRAIN_FILE} {len(y_train)} rows ({counts(y_train)}), {TEST_FILE} {len(y_test)} rows ({counts(y_test)}); "
        f"split train/val/test {len(train)}/{len(val)}/{len(test)} (val {val_fraction:g} of the train file, "
        "stratified; test = the test file)"
    )
    if synthetic:
        summary = "synthetic beats (five Gaussian-wave morphologies, real layout, small on purpose): " + summary
    return LoadedData(
        arrays={"x": np.concatenate([x_train, x_test]), "y": y},
        splits=splits,
        meta={"class_names": CLASS_NAMES, "n_samples": N_SAMPLES, "n_classes": len(CLASS_NAMES)},
        source=str(folder),
        synthetic=synthetic,
        fingerprint=file_fingerprint(train_path, test_path),
        summary=summary,
    )


def find_files(folder: Path) -> tuple[Path, Path]:
    """The train and test file of a Kaggle download folder; a file or a folder lacking them is an error."""
    expected = f"the folder holding {TRAIN_FILE} and {TEST_FILE} (Kaggle ECG Heartbeat Categorization)"
    if not folder.exists():
        raise DataError(f"{folder}: no such folder; expected {expected}")
    if not folder.is_dir():
        raise DataError(f"{folder}: is a file; pass {expected}")
    missing = [name for name in (TRAIN_FILE, TEST_FILE) if not (folder / name).is_file()]
    if missing:
        raise DataError(f"{folder}: has no {' or '.join(missing)}; expected {expected}")
    return folder / TRAIN_FILE, folder / TEST_FILE


def read_mitbih_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse one MIT-BIH file; return (beats float32 [n, 187], class int64 [n])."""
    if not path.is_file():
        raise DataError(f"{path}: no such file (expected a Kaggle MIT-BIH CSV: 187 samples and the class per row)")
    try:
        frame = pd.read_csv(path, header=None, low_memory=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV ({first_line(exc)})") from None
    if frame.shape[1] != N_SAMPLES + 1:
        raise DataError(
            f"{path}: rows have {frame.shape[1]} values; expected {N_SAMPLES + 1} (187 samples, then the class)"
        )
    values = frame.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raw = frame.iat[row, col]
        what = "is empty" if pd.isna(raw) else f"{raw!r} is not a number"
        hint = " (the files have no header row)" if row == 0 and not pd.isna(raw) else ""
        raise DataError(f"{path}: row {row + 1}, column {col + 1} {what}{hint}")
    labels = values[:, -1]
    wrong = ~np.isin(labels, np.arange(len(CLASS_NAMES)))
    if wrong.any():
        row = int(np.flatnonzero(wrong)[0])
        raise DataError(f"{path}: row {row + 1}: class {float(labels[row])!r} is not one of 0.0..4.0 (N, S, V, F, Q)")
    return values[:, :-1].astype(np.float32), labels.astype(np.int64)


# One row per class: R amplitude, QRS width, S-wave depth, T amplitude, T position (share of RR), P amplitude,
# RR interval (share of the normal one), pacing spike amplitude. Widths and RR jitter overlap between classes.
_MORPHOLOGY = np.array(
    [
        # R    qrs_w  s     t_amp  t_pos  p_amp  rr    spike
        [1.00, 2.2, -0.25, 0.30, 0.35, 0.12, 1.00, 0.0],  # N: narrow QRS, upright T, P before the next beat
        [1.00, 2.2, -0.25, 0.36, 0.31, 0.00, 0.84, 0.0],  # S: premature (short RR), P wave missing
        [0.90, 5.5, -0.55, -0.40, 0.42, 0.00, 1.25, 0.0],  # V: wide QRS, deep S, inverted T, compensatory pause
        [0.95, 3.2, -0.38, 0.12, 0.37, 0.07, 1.05, 0.0],  # F: fusion, between N and V
        [0.80, 4.5, -0.30, -0.22, 0.40, 0.00, 0.95, 0.6],  # Q: paced, a sharp spike before a wide complex
    ]
)


def generate_csv(counts: tuple[int, ...], seed: int) -> str:
    """A synthetic MIT-BIH file (no header, 187 samples + class per row) with ``counts`` rows per class.

    A beat starts at its R peak, as in the Kaggle files, and the window is 1.2 x the normal RR, so the next
    beat's P wave and R peak appear near the end; after min-max scaling to [0, 1] the rest is zero-padded.
    Per-beat jitter of every wave's amplitude, width and position, baseline wander and noise make the classes
    overlap (S differs from N mostly by timing and the P wave, F lies between N and V), so a model must learn.
    """
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(counts)), counts)
    rng.shuffle(labels)
    beats = pd.DataFrame(np.vstack([_beat(int(c), rng) for c in labels]))
    lines = beats.to_csv(header=False, index=False, float_format="%.6g").splitlines()
    return "".join(f"{line},{label:.1f}\n" for line, label in zip(lines, labels, strict=True))


def _beat(cls: int, rng: np.random.Generator) -> np.ndarray:
    r_amp, qrs_w, s_amp, t_amp, t_pos, p_amp, rr_share, spike = _MORPHOLOGY[cls] * rng.normal(1.0, 0.15, 8)
    normal_rr = rng.uniform(85, 130)  # samples at 125 Hz: 58-88 beats per minute
    length = int(min(N_SAMPLES, round(1.2 * normal_rr)))
    rr = normal_rr * rr_share * rng.normal(1.0, 0.06)
    t = np.arange(length, dtype=np.float64)

    def wave(amp: float, centre: float, width: float) -> np.ndarray:
        return amp * np.exp(-0.5 * ((t - centre) / max(width, 0.5)) ** 2)

    offset = 5.0 if spike > 0.3 else 0.0  # paced: the complex follows the spike
    signal = wave(spike, 0.0, 0.7) + wave(r_amp, offset, qrs_w) + wave(s_amp, offset + 1.8 * qrs_w, qrs_w)
    signal += wave(t_amp, offset + t_pos * rr * rng.normal(1.0, 0.08), rng.uniform(6, 11))
    # the next beat, if it falls inside the window (its own P wave first)
    signal += wave(p_amp + rng.normal(0, 0.02), rr - 16, 4.0) + wave(1.0, rr, 2.2) + wave(-0.25, rr + 4, 2.0)
    signal += rng.uniform(0, 0.12) * np.sin(2 * np.pi * t / rng.uniform(150, 400) + rng.uniform(0, 2 * np.pi))
    signal += rng.normal(0, rng.uniform(0.01, 0.04), length)
    scaled = (signal - signal.min()) / (signal.max() - signal.min())
    beat = np.zeros(N_SAMPLES)
    beat[:length] = scaled
    return beat

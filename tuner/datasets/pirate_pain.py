"""Pirate pain (report 000, AN2DL 2025): per-subject multivariate time series, three pain classes.

``--data`` is the folder holding ``pirate_pain_train.csv`` (one row per subject and time step) and
``pirate_pain_train_labels.csv`` (one label per subject). The parser turns them into one array per subject:
``series`` [subjects, time steps, features] with the categorical body columns mapped to 0/1 and the four pain
surveys one-hot encoded (both fixed mappings, so they are done here once); everything that is *fitted*
(zero-variance filter, PCA, min-max scaling) is fitted by the trainable on training subjects only.

Splits are by subject, so no subject is ever in two of them: a stratified held-out test set, and stratified
K folds over the rest (``fold{k}_train`` / ``fold{k}_val``); ``train`` is the whole development part.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

from tuner.datasets.base import LoadedData, file_fingerprint, write_atomically
from tuner.errors import DataError, TunerError, first_line

TRAIN_FILE = "pirate_pain_train.csv"
LABELS_FILE = "pirate_pain_train_labels.csv"
CLASSES = ("no_pain", "low_pain", "high_pain")
REAL_COUNTS = (511, 94, 56)
SURVEYS = tuple(f"pain_survey_{i}" for i in range(1, 5))
SURVEY_LEVELS = (0, 1, 2)
BODY = {"n_legs": ("two", "one+peg_leg"), "n_hands": ("two", "one+hook_hand"), "n_eyes": ("two", "one+eye_patch")}
JOINTS = tuple(f"joint_{i:02d}" for i in range(31))
COLUMNS = ("sample_index", "time", *SURVEYS, *BODY, *JOINTS)
FEATURES = (*(f"{s}={v}" for s in SURVEYS for v in SURVEY_LEVELS), *BODY, *JOINTS)
# PCA works inside these blocks of joints; they follow the value ranges of the real file (00-12 move,
# 13-25 stay near zero, 26-30 the rest, joint_30 constant).
JOINT_GROUPS = (JOINTS[0:13], JOINTS[13:26], JOINTS[26:31])
OPTIONS = {"test_fraction", "cv_folds", "split_seed"}

SYNTHETIC_DIR = "pirate_pain_synthetic"
SYNTHETIC_SEED = 2025
SYNTHETIC_STEPS = 26  # the real series have 160 steps; shorter keeps a CPU epoch of the report's LSTM short
SYNTHETIC_COUNTS = REAL_COUNTS
PAIN_SPREAD = 0.3  # per-subject spread of the latent pain around its class: how much the classes overlap


def load(path: Path | None, options: dict[str, Any], cache_dir: Path) -> LoadedData:
    unknown = sorted(set(options) - OPTIONS)
    if unknown:
        raise TunerError(f"pirate_pain: unknown option(s) {', '.join(unknown)}; accepted: {', '.join(sorted(OPTIONS))}")
    synthetic = path is None
    folder = cache_dir / SYNTHETIC_DIR if synthetic else Path(path)
    if synthetic and not (folder / LABELS_FILE).exists():
        train_text, labels_text = generate_csvs(seed=SYNTHETIC_SEED)
        write_atomically(folder / TRAIN_FILE, train_text)
        write_atomically(folder / LABELS_FILE, labels_text)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder; --data must be the folder holding {TRAIN_FILE} and {LABELS_FILE}")
    ids, series = read_train_csv(folder / TRAIN_FILE)
    y = attach_labels(ids, read_labels_csv(folder / LABELS_FILE), folder / LABELS_FILE)
    try:
        splits = subject_splits(
            y,
            test_fraction=float(options.get("test_fraction", 0.2)),
            folds=int(options.get("cv_folds", 2)),
            seed=int(options.get("split_seed", 42)),
        )
    except DataError as exc:
        raise DataError(f"{folder / LABELS_FILE}: {exc}") from None
    counts = ", ".join(f"{name} {(y == i).sum()}" for i, name in enumerate(CLASSES))
    n_folds = sum(key.endswith("_val") for key in splits)
    kind = "SYNTHETIC subjects (generated, not the challenge data)" if synthetic else "subjects"
    return LoadedData(
        arrays={"series": series, "y": y, "sample_index": ids},
        splits=splits,
        meta={
            "class_names": CLASSES,
            "feature_names": FEATURES,
            "joint_groups": JOINT_GROUPS,
            "n_steps": series.shape[1],
            "cv_folds": n_folds,
        },
        source=str(folder),
        synthetic=synthetic,
        fingerprint=file_fingerprint(folder / TRAIN_FILE, folder / LABELS_FILE),
        summary=(
            f"{len(y)} {kind} x {series.shape[1]} steps ({counts}); by subject: test {len(splits['test'])}, "
            f"{n_folds}-fold CV over {len(splits['train'])}"
        ),
    )


def read_train_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse the train layout; return (sample ids int64 [n], series float32 [n, steps, len(FEATURES)])."""
    frame = _read_csv(path, "the pirate pain train CSV")
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(COLUMNS[:10])},...")
    ids = _integers(frame, "sample_index", path)
    times = _integers(frame, "time", path)
    frame = frame.assign(sample_index=ids, time=times).sort_values(["sample_index", "time"], kind="stable")
    sizes = frame.groupby("sample_index").size()
    steps = int(sizes.mode().iloc[0])
    if (sizes != steps).any():
        odd = sizes[sizes != steps].index[0]
        raise DataError(f"{path}: sample {odd} has {sizes[odd]} time steps; the others have {steps}")
    expected_time = np.tile(np.arange(steps), len(sizes))
    if not np.array_equal(frame["time"].to_numpy(), expected_time):
        bad = int(frame["sample_index"].to_numpy()[np.flatnonzero(frame["time"].to_numpy() != expected_time)[0]])
        raise DataError(f"{path}: sample {bad}: time must run 0..{steps - 1} once each")
    parts = []
    for survey in SURVEYS:
        values = _integers(frame, survey, path)
        unknown = sorted(set(values.tolist()) - set(SURVEY_LEVELS))
        if unknown:
            raise DataError(f"{path}: column {survey} has value {unknown[0]}; accepted: 0, 1, 2")
        parts += [(values == level).astype(np.float32) for level in SURVEY_LEVELS]
    for column, levels in BODY.items():
        text = frame[column].astype(str).str.strip()
        unknown = sorted(set(text) - set(levels))
        if unknown:
            raise DataError(f"{path}: column {column} has value {unknown[0]!r}; accepted: {', '.join(levels)}")
        parts.append((text == levels[1]).to_numpy(dtype=np.float32))
    joints = frame[list(JOINTS)].apply(pd.to_numeric, errors="coerce")
    if joints.isna().any().any():
        row, col = np.argwhere(joints.isna().to_numpy())[0]
        raw = frame[list(JOINTS)].iloc[row, col]
        raise DataError(f"{path}: row {frame.index[row] + 2}, column {JOINTS[col]}: {raw!r} is not a number")
    table = np.column_stack([*parts, joints.to_numpy(dtype=np.float32)])
    series = table.reshape(len(sizes), steps, len(FEATURES)).astype(np.float32)
    return sizes.index.to_numpy(dtype=np.int64), series


def read_labels_csv(path: Path) -> dict[int, int]:
    """Parse ``sample_index,label`` (ids may be zero-padded, e.g. ``000``); return id -> class index."""
    frame = _read_csv(path, "the pirate pain labels CSV", dtype=str)
    missing = [c for c in ("sample_index", "label") if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; expected sample_index,label")
    ids = _integers(frame, "sample_index", path)
    labels = frame["label"].astype(str).str.strip()
    unknown = sorted(set(labels) - set(CLASSES))
    if unknown:
        raise DataError(f"{path}: unknown label {unknown[0]!r}; accepted: {', '.join(CLASSES)}")
    duplicated = pd.Series(ids).duplicated()
    if duplicated.any():
        raise DataError(f"{path}: sample {ids[duplicated.to_numpy()][0]} is labelled more than once")
    return dict(zip(ids.tolist(), labels.map(CLASSES.index).tolist(), strict=True))


def attach_labels(ids: np.ndarray, labels: dict[int, int], labels_path: Path) -> np.ndarray:
    """The class index of every subject, in ``ids`` order; a subject without a label (or a label without a
    subject) means the two files do not belong together."""
    unlabelled = [int(i) for i in ids if int(i) not in labels]
    if unlabelled:
        raise DataError(f"{labels_path}: no label for sample(s) {', '.join(map(str, unlabelled[:5]))}")
    extra = sorted(set(labels) - set(ids.tolist()))
    if extra:
        raise DataError(f"{labels_path}: labels for sample(s) {', '.join(map(str, extra[:5]))} not in {TRAIN_FILE}")
    return np.array([labels[int(i)] for i in ids], dtype=np.int64)


def subject_splits(y: np.ndarray, test_fraction: float, folds: int, seed: int) -> dict[str, np.ndarray]:
    """Stratified, seeded subject-wise split: held-out ``test`` and K folds over the rest (``train``)."""
    if not 0 < test_fraction < 1:
        raise TunerError(f"pirate_pain test_fraction={test_fraction}: must be between 0 and 1")
    if folds < 2:
        raise TunerError(f"pirate_pain cv_folds={folds}: must be an integer of at least 2")
    subjects = np.arange(len(y))
    dev, test = train_test_split(subjects, test_size=test_fraction, stratify=y, random_state=seed)
    smallest = np.bincount(y[dev], minlength=len(CLASSES))
    if smallest.min() < folds:
        cls = CLASSES[int(smallest.argmin())]
        raise DataError(f"class {cls} has {smallest.min()} development subjects; cv_folds={folds} needs {folds}")
    splits = {"train": np.sort(dev), "test": np.sort(test)}
    kfold = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (fit, held) in enumerate(kfold.split(dev, y[dev])):
        splits[f"fold{k}_train"], splits[f"fold{k}_val"] = np.sort(dev[fit]), np.sort(dev[held])
    return splits


def _read_csv(path: Path, what: str, **kwargs: Any) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"{path}: no such file (expected {what})")
    try:
        frame = pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV ({first_line(exc)})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise DataError(f"{path}: has a header but no data rows")
    return frame


def _integers(frame: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    values = pd.to_numeric(frame[column].astype(str).str.strip(), errors="coerce")
    bad = values.isna() | (values != values.round())
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])  # the frame keeps its file order in its index
        raise DataError(
            f"{path}: row {frame.index[row] + 2}, column {column}: {frame[column].iloc[row]!r} is not an integer"
        )
    return values.to_numpy().astype(np.int64)


def generate_csvs(
    seed: int = SYNTHETIC_SEED, counts: tuple[int, ...] = SYNTHETIC_COUNTS, steps: int = SYNTHETIC_STEPS
) -> tuple[str, str]:
    """A synthetic pirate pain dataset in the real layout: (train CSV text, labels CSV text).

    Each subject has a latent pain level (its class index plus noise of ``PAIN_SPREAD``, so neighbouring
    classes overlap). Pain shows in time, not in any single step: a fast tremor (period ~4 steps) whose
    amplitude grows with pain rides on the slow movement of joints 00-12, whose range of motion shrinks with
    pain; the surveys are noisy per-step readings around a per-subject bias. Joints 13-25 are near zero,
    26-29 move slowly without pain information, joint_30 is the constant 0.5, as in the real file.
    """
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(counts)), counts)
    rng.shuffle(labels)
    n = len(labels)
    pain = labels + rng.normal(0.0, PAIN_SPREAD, n)
    t = np.arange(steps)

    def slow(k: int) -> np.ndarray:  # k smooth movement drivers per subject: (n, k, steps)
        freq, phase = rng.uniform(0.02, 0.08, (n, k, 1)), rng.uniform(0, 2 * np.pi, (n, k, 1))
        return np.sin(2 * np.pi * freq * t + phase)

    motion = np.einsum("jk,nkt->ntj", rng.normal(0.0, 0.15, (13, 3)), slow(3))
    motion *= np.clip(1.0 - 0.2 * pain, 0.4, 1.2)[:, None, None]
    tremor = np.sin(2 * np.pi * 0.23 * t + rng.uniform(0, 2 * np.pi, (n, 1))) * 0.2 * np.clip(pain, 0, None)[:, None]
    moving = 0.7 + motion + tremor[:, :, None] * rng.uniform(0.5, 1.5, 13) + rng.normal(0.0, 0.03, (n, steps, 13))
    still = np.abs(rng.normal(0.0, 2e-5, (n, steps, 13)))
    other = 0.4 + np.einsum("jk,nkt->ntj", rng.normal(0.0, 0.1, (4, 2)), slow(2)) + rng.normal(0, 0.02, (n, steps, 4))
    joints = np.concatenate([np.clip(moving, 0, 1.4), still, other, np.full((n, steps, 1), 0.5)], axis=2)

    bias = rng.normal(0.0, 0.5, (n, len(SURVEYS), 1))
    surveys = np.clip(np.round(0.6 * pain[:, None, None] + bias + rng.normal(0, 0.5, (n, len(SURVEYS), steps))), 0, 2)
    table = pd.DataFrame(
        {
            "sample_index": np.repeat(np.arange(n), steps),
            "time": np.tile(t, n),
            **{s: surveys[:, i, :].reshape(-1).astype(int) for i, s in enumerate(SURVEYS)},
            **{c: np.repeat(np.where(rng.random(n) < 0.1, levels[1], levels[0]), steps) for c, levels in BODY.items()},
            **{name: joints[:, :, j].reshape(-1) for j, name in enumerate(JOINTS)},
        }
    )
    labels_frame = pd.DataFrame({"sample_index": [f"{i:03d}" for i in range(n)], "label": [CLASSES[c] for c in labels]})
    return table.to_csv(index=False, float_format="%.6g"), labels_frame.to_csv(index=False)

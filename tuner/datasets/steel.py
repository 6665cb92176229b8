"""Steel Plates Faults (report 002): the OpenML 1504 CSV and the UCI named CSV, plus a synthetic generator.

Both real layouts are parsed into the same thing: 27 float features and the fault index in ``FAULTS`` order.
The ``binary`` task is Other_Faults against the rest (OpenML 1504's target); ``multiclass`` keeps the six
named fault types and leaves the Other_Faults rows out, as the report does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from tuner.datasets.base import LoadedData, file_fingerprint, write_atomically
from tuner.errors import DataError, first_line

FAULTS = ("Pastry", "Z_Scratch", "K_Scatch", "Stains", "Dirtiness", "Bumps", "Other_Faults")
FAULT_ALIASES = {"K_Scratch": "K_Scatch"}
REAL_COUNTS = (158, 190, 391, 72, 55, 402, 673)
FEATURES = (
    "X_Minimum", "X_Maximum", "Y_Minimum", "Y_Maximum", "Pixels_Areas", "X_Perimeter", "Y_Perimeter",
    "Sum_of_Luminosity", "Minimum_of_Luminosity", "Maximum_of_Luminosity", "Length_of_Conveyer",
    "TypeOfSteel_A300", "TypeOfSteel_A400", "Steel_Plate_Thickness", "Edges_Index", "Empty_Index",
    "Square_Index", "Outside_X_Index", "Edges_X_Index", "Edges_Y_Index", "Outside_Global_Index",
    "LogOfAreas", "Log_X_Index", "Log_Y_Index", "Orientation_Index", "Luminosity_Index", "SigmoidOfAreas",
)  # fmt: skip
OPENML_COLUMNS = tuple(f"V{i}" for i in range(1, 34)) + ("Class",)
UCI_COLUMNS = FEATURES + ("Fault",)
SYNTHETIC_FILE = "steel_openml1504_synthetic.csv"
SYNTHETIC_SEED = 1504
TASKS = ("binary", "multiclass")


def load(path: Path | None, options: dict[str, Any], cache_dir: Path) -> LoadedData:
    task = options.get("task")
    if task not in TASKS:
        raise ValueError(f"steel task must be one of {TASKS}, got {task!r}")
    synthetic = path is None
    if synthetic:
        path = cache_dir / SYNTHETIC_FILE
        if not path.exists():
            write_atomically(path, generate_openml_csv(seed=SYNTHETIC_SEED))
    features, faults = read_steel_csv(Path(path))
    if task == "binary":
        x, y = features, (faults == FAULTS.index("Other_Faults")).astype(np.int64)
        class_names = ("rest", "Other_Faults")
    else:
        keep = faults != FAULTS.index("Other_Faults")
        x, y = features[keep], faults[keep].astype(np.int64)
        class_names = FAULTS[:6]
    for cls in range(len(class_names)):
        if (y == cls).sum() < 3:
            raise DataError(f"{path}: class {class_names[cls]} has {(y == cls).sum()} rows; need at least 3")
    fractions = tuple(options["split"])
    splits = stratified_split(y, fractions, seed=int(options.get("split_seed", 42)))
    counts = ", ".join(f"{name} {(y == i).sum()}" for i, name in enumerate(class_names))
    return LoadedData(
        arrays={"x": x, "y": y},
        splits=splits,
        meta={"task": task, "class_names": class_names, "feature_names": FEATURES, "n_features": x.shape[1]},
        source=str(path),
        synthetic=synthetic,
        fingerprint=file_fingerprint(Path(path)),
        summary=(
            f"{len(y)} rows ({counts}); split train/val/test "
            f"{len(splits['train'])}/{len(splits['val'])}/{len(splits['test'])}"
        ),
    )


def read_steel_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse either real layout; return (features float32 [n, 27], fault index int64 [n])."""
    if not path.exists():
        raise DataError(f"{path}: no such file (expected the Steel Plates Faults CSV)")
    if path.is_dir():
        raise DataError(f"{path}: is a folder; expected the Steel Plates Faults CSV file itself")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV ({first_line(exc)})") from None
    columns = [str(c).strip() for c in frame.columns]
    frame.columns = columns
    if "V1" in columns or "Class" in columns:
        layout, expected = "OpenML 1504", OPENML_COLUMNS
    elif "X_Minimum" in columns or "Fault" in columns:
        layout, expected = "UCI", UCI_COLUMNS
    else:
        raise DataError(
            f"{path}: columns {', '.join(columns[:5])}... match neither layout; expected V1..V33,Class "
            f"(OpenML 1504) or X_Minimum,...,SigmoidOfAreas,Fault (UCI)"
        )
    missing = [c for c in expected if c not in columns]
    if missing:
        raise DataError(f"{path}: {layout} layout is missing column(s) {', '.join(missing)}")
    if frame.empty:
        raise DataError(f"{path}: has a header but no data rows")
    if layout == "OpenML 1504":
        features = _numeric(frame, [f"V{i}" for i in range(1, 28)], path)
        faults = _openml_faults(frame, path)
    else:
        frame = frame.copy()
        for flag in ("TypeOfSteel_A300", "TypeOfSteel_A400"):
            frame[flag] = frame[flag].map(_parse_flag(path, flag))
        features = _numeric(frame, list(FEATURES), path)
        faults = _uci_faults(frame, path)
    return features.astype(np.float32), faults


def _numeric(frame: pd.DataFrame, columns: list[str], path: Path) -> np.ndarray:
    values = frame[columns].apply(pd.to_numeric, errors="coerce")
    bad = values.isna()
    if bad.any().any():
        row, col = np.argwhere(bad.to_numpy())[0]
        raw = frame[columns].iloc[row, col]
        raise DataError(f"{path}: row {row + 2}, column {columns[col]}: {raw!r} is not a number")
    return values.to_numpy(dtype=np.float64)


def _parse_flag(path: Path, column: str):
    mapping = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0}

    def parse(value: Any) -> float:
        key = str(value).strip().lower()
        if key not in mapping:
            raise DataError(f"{path}: column {column}: {value!r} is not True/False")
        return mapping[key]

    return parse


def _openml_faults(frame: pd.DataFrame, path: Path) -> np.ndarray:
    onehot = frame[[f"V{i}" for i in range(28, 34)]].apply(pd.to_numeric, errors="coerce")
    cls = pd.to_numeric(frame["Class"], errors="coerce")
    values = set(cls.dropna().unique().tolist())
    if cls.isna().any() or not (values <= {0, 1} or values <= {1, 2}):
        shown = sorted(str(v) for v in frame["Class"].unique())[:5]
        raise DataError(f"{path}: column Class has values {shown}; accepted: 0/1 or the ARFF coding 1/2")
    if values <= {1, 2} and 2 in values:
        cls = cls - 1
    table = np.column_stack([onehot.to_numpy(), cls.to_numpy()])
    if np.isnan(table).any() or not np.isin(table, (0, 1)).all():
        raise DataError(f"{path}: fault columns V28..V33 must be 0/1")
    per_row = table.sum(axis=1)
    if (per_row != 1).any():
        row = int(np.flatnonzero(per_row != 1)[0])
        raise DataError(f"{path}: row {row + 2} has {int(per_row[row])} faults set; each row needs exactly one")
    return table.argmax(axis=1).astype(np.int64)


def _uci_faults(frame: pd.DataFrame, path: Path) -> np.ndarray:
    names = frame["Fault"].astype(str).str.strip().replace(FAULT_ALIASES)
    unknown = sorted(set(names) - set(FAULTS))
    if unknown:
        raise DataError(f"{path}: unknown Fault label(s) {', '.join(unknown[:5])}; accepted: {', '.join(FAULTS)}")
    return names.map({name: i for i, name in enumerate(FAULTS)}).to_numpy(dtype=np.int64)


def stratified_split(y: np.ndarray, fractions: tuple[float, ...], seed: int) -> dict[str, np.ndarray]:
    """Seeded stratified train/val/test split by the given fractions (they must sum to 1)."""
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-6 or min(fractions) <= 0:
        raise ValueError(f"split fractions must be three positive numbers summing to 1, got {fractions}")
    index = np.arange(len(y))
    train, rest = train_test_split(index, train_size=fractions[0], stratify=y, random_state=seed)
    val_share = fractions[1] / (fractions[1] + fractions[2])
    val, test = train_test_split(rest, train_size=val_share, stratify=y[rest], random_state=seed)
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def generate_openml_csv(seed: int = SYNTHETIC_SEED, counts: tuple[int, ...] = REAL_COUNTS) -> str:
    """A synthetic Steel Plates Faults table in the OpenML 1504 CSV layout, as text.

    Each fault type has its own centre in an 8-dimensional latent space (defect width, height, luminosity,
    contrast, steel type, thickness, edge position, fill); the 27 features are computed from it the way the
    real ones relate (areas from width x height, logs of areas, luminosity sums, ratios), so features have
    the real file's very different scales and feature scaling matters. Classes overlap, and Other_Faults is a
    broad catch-all around the middle, so it is learnable but not trivial (a tuned MLP reaches ~0.8 accuracy).
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 1.0, size=(len(counts), 8))
    centres[-1] = 0.0
    spread = np.full(len(counts), 1.0)
    spread[-1] = 1.35
    faults = np.repeat(np.arange(len(counts)), counts)
    rng.shuffle(faults)
    z = centres[faults] + rng.normal(0.0, 1.0, size=(len(faults), 8)) * spread[faults, None]
    n = len(faults)

    def sigmoid(v):
        return 1.0 / (1.0 + np.exp(-v))

    width = np.clip(np.exp(3.0 + 0.9 * z[:, 0]), 1, 1200).round()
    height = np.clip(np.exp(3.2 + 1.0 * z[:, 1]), 1, 9000).round()
    conveyor = (1230 + 600 * sigmoid(rng.normal(size=n))).round()
    x_min = (rng.uniform(0, 1, n) * np.maximum(conveyor - width, 1)).round()
    y_min = rng.uniform(0, 12.9e6, n).round()
    fill = 0.3 + 0.6 * sigmoid(z[:, 7])
    area = np.maximum((width * height * fill).round(), 2)
    x_perimeter = np.maximum((width * (1 + 0.4 * np.abs(rng.normal(size=n)))).round(), 1)
    y_perimeter = np.maximum((height * (1 + 0.4 * np.abs(rng.normal(size=n)))).round(), 1)
    lum = np.clip(100 + 25 * z[:, 2], 5, 250)
    contrast = np.exp(3.0 + 0.45 * z[:, 3])
    a300 = (z[:, 4] + 0.5 * rng.normal(size=n) > 0).astype(int)
    thickness = np.clip(80 + 45 * z[:, 5], 40, 300).round()
    columns = [
        x_min, x_min + width, y_min, y_min + height, area, x_perimeter, y_perimeter,
        (area * lum).round(), np.clip(lum - contrast, 0, 255).round(), np.clip(lum + contrast, 0, 255).round(),
        conveyor, a300, 1 - a300, thickness,
        sigmoid(z[:, 6]).round(4), (1 - fill).round(4),
        (np.minimum(width, height) / np.maximum(width, height)).round(4),
        (width / conveyor).round(4), (width / x_perimeter).round(4), (height / y_perimeter).round(4),
        np.where(height > 2 * width, 1.0, np.where(width > 2 * height, 0.0, 0.5)),
        np.log10(area).round(4), np.log10(width).round(4), np.log10(height).round(4),
        ((height - width) / np.maximum(width, height)).round(4), ((lum - 128) / 128).round(4),
        sigmoid((np.log10(area) - 2.5) * 2).round(4),
    ]  # fmt: skip
    table = pd.DataFrame(dict(zip(OPENML_COLUMNS[:27], columns, strict=True)))
    for i in range(27, 34):
        table[OPENML_COLUMNS[i]] = (faults == i - 27).astype(int)
    for column in OPENML_COLUMNS[:14]:  # counts, pixel positions, flags and thickness are integers
        table[column] = table[column].astype(np.int64)
    return table.to_csv(index=False, float_format="%.6g")

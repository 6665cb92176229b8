"""The data of __NAME__: a CSV file of numeric feature columns and a ``label`` column.

``load(path, options, cache_dir)`` is the loader contract: it reads the real file at ``path`` or, when ``path`` is
None (no ``--data``), writes a synthetic file in the same layout under ``cache_dir`` once and reads that back
through the same parser. It returns a ``tuner.LoadedData``: arrays, fixed train/val/test row indices (the test rows
are never searched on), where the data came from and whether it is synthetic.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from tuner import LoadedData

LABEL = "label"
SYNTHETIC_FILE = "__NAME___synthetic.csv"


def load(path: Path | None, options: dict[str, Any], cache_dir: Path) -> LoadedData:
    synthetic = path is None
    if synthetic:
        path = Path(cache_dir) / SYNTHETIC_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_synthetic(path)
    frame = pd.read_csv(path)
    if LABEL not in frame.columns:
        raise ValueError(f"{path}: no {LABEL!r} column (columns: {', '.join(frame.columns)})")
    features = [c for c in frame.columns if c != LABEL]
    x = frame[features].to_numpy(np.float32)
    labels, y = np.unique(frame[LABEL].to_numpy(), return_inverse=True)
    splits = _splits(y, options)
    return LoadedData(
        arrays={"x": x, "y": y.astype(np.int64)},
        splits=splits,
        meta={"features": features, "classes": [str(c) for c in labels]},
        source=str(path),
        synthetic=synthetic,
        fingerprint=hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16],
        summary=f"{len(y)} rows, {len(features)} features, {len(labels)} classes; "
        + ", ".join(f"{name} {len(rows)}" for name, rows in splits.items()),
    )


def _splits(y: np.ndarray, options: dict[str, Any]) -> dict[str, np.ndarray]:
    """Stratified train/val/test rows, fixed by ``split_seed``: every trial of a study sees the same split."""
    rows, seed = np.arange(len(y)), int(options.get("split_seed", 0))
    rest, test = train_test_split(rows, test_size=float(options["test_fraction"]), stratify=y, random_state=seed)
    val_share = float(options["val_fraction"]) / (1 - float(options["test_fraction"]))
    train, val = train_test_split(rest, test_size=val_share, stratify=y[rest], random_state=seed)
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def write_synthetic(path: Path, rows: int = 600, features: int = 8, seed: int = 0) -> None:
    """Three classes around random centres, with one nonlinear feature: learnable, not trivial."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.5, size=(3, features))
    y = rng.integers(0, 3, size=rows)
    x = centres[y] + rng.normal(0, 1.6, size=(rows, features))
    x[:, 0] += np.where(x[:, 1] * x[:, 2] > 0, 1.0, -1.0)
    frame = pd.DataFrame(x.round(4), columns=[f"x{i + 1}" for i in range(features)])
    frame[LABEL] = np.array(["a", "b", "c"])[y]
    frame.to_csv(path, index=False)

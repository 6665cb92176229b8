"""What a dataset loader hands to the driver: arrays, fixed splits, and where they came from."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LoadedData:
    """A dataset loaded once per run and shipped to every trial through Ray's object store.

    ``splits`` maps ``train``/``val``/``test`` to row indices into the arrays; they are fixed by the run's
    seed so every trial of a study sees the same split and the test rows are never searched on.
    """

    arrays: dict[str, np.ndarray]
    splits: dict[str, np.ndarray]
    meta: dict[str, Any]
    source: str
    synthetic: bool
    fingerprint: str
    summary: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> dict[str, np.ndarray]:
        idx = self.splits[name]
        return {key: value[idx] for key, value in self.arrays.items()}


def file_fingerprint(*paths: Path) -> str:
    """sha256 over the files' bytes (first 16 hex digits): names a dataset in MLflow and the export."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def write_atomically(path: Path, content: str | bytes) -> None:
    """Write a file so that a reader never sees it half-written (temp file in the same folder, then rename), with
    the permissions the user's umask gives a new file (0644 by default), as any other tool's output."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp makes it 0600
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb" if isinstance(content, bytes) else "w") as fh:
            fh.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _file_mode() -> int:
    umask = os.umask(0o022)  # read it: os.umask only tells by setting; put back at once
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()
"""A new file's permissions under this process's umask."""


def train_file_splits(dataset: str, options: dict[str, Any], y_train: np.ndarray, n_test: int) -> dict[str, np.ndarray]:
    """Splits of a download that ships a train and a test file (rows: train file, then test file): a stratified,
    seeded ``val_fraction`` of the train file validates, the test file tests. Only ``val_fraction`` and
    ``split_seed`` are accepted as options; anything else is a typo and an error."""
    from sklearn.model_selection import train_test_split

    accepted = ("val_fraction", "split_seed")
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"unknown {dataset} option(s) {', '.join(unknown)}; accepted: {', '.join(accepted)}")
    val_fraction = float(options.get("val_fraction", 0.2))
    if not 0 < val_fraction < 1:
        raise ValueError(f"{dataset} val_fraction must be between 0 and 1, got {val_fraction}")
    train, val = train_test_split(
        np.arange(len(y_train)),
        test_size=val_fraction,
        stratify=y_train,
        random_state=int(options.get("split_seed", 42)),
    )
    test = np.arange(len(y_train), len(y_train) + n_test)
    return {"train": np.sort(train), "val": np.sort(val), "test": test}

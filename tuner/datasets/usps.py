"""USPS handwritten digits (report 004) in the ESL distribution: ``zip.train.gz`` and ``zip.test.gz``.

One digit per line: the label as a float (``6.0000``) then 256 grey values in [-1, 1], space separated,
row-major 16 x 16. The uncompressed ``zip.train``/``zip.test`` are read too (the ``.gz`` file is used when a
folder holds both). ``path`` is the folder; validation is a stratified, seeded share of the train file and the
test split is the whole test file.

Without a path, the embedded default is scikit-learn's bundled digits (1,797 real handwritten digits, 8 x 8,
grey levels 0..16), upscaled to 16 x 16 (bilinear), mapped to [-1, 1] and written in the ESL layout with
USPS's train/test proportions, so the real parser reads them. They are real handwriting but NOT USPS:
the run is flagged synthetic and its figures are not comparable to the report's.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from tuner.datasets.base import LoadedData, file_fingerprint, train_file_splits, write_atomically
from tuner.errors import DataError

SIDE = 16
N_VALUES = SIDE * SIDE
N_CLASSES = 10
REAL_ROWS = {"train": 7291, "test": 2007}
SYNTHETIC_DIR = "usps_from_sklearn_digits"
SYNTHETIC_SEED = 4


def load(path: Path | None, options: dict[str, Any], cache_dir: Path) -> LoadedData:
    synthetic = path is None
    folder = cache_dir / SYNTHETIC_DIR if synthetic else Path(path)
    if synthetic and not all((folder / f"zip.{part}.gz").exists() for part in ("train", "test")):
        write_sklearn_digits(folder, seed=SYNTHETIC_SEED)
    train_path, test_path = find_files(folder)
    x_train, y_train = read_esl_file(train_path)
    x_test, y_test = read_esl_file(test_path)
    for digit in range(N_CLASSES):
        if (y_train == digit).sum() < 2:
            raise DataError(f"{train_path}: digit {digit} has {(y_train == digit).sum()} rows; need at least 2")
    splits = train_file_splits("usps", options, y_train, len(y_test))
    train, val, test = splits["train"], splits["val"], splits["test"]
    val_fraction = float(options.get("val_fraction", 0.2))
    summary = (
        f"{train_path.name} {len(y_train)} digits, {test_path.name} {len(y_test)} digits, 16x16 in [-1, 1]; "
        f"split train/val/test {len(train)}/{len(val)}/{len(test)} (val {val_fraction:g} of the train file)"
    )
    if synthetic:
        summary = (
            "scikit-learn's bundled digits (real handwriting, 8x8 upscaled to 16x16, NOT USPS) written in the "
            "ESL layout: " + summary
        )
    return LoadedData(
        arrays={"x": np.concatenate([x_train, x_test]), "y": np.concatenate([y_train, y_test])},
        splits=splits,
        meta={"n_classes": N_CLASSES, "side": SIDE, "class_names": tuple(str(d) for d in range(N_CLASSES))},
        source=str(folder),
        synthetic=synthetic,
        fingerprint=file_fingerprint(train_path, test_path),
        summary=summary,
    )


def find_files(folder: Path) -> tuple[Path, Path]:
    """``zip.train[.gz]`` and ``zip.test[.gz]`` in ``folder`` (the compressed one when both are there)."""
    expected = "the folder holding zip.train.gz and zip.test.gz (or zip.train and zip.test), the ESL USPS files"
    if not folder.exists():
        raise DataError(f"{folder}: no such folder; expected {expected}")
    if not folder.is_dir():
        raise DataError(f"{folder}: is a file; pass {expected}")
    found = []
    for part in ("train", "test"):
        candidates = [folder / f"zip.{part}.gz", folder / f"zip.{part}"]
        present = [c for c in candidates if c.is_file()]
        if not present:
            raise DataError(f"{folder}: has no zip.{part}.gz or zip.{part}; expected {expected}")
        found.append(present[0])
    return found[0], found[1]


def read_esl_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse one ESL USPS file (gzip when the name ends in .gz); return (images float32 [n, 16, 16], labels)."""
    if not path.is_file():
        raise DataError(f"{path}: no such file (expected an ESL USPS file: a label, then 256 values per line)")
    opener = gzip.open if path.suffix == ".gz" else open
    images, labels = [], []
    try:
        with opener(path, "rt", encoding="ascii") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                label, values = _parse_line(line, number, path)
                labels.append(label)
                images.append(values)
    except (OSError, EOFError, UnicodeDecodeError) as exc:  # a truncated or non-gzip .gz, or binary content
        raise DataError(f"{path}: not a readable ESL text file ({exc.__class__.__name__}: {exc})") from None
    if not labels:
        raise DataError(f"{path}: file is empty")
    return np.stack(images).reshape(-1, SIDE, SIDE), np.array(labels, dtype=np.int64)


def _parse_line(line: str, number: int, path: Path) -> tuple[int, np.ndarray]:
    fields = line.split()
    if len(fields) != N_VALUES + 1:
        raise DataError(
            f"{path}: line {number} has {len(fields)} values; expected 257 (a label, then 16x16 grey values)"
        )
    try:
        numbers = np.array(fields, dtype=np.float64)
    except ValueError:
        bad = next(f for f in fields if not _is_float(f))
        raise DataError(f"{path}: line {number}: {bad!r} is not a number") from None
    label = numbers[0]
    if label not in range(N_CLASSES):
        raise DataError(f"{path}: line {number}: label {fields[0]!r} is not a digit 0..9")
    values = numbers[1:]
    if not np.isfinite(values).all() or values.min() < -1.0001 or values.max() > 1.0001:
        bad = fields[1 + int(np.argmax(~np.isfinite(values) | (np.abs(values) > 1.0001)))]
        raise DataError(f"{path}: line {number}: grey value {bad!r} is outside [-1, 1]")
    return int(label), values.astype(np.float32)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def esl_lines(images: np.ndarray, labels: np.ndarray) -> str:
    """Digits in the ESL text layout: ``6.0000 -1.0000 ...`` (4 decimals, as the distributed files)."""
    rows = np.column_stack([labels.astype(np.float64), images.reshape(len(labels), -1)])
    return "".join(" ".join(f"{v:.4f}" for v in row) + "\n" for row in rows)


def write_sklearn_digits(folder: Path, seed: int = SYNTHETIC_SEED) -> None:
    """Write scikit-learn's digits as ``zip.train.gz``/``zip.test.gz`` in ``folder`` (USPS's 7291:2007 split)."""
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    digits = load_digits()
    upscaled = np.stack([zoom(image, SIDE / 8, order=1) for image in digits.images])
    images = np.clip(upscaled / 8.0 - 1.0, -1.0, 1.0)  # grey levels 0..16 -> [-1, 1]
    test_share = REAL_ROWS["test"] / (REAL_ROWS["train"] + REAL_ROWS["test"])
    train, test = train_test_split(
        np.arange(len(digits.target)), test_size=test_share, stratify=digits.target, random_state=seed
    )
    for part, index in (("train", train), ("test", test)):
        _write_gzip_atomically(folder / f"zip.{part}.gz", esl_lines(images[index], digits.target[index]))


def _write_gzip_atomically(path: Path, text: str) -> None:
    """gzip ``text`` into ``path`` so a reader never sees half a file; mtime 0 keeps the bytes reproducible."""
    write_atomically(path, gzip.compress(text.encode("ascii"), mtime=0))

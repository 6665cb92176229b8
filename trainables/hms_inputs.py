"""HMS inputs (report 003): spectrogram preprocessing as the report, and the image the CNN sees.

Kaggle spectrograms: missing values -> -1, clip to [e^highpass, e^lowpass], log, then normalise either per
instance (each chain of each window by its own mean and std, the baseline) or "datawide" (one mean and std over
the TRAINING rows of the fold, the report's method: validation rows never contribute). The EEG (magic-formula)
images are already scaled by the formula and are used as they are.

The image follows the baseline notebook: the four chains stacked vertically (Kaggle chains padded from 100 to
128 frequency rows), 512 x 256 per source, the two sources side by side when both are used (512 x 512), then
resized by ``image_scale`` (a fixed setting: 1.0 on a GPU, smaller on a laptop CPU).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

CHUNK = 256
KAGGLE_PAD = (128 - 100) // 2
EPS = 1e-6


@dataclass(frozen=True)
class Stats:
    """Datawide normalisation statistics of one fold's training rows (None for per-instance)."""

    mean: float
    std: float


def log_spectrogram(raw: np.ndarray, highpass: float, lowpass: float) -> np.ndarray:
    """Raw Kaggle power (any shape, float16/32 with NaN) -> log power clipped to [highpass, lowpass]."""
    x = np.nan_to_num(raw.astype(np.float32), nan=-1.0, posinf=np.inf)
    return np.log(np.clip(x, np.exp(highpass), np.exp(lowpass)))


def _chunks(rows: np.ndarray) -> Iterator[np.ndarray]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


def datawide_stats(raw: np.ndarray, train_rows: np.ndarray, highpass: float, lowpass: float) -> Stats:
    """Mean and std of the log spectrograms over ``train_rows`` only (chunked: the real data is large)."""
    total, total_sq, count = 0.0, 0.0, 0
    for rows in _chunks(np.sort(train_rows)):
        x = log_spectrogram(raw[rows], highpass, lowpass).astype(np.float64)
        total += x.sum()
        total_sq += np.square(x).sum()
        count += x.size
    mean = float(total / count)
    return Stats(mean=mean, std=float(np.sqrt(max(total_sq / count - mean**2, 0.0))))


def normalise(log_x: np.ndarray, stats: Stats | None) -> np.ndarray:
    """(n, 4, F, T) log spectrograms -> normalised; per instance and chain when ``stats`` is None."""
    if stats is None:
        mean = log_x.mean(axis=(2, 3), keepdims=True)
        std = log_x.std(axis=(2, 3), keepdims=True)
        return (log_x - mean) / (std + EPS)
    return (log_x - stats.mean) / (stats.std + EPS)


def image_size(source: str, scale: float) -> tuple[int, int]:
    width = 512 if source == "both" else 256
    return max(8, round(512 * scale)), max(8, round(width * scale))


def _stack_chains(x: np.ndarray) -> np.ndarray:
    """(n, 4, 128, 256) -> (n, 512, 256): chains top to bottom."""
    return x.reshape(x.shape[0], 4 * x.shape[2], x.shape[3])


def build_images(config: dict[str, Any], data, rows: np.ndarray, stats: Stats | None, scale: float) -> torch.Tensor:
    """The (len(rows), 1, H, W) float32 images of ``rows`` for this config (normalised with ``stats`` if datawide)."""
    source = config["input_source"]
    height, width = image_size(source, scale)
    out = torch.empty((len(rows), 1, height, width), dtype=torch.float32)
    written = 0
    for part in _chunks(rows):
        pieces = []
        if source in ("kaggle", "both"):
            log_x = log_spectrogram(data.arrays["kaggle"][part], config["highpass"], config["lowpass"])
            kaggle = normalise(log_x, stats)
            kaggle = np.pad(kaggle, ((0, 0), (0, 0), (KAGGLE_PAD, KAGGLE_PAD), (0, 0)))
            pieces.append(_stack_chains(kaggle))
        if source in ("eeg", "both"):
            pieces.append(_stack_chains(data.arrays["eeg"][part].astype(np.float32)))
        image = torch.from_numpy(np.ascontiguousarray(np.concatenate(pieces, axis=2), dtype=np.float32))[:, None]
        if (height, width) != tuple(image.shape[-2:]):
            image = F.interpolate(image, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
        out[written : written + len(part)] = image
        written += len(part)
    return out


def fold_stats(config: dict[str, Any], data, train_rows: np.ndarray) -> Stats | None:
    """The normalisation statistics a fold trains and validates with: from its training rows only."""
    if config["normalisation"] != "datawide" or config["input_source"] == "eeg":
        return None
    return datawide_stats(data.arrays["kaggle"], train_rows, config["highpass"], config["lowpass"])

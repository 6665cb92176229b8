"""Report 001's 2D CNN with ResNet blocks for single heartbeats (space ``ecg_cnn2d``).

The 187 samples of a beat are laid out row by row on a 17 x 11 grid (187 = 17 x 11, so nothing is padded or
dropped), then: ``num_layers`` conv blocks (3x3, ReLU, BatchNorm; the first 1 -> ``hidden`` channels) ->
``num_blocks`` residual blocks (identity projection) -> 2x2 max-pool -> flatten -> two dense layers (``hidden``
units, ReLU, dropout) -> 5 logits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trainables import ecg
from trainables.reporting import TrialContext

GRID = (17, 11)


def to_grid(beats: torch.Tensor | np.ndarray, grid: tuple[int, int] = GRID):
    """[batch, 187] beats -> [batch, 1, 17, 11] images, row-major: row r holds samples 11r .. 11r + 10."""
    if beats.shape[-1] != grid[0] * grid[1]:
        raise ValueError(f"a beat of {beats.shape[-1]} samples does not fill a {grid[0]}x{grid[1]} grid")
    return beats.reshape(beats.shape[0], 1, *grid)


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(out_channels))


class ResidualBlock2D(nn.Module):
    """Two conv blocks with an identity skip connection."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(conv_block(channels, channels), conv_block(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class CNN2D(nn.Module):
    def __init__(
        self,
        n_classes: int,
        hidden: int,
        num_layers: int,
        num_blocks: int,
        dropout: float,
        grid: tuple[int, int] = GRID,
    ):
        super().__init__()
        self.grid = grid
        convs = [conv_block(1 if i == 0 else hidden, hidden) for i in range(num_layers)]
        self.features = nn.Sequential(*convs, *[ResidualBlock2D(hidden) for _ in range(num_blocks)], nn.MaxPool2d(2))
        flat = hidden * (grid[0] // 2) * (grid[1] // 2)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes)
        )

    def forward(self, beats: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(to_grid(beats, self.grid)))


def build(config: dict[str, Any], n_samples: int, n_classes: int) -> CNN2D:
    if n_samples != GRID[0] * GRID[1]:
        raise ValueError(f"beats of {n_samples} samples do not fill the {GRID[0]}x{GRID[1]} grid")
    return CNN2D(
        n_classes,
        hidden=int(config["hidden"]),
        num_layers=int(config["num_layers"]),
        num_blocks=int(config["num_blocks"]),
        dropout=float(config["dropout"]),
    )


def train(config: dict[str, Any], data, ctx: TrialContext) -> None:
    """Train one config, reporting every epoch (see ``trainables.ecg.train``)."""
    ecg.train(build, config, data, ctx)


def evaluate(config: dict[str, Any], data, ctx: TrialContext, weights: Path, split: str = "test") -> dict[str, float]:
    """Score a trial's best-epoch weights on ``split``."""
    return ecg.evaluate(build, config, data, ctx, weights, split)


def split_scorer(config: dict[str, Any], data, ctx: TrialContext, weights: Path, split: str = "test"):
    """``evaluate``'s scores of any resample of ``split`` from one inference pass (``trainables.ecg.split_scorer``)."""
    return ecg.split_scorer(build, config, data, ctx, weights, split)


def score_predictions(data, rows: np.ndarray, predicted: np.ndarray, split: str = "test") -> dict[str, float]:
    """Figures of predicted class indices (see ``trainables.ecg.score_predictions``)."""
    return ecg.score_predictions(data, rows, predicted, split)


def inference_state(config: dict[str, Any], data, ctx: TrialContext) -> dict[str, Any]:
    """What ``predict`` needs besides the weights (trainables.family.ServingFamily; see ``trainables.ecg``)."""
    return ecg.inference_state(data)


def predict(config: dict[str, Any], state: dict[str, Any], weights: Path, inputs: np.ndarray) -> np.ndarray:
    """Class indices of beats [rows, 187] (rows of the data's ``x``), as ``evaluate`` scores them."""
    return ecg.predict(build, config, state, weights, inputs)

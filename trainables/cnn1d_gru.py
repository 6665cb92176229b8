"""Report 001's 1D CNN + ResNet blocks + GRU for single heartbeats (space ``ecg_cnngru``).

Conv block (1 -> ``hidden`` channels, kernel 3, ReLU, BatchNorm) -> ``num_blocks`` residual blocks -> max-pool
(halves the 187 samples to 93 steps) -> linear -> a ``num_layers`` GRU of ``gru_hidden`` units -> optional
LayerNorm on its last output -> two dense layers (``hidden`` units, ReLU, dropout) -> 5 logits.

What the GRU reads is ambiguous in the report, so it is a parameter (``gru_input``): ``flattened`` is the
report's text ("flattens the output of convolutions, transforming the features into a 128-dimensional vector"):
one vector, a sequence of length 1. ``steps`` applies the linear layer to each of the 93 pooled steps, so the
GRU reads a sequence; it learns much more slowly (many more optimizer steps before it leaves chance level).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trainables import ecg
from trainables.reporting import TrialContext


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(in_channels, out_channels, 3, padding=1), nn.ReLU(), nn.BatchNorm1d(out_channels))


class ResidualBlock1D(nn.Module):
    """Two conv blocks with an identity skip connection (the channel count is kept, so no projection)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(conv_block(channels, channels), conv_block(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


GRU_INPUTS = ("flattened", "steps")


class CNN1DGRU(nn.Module):
    def __init__(self, n_samples: int, n_classes: int, config: dict[str, Any]):
        super().__init__()
        hidden, gru_hidden, dropout = int(config["hidden"]), int(config["gru_hidden"]), float(config["dropout"])
        self.gru_input = config["gru_input"]
        if self.gru_input not in GRU_INPUTS:
            raise ValueError(f"gru_input {self.gru_input!r} is not one of {', '.join(GRU_INPUTS)}")
        blocks = [ResidualBlock1D(hidden) for _ in range(int(config["num_blocks"]))]
        self.features = nn.Sequential(conv_block(1, hidden), *blocks, nn.MaxPool1d(2))
        steps = n_samples // 2
        self.linear_after_conv = nn.Linear(hidden * steps if self.gru_input == "flattened" else hidden, hidden)
        self.gru = nn.GRU(hidden, gru_hidden, num_layers=int(config["num_layers"]), batch_first=True, dropout=dropout)
        self.norm = nn.LayerNorm(gru_hidden) if config["layer_norm"] else nn.Identity()
        self.head = nn.Sequential(
            nn.Linear(gru_hidden, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes)
        )

    def forward(self, beats: torch.Tensor) -> torch.Tensor:
        features = self.features(beats.unsqueeze(1))  # [batch, channels, steps]
        if self.gru_input == "flattened":
            sequence = self.linear_after_conv(features.flatten(1)).unsqueeze(1)  # [batch, 1, hidden]
        else:
            sequence = self.linear_after_conv(features.transpose(1, 2))  # [batch, steps, hidden]
        out, _ = self.gru(sequence)
        return self.head(self.norm(out[:, -1]))


def build(config: dict[str, Any], n_samples: int, n_classes: int) -> CNN1DGRU:
    return CNN1DGRU(n_samples, n_classes, config)


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

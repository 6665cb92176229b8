"""The model family of __NAME__: how one config trains, is scored and predicts.

- ``train(config, data, ctx)`` trains one config, reporting every epoch through ``tuner.EpochReporter``: it keeps
  the best epoch's weights as the trial's checkpoint, stops early as the space says, and tells the trial when
  the scheduler stopped it;
- ``evaluate(config, data, ctx, weights, split)`` scores saved weights on a split (the test split, at the end);
- ``inference_state`` and ``predict`` let the chosen model be published as an MLflow model that predicts from raw
  inputs, outside any study.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tuner import EpochReporter, LoadedData, TrialContext


def build(config: dict[str, Any], n_inputs: int, n_classes: int) -> nn.Module:
    widths = [int(config["width_1"])] + ([int(config["width_2"])] if int(config["n_layers"]) == 2 else [])
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(n_inputs, width), nn.ReLU(), nn.Dropout(float(config["dropout"]))]
        n_inputs = width
    return nn.Sequential(*layers, nn.Linear(n_inputs, n_classes))


def inference_state(config: dict[str, Any], data: LoadedData, ctx: TrialContext) -> dict[str, Any]:
    """What predicting needs besides the weights: the scaling fitted on the training rows, the sizes."""
    x = data.split("train")["x"]
    return {"mean": x.mean(axis=0), "std": x.std(axis=0) + 1e-6, "n_classes": len(data.meta["classes"])}


def _tensor(x: np.ndarray, state: dict[str, Any]) -> torch.Tensor:
    return torch.as_tensor((np.asarray(x, np.float32) - state["mean"]) / state["std"], dtype=torch.float32)


def train(config: dict[str, Any], data: LoadedData, ctx: TrialContext) -> None:
    torch.manual_seed(ctx.seed)
    state = inference_state(config, data, ctx)
    train_part, val_part = data.split("train"), data.split("val")
    x, y = _tensor(train_part["x"], state), torch.as_tensor(train_part["y"])
    model = build(config, x.shape[1], state["n_classes"])
    optimizer = torch.optim.Adam(model.parameters(), lr=float(config["lr"]), weight_decay=ctx.fixed["weight_decay"])
    loss_fn = nn.CrossEntropyLoss()

    def save_state(path: Path) -> None:  # what a trial continues from after its worker was lost, or a resume
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, path)

    def load_state(path: Path) -> None:
        saved = torch.load(path, weights_only=True)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])

    reporter = EpochReporter(ctx)
    first = reporter.restore(load_state)  # 1, or the epoch after the checkpoint this trial continues from
    for epoch in range(first, ctx.max_epochs + 1):
        model.train()
        for batch in torch.randperm(len(x)).split(int(config["batch_size"])):
            optimizer.zero_grad()
            loss_fn(model(x[batch]), y[batch]).backward()
            optimizer.step()
        metrics = _scores(model, val_part, state, "val")
        # The reporter saves the weights when this epoch is the best so far, and returns True when the trial
        # must stop (early stopping, the epoch budget, a diverged loss).
        if reporter.epoch(epoch, metrics, lambda path: torch.save(model.state_dict(), path), save_state):
            return


def _scores(model: nn.Module, part: dict[str, np.ndarray], state: dict[str, Any], split: str) -> dict[str, float]:
    model.eval()
    with torch.no_grad():
        logits = model(_tensor(part["x"], state))
        loss = nn.functional.cross_entropy(logits, torch.as_tensor(part["y"])).item()
    return {f"{split}_loss": loss, **_accuracy(logits.argmax(dim=1).numpy(), part["y"], split)}


def _accuracy(predicted: np.ndarray, y: np.ndarray, split: str) -> dict[str, float]:
    return {f"{split}_accuracy": float((predicted == y).mean())}


def _load(config: dict[str, Any], state: dict[str, Any], weights: Path) -> nn.Module:
    model = build(config, len(state["mean"]), state["n_classes"])
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval()


def evaluate(config: dict[str, Any], data: LoadedData, ctx: TrialContext, weights: Path, split: str = "test"):
    """The figures of saved weights on ``split``: what the study reports for the chosen config."""
    state = inference_state(config, data, ctx)
    return _scores(_load(config, state, weights), data.split(split), state, split)


def predict(config: dict[str, Any], state: dict[str, Any], weights: Path, inputs: Any) -> np.ndarray:
    """Class indices for raw input rows (the columns of the CSV but the label), as ``evaluate`` scores them."""
    with torch.no_grad():
        return _load(config, state, weights)(_tensor(inputs, state)).argmax(dim=1).numpy()


def score_predictions(data: LoadedData, rows: np.ndarray, predicted: np.ndarray, split: str = "test"):
    """The figures of class indices predicted for ``rows``, by ``evaluate``'s metric code: the study scores the
    chosen model and the untuned references of space.py this way, on the same resampled test rows."""
    return _accuracy(predicted, data.arrays["y"][rows], split)

"""The tabular MLP of report 002 (Steel Plates Faults), for a binary and a multiclass head.

Architecture as the report: Linear -> BatchNorm -> ReLU -> Dropout per hidden layer, then one Linear to the
logits (1 for binary, one per class). Loss BCEWithLogits with ``pos_weight`` (binary) or CrossEntropy with class
weights (multiclass); Adam; ReduceLROnPlateau on the validation loss.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, precision_score
from sklearn.preprocessing import MinMaxScaler, QuantileTransformer, RobustScaler, StandardScaler
from torch import nn

from trainables import metrics as M
from trainables.loop import TrainingState, train_epoch
from trainables.reporting import EpochReporter, TrialContext

SCALERS = {
    "standard": StandardScaler,
    "minmax": MinMaxScaler,
    "robust": RobustScaler,
    "quantile": lambda: QuantileTransformer(n_quantiles=200, output_distribution="normal", random_state=0),
}


class MLP(nn.Module):
    def __init__(self, n_inputs: int, widths: list[int], dropout: float, n_outputs: int):
        super().__init__()
        layers: list[nn.Module] = []
        previous = n_inputs
        for width in widths:
            layers += [nn.Linear(previous, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout)]
            previous = width
        layers.append(nn.Linear(previous, n_outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def hidden_widths(config: dict[str, Any]) -> list[int]:
    return [int(config[f"width_{i}"]) for i in range(1, int(config["n_layers"]) + 1)]


def _scaled_splits(config: dict[str, Any], data) -> dict[str, np.ndarray]:
    """Fit the chosen scaler on the training split only, then transform every split."""
    splits = {name: data.split(name) for name in ("train", "val", "test")}
    scaling = config["scaling"]
    if scaling != "none":
        scaler = SCALERS[scaling]().fit(splits["train"]["x"])
        for part in splits.values():
            part["x"] = scaler.transform(part["x"]).astype(np.float32)
    return splits


class _Task:
    """Loss and metrics of the binary or the multiclass head."""

    def __init__(self, config: dict[str, Any], data, fixed: dict[str, Any], device: str):
        self.binary = data.meta["task"] == "binary"
        self.n_outputs = 1 if self.binary else len(data.meta["class_names"])
        if self.binary:
            weight = torch.tensor([float(config["pos_weight"])], device=device)
            self.loss = nn.BCEWithLogitsLoss(pos_weight=weight)
        else:
            base = torch.tensor(fixed["class_weights"], dtype=torch.float32, device=device)
            self.loss = nn.CrossEntropyLoss(weight=base ** float(config["class_weight_power"]))

    def target(self, y: np.ndarray, device: str) -> torch.Tensor:
        t = torch.as_tensor(y, device=device)
        return t.float().unsqueeze(1) if self.binary else t.long()

    def predict(self, logits: torch.Tensor) -> np.ndarray:
        if self.binary:
            return (logits.squeeze(1) > 0).long().cpu().numpy()
        return logits.argmax(dim=1).cpu().numpy()

    def scores(self, y: np.ndarray, pred: np.ndarray, prefix: str) -> dict[str, float]:
        if self.binary:
            return {
                f"{prefix}_accuracy": accuracy_score(y, pred),
                f"{prefix}_precision_pos": precision_score(y, pred, pos_label=1, zero_division=0),
                f"{prefix}_precision_neg": precision_score(y, pred, pos_label=0, zero_division=0),
            }
        return {
            f"{prefix}_macro_accuracy": balanced_accuracy_score(y, pred),
            f"{prefix}_macro_precision": precision_score(y, pred, average="macro", zero_division=0),
        }


def _evaluate(model: nn.Module, task: _Task, part: dict[str, np.ndarray], device: str, prefix: str):
    model.eval()
    with torch.no_grad():
        x = torch.as_tensor(part["x"], device=device)
        logits = model(x)
        loss = task.loss(logits, task.target(part["y"], device)).item()
    return {f"{prefix}_loss": loss, **task.scores(part["y"], task.predict(logits), prefix)}


def _build(config: dict[str, Any], data, ctx: TrialContext):
    torch.manual_seed(ctx.seed)
    task = _Task(config, data, ctx.fixed, ctx.device)
    model = MLP(data.meta["n_features"], hidden_widths(config), float(config["dropout"]), task.n_outputs)
    return model.to(ctx.device), task


def train(config: dict[str, Any], data, ctx: TrialContext) -> None:
    """Train one config for up to ``ctx.max_epochs`` epochs, reporting every epoch through ``ctx``."""
    device = ctx.device
    splits = _scaled_splits(config, data)
    model, task = _build(config, data, ctx)
    optimizer = torch.optim.Adam(model.parameters(), lr=float(config["lr"]), weight_decay=float(config["weight_decay"]))
    plateau = None
    if config["lr_schedule"] == "plateau":
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=float(config["plateau_factor"]), patience=int(ctx.fixed["plateau_patience"])
        )
    x_train = torch.as_tensor(splits["train"]["x"], device=device)
    y_train = task.target(splits["train"]["y"], device)
    batch_size = int(config["batch_size"])
    generator = torch.Generator().manual_seed(ctx.seed)
    reporter = EpochReporter(ctx)
    state = TrainingState(model=model, optimizer=optimizer, generator=generator,
                          **({"plateau": plateau} if plateau is not None else {}))  # fmt: skip

    for epoch in range(reporter.restore(state.load), ctx.max_epochs + 1):
        train_loss = train_epoch(model, optimizer, x_train, y_train, batch_size, generator, task.loss, device)
        row = {M.TRAIN_LOSS: train_loss, **_evaluate(model, task, splits["val"], device, "val")}
        if plateau is not None and np.isfinite(row[M.VAL_LOSS]):
            plateau.step(row[M.VAL_LOSS])
        row["lr"] = optimizer.param_groups[0]["lr"]
        if reporter.epoch(epoch, row, lambda path: torch.save(model.state_dict(), path), state.save):
            return


def evaluate(config: dict[str, Any], data, ctx: TrialContext, weights: Path, split: str = "test") -> dict[str, float]:
    """Load a trial's best-epoch weights and score them on ``split`` (``test`` for the held-out figures)."""
    splits = _scaled_splits(config, data)
    model, task = _build(config, data, ctx)
    model.load_state_dict(torch.load(weights, map_location=ctx.device, weights_only=True))
    return _evaluate(model, task, splits[split], ctx.device, split)

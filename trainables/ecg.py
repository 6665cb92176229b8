"""The training loop both heartbeat models of report 001 share (``cnn1d_gru`` and ``cnn2d`` plug their network in).

Per trial: the training split is balanced as the config says (``trainables.balancing``; validation and test keep
the real class mix), class weights are optional where the training set stays imbalanced, Adam or AdamW, and
ReduceLROnPlateau on the validation loss with the searched factor. Each epoch reports the training and
validation loss, accuracy and macro recall (the mean of the per-class recalls, the report's "recallmacro").
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight
from torch import nn

from trainables import metrics as M
from trainables.balancing import balance
from trainables.class_scores import Confusion
from trainables.family import resample_scorer
from trainables.loop import TrainingState, eval_logits, train_epoch
from trainables.reporting import EpochReporter, TrialContext

ModelBuilder = Callable[[dict[str, Any], int, int], nn.Module]
"""``build(config, n_samples, n_classes)`` -> a module mapping beats [batch, n_samples] to class logits."""

OPTIMIZERS = {"Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW}
"""Rows per forward pass when scoring: the real test file (21,892 beats) does not fit one batch of a 2D CNN."""


def prepared_splits(config: dict[str, Any], data, seed: int) -> dict[str, dict[str, np.ndarray]]:
    """The three splits a trial trains and scores on: only ``train`` is resampled, by ``config['balancing']``."""
    splits = {name: data.split(name) for name in ("train", "val", "test")}
    x, y = balance(splits["train"]["x"], splits["train"]["y"], config["balancing"], seed)
    splits["train"] = {"x": x, "y": y}
    return splits


def loss_function(config: dict[str, Any], y_train: np.ndarray, n_classes: int, device: str) -> nn.Module:
    """Cross-entropy, weighted inversely to the training-class frequencies when ``class_weights`` is ``balanced``.

    The parameter only exists while the training set is left imbalanced (balancing ``none``): on a balanced
    set the weights would all be 1.
    """
    weighting = config.get("class_weights", "none")
    if weighting not in ("none", "balanced"):
        raise ValueError(f"class_weights {weighting!r} is not one of none, balanced")
    if weighting == "none":
        return nn.CrossEntropyLoss()
    classes = np.arange(n_classes)
    missing = sorted(set(classes) - set(np.unique(y_train)))
    if missing:
        raise ValueError(f"class_weights 'balanced' needs every class in the training split; missing {missing}")
    weights = compute_class_weight("balanced", classes=classes, y=y_train)
    return nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32, device=device))


def _scores(
    model: nn.Module, loss_fn: nn.Module, part: dict[str, np.ndarray], n_classes: int, device: str, prefix: str
) -> dict[str, float]:
    return _scores_of(eval_logits(model, part["x"], device), loss_fn, part["y"], n_classes, prefix)


def _scores_of(logits: torch.Tensor, loss_fn: nn.Module, y: np.ndarray, n_classes: int, prefix: str):
    with torch.no_grad():
        loss = loss_fn(logits, torch.as_tensor(y, device=logits.device)).item()
    pred = logits.argmax(dim=1).cpu().numpy()
    return {f"{prefix}_loss": loss, **_class_scores(y, pred, n_classes, prefix)}


def _class_scores(y: np.ndarray, pred: np.ndarray, n_classes: int, prefix: str) -> dict[str, float]:
    counts = Confusion(y, pred, labels=range(n_classes))
    return {f"{prefix}_accuracy": counts.accuracy(), f"{prefix}_macro_recall": float(np.mean(counts.recall()))}


def score_predictions(data, rows: np.ndarray, predicted: np.ndarray, split: str = "test") -> dict[str, float]:
    """The figures ``evaluate`` gives but the loss, of class indices predicted for ``rows`` (as ``predict`` returns
    them; trainables.family.ScoringFamily): the same metric code."""
    return _class_scores(data.arrays["y"][rows], predicted, int(data.meta["n_classes"]), split)


def train(build: ModelBuilder, config: dict[str, Any], data, ctx: TrialContext) -> None:
    """Train one config for up to ``ctx.max_epochs`` epochs, reporting every epoch through ``ctx``."""
    device = ctx.device
    n_classes = int(data.meta["n_classes"])
    splits = prepared_splits(config, data, ctx.seed)
    torch.manual_seed(ctx.seed)
    model = build(config, int(data.meta["n_samples"]), n_classes).to(device)
    loss_fn = loss_function(config, splits["train"]["y"], n_classes, device)
    optimizer = OPTIMIZERS[config["optimizer"]](model.parameters(), lr=float(config["lr"]))
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=float(config["plateau_factor"]), patience=int(ctx.fixed["plateau_patience"])
    )
    x_train = torch.as_tensor(splits["train"]["x"])
    y_train = torch.as_tensor(splits["train"]["y"])
    batch_size = int(config["batch_size"])
    generator = torch.Generator().manual_seed(ctx.seed)
    reporter = EpochReporter(ctx)
    state = TrainingState(model=model, optimizer=optimizer, plateau=plateau, generator=generator)

    for epoch in range(reporter.restore(state.load), ctx.max_epochs + 1):
        train_loss = train_epoch(model, optimizer, x_train, y_train, batch_size, generator, loss_fn, device)
        row = {M.TRAIN_LOSS: train_loss, **_scores(model, loss_fn, splits["val"], n_classes, device, "val")}
        if np.isfinite(row[M.VAL_LOSS]):
            plateau.step(row[M.VAL_LOSS])
        row["lr"] = optimizer.param_groups[0]["lr"]
        if reporter.epoch(epoch, row, lambda path: torch.save(model.state_dict(), path), state.save):
            return


def evaluate(
    build: ModelBuilder, config: dict[str, Any], data, ctx: TrialContext, weights: Path, split: str = "test"
) -> dict[str, float]:
    """Load a trial's best-epoch weights and score them on ``split`` (the real class mix: never resampled)."""
    return split_scorer(build, config, data, ctx, weights, split)(None)


def split_scorer(build: ModelBuilder, config: dict[str, Any], data, ctx: TrialContext, weights: Path, split: str):
    """``evaluate``'s scores of ``split`` or of any resample of its rows, the model run once on the split
    (trainables.family.ResamplingFamily): a beat's logits do not depend on the other beats in eval mode."""
    n_classes = int(data.meta["n_classes"])
    model = build(config, int(data.meta["n_samples"]), n_classes).to(ctx.device)
    model.load_state_dict(torch.load(weights, map_location=ctx.device, weights_only=True))
    # class weights exist only with balancing "none", where the training labels are the split's own
    loss_fn = loss_function(config, data.split("train")["y"], n_classes, ctx.device)
    units = data.splits[split]
    logits = eval_logits(model, data.arrays["x"][units], ctx.device)
    return resample_scorer(
        units, logits, lambda out, rows: _scores_of(out, loss_fn, data.arrays["y"][rows], n_classes, split)
    )


def inference_state(data) -> dict[str, Any]:
    """What ``predict`` needs besides the config and the weights: the beat length and the number of classes (the
    beats are fed as they are: nothing is fitted on the training rows)."""
    return {"n_samples": int(data.meta["n_samples"]), "n_classes": int(data.meta["n_classes"])}


def predict(
    build: ModelBuilder, config: dict[str, Any], state: dict[str, Any], weights: Path, inputs: np.ndarray
) -> np.ndarray:
    """Class indices of beats [rows, n_samples] (rows of the data's ``x``), as ``evaluate`` scores them."""
    model = build(config, state["n_samples"], state["n_classes"])
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    x = np.asarray(inputs, dtype=np.float32)
    return eval_logits(model, x, "cpu").argmax(dim=1).numpy()

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
from sklearn.preprocessing import MinMaxScaler, QuantileTransformer, RobustScaler, StandardScaler
from torch import nn

from trainables import metrics as M
from trainables.class_scores import Confusion
from trainables.cv import BATCHED_FOLDS, fold_count, fold_indices, mean_row
from trainables.family import resample_scorer
from trainables.loop import TrainingState, train_epoch
from trainables.mlp_batched import FoldBatch, batchable
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


def fitted_scaler(config: dict[str, Any], x: np.ndarray):
    """The config's feature scaler fitted on ``x`` (a fold's training rows); None without scaling."""
    scaling = config["scaling"]
    return None if scaling == "none" else SCALERS[scaling]().fit(x)


def scaled_rows(data, rows: np.ndarray, scaler) -> dict[str, np.ndarray]:
    """The arrays of ``rows``, their features scaled by ``scaler`` (None: as they are)."""
    part = {key: value[rows] for key, value in data.arrays.items()}
    if scaler is not None:
        part["x"] = scaler.transform(part["x"]).astype(np.float32)
    return part


class Task:
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
        return _class_scores(self.binary, y, pred, prefix)


def _class_scores(binary: bool, y: np.ndarray, pred: np.ndarray, prefix: str) -> dict[str, float]:
    counts = Confusion(y, pred)
    if binary:
        return {
            f"{prefix}_accuracy": counts.accuracy(),
            f"{prefix}_precision_pos": counts.label_precision(1),
            f"{prefix}_precision_neg": counts.label_precision(0),
        }
    return {
        f"{prefix}_macro_accuracy": counts.balanced_accuracy(),
        f"{prefix}_macro_precision": float(np.mean(counts.precision())),
    }


def _evaluate(model: nn.Module, task: Task, part: dict[str, np.ndarray], device: str, prefix: str):
    model.eval()
    with torch.no_grad():
        logits = model(torch.as_tensor(part["x"], device=device))
    return _scores_of(logits, task, part, device, prefix)


def _scores_of(logits: torch.Tensor, task: Task, part: dict[str, np.ndarray], device: str, prefix: str):
    with torch.no_grad():
        loss = task.loss(logits, task.target(part["y"], device)).item()
    return {f"{prefix}_loss": loss, **task.scores(part["y"], task.predict(logits), prefix)}


class Fold:
    """One fold's model, scaler (fitted on the fold's training rows only), optimizer, schedule and shuffling."""

    def __init__(
        self,
        k: int,
        rows: tuple[np.ndarray, np.ndarray],
        config: dict[str, Any],
        data,
        ctx: TrialContext,
        task: Task,
        trains: bool = True,
    ):
        train_rows, val_rows = rows
        self.scaler = fitted_scaler(config, data.arrays["x"][train_rows])
        self.train, self.val = scaled_rows(data, train_rows, self.scaler), scaled_rows(data, val_rows, self.scaler)
        self.task, self.device = task, ctx.device
        torch.manual_seed(ctx.seed + k)  # fold 0 (the single split) is seeded as a trial without folds
        model = MLP(data.meta["n_features"], hidden_widths(config), float(config["dropout"]), task.n_outputs)
        self.model = model.to(ctx.device)
        if trains:
            self._training_parts(k, config, ctx, task)

    def _training_parts(self, k: int, config: dict[str, Any], ctx: TrialContext, task: Task) -> None:
        """Optimizer, schedule, shuffling and the training rows as tensors. Scoring saved weights needs none of
        them, and a process's first Adam imports torch's compiler (~2.5 s here)."""
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=float(config["lr"]), weight_decay=float(config["weight_decay"])
        )
        self.plateau = None
        if config["lr_schedule"] == "plateau":
            self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer,
                mode="min",
                factor=float(config["plateau_factor"]),
                patience=int(ctx.fixed["plateau_patience"]),
            )
        self.generator = torch.Generator().manual_seed(ctx.seed + k)
        self.x = torch.as_tensor(self.train["x"], device=ctx.device)
        self.y = task.target(self.train["y"], ctx.device)

    def parts(self, suffix: str) -> dict[str, Any]:
        """What ``TrainingState`` saves of this fold, its names ending in ``suffix``."""
        named = {"model": self.model, "optimizer": self.optimizer, "generator": self.generator}
        if self.plateau is not None:
            named["plateau"] = self.plateau
        return {f"{name}{suffix}": obj for name, obj in named.items()}

    def epoch(self, batch_size: int) -> dict[str, float]:
        train_loss = train_epoch(
            self.model, self.optimizer, self.x, self.y, batch_size, self.generator, self.task.loss, self.device
        )
        return self.finish_epoch(train_loss)

    def finish_epoch(self, train_loss: float) -> dict[str, float]:
        """The epoch's row once its training is done: validation figures, then the LR schedule's step."""
        row = {M.TRAIN_LOSS: train_loss, **_evaluate(self.model, self.task, self.val, self.device, "val")}
        if self.plateau is not None and np.isfinite(row[M.VAL_LOSS]):
            self.plateau.step(row[M.VAL_LOSS])
        row[M.LR] = self.optimizer.param_groups[0]["lr"]
        return row


def make_folds(
    config: dict[str, Any], data, ctx: TrialContext, k: int | None = None, trains: bool = True
) -> list[Fold]:
    """The trial's ``k`` folds (default: its ``cv_folds``), each a fresh model with its own scaler; ``trains``:
    with what training needs besides (optimizer, schedule, shuffling)."""
    task = Task(config, data, ctx.fixed, ctx.device)
    k = fold_count(ctx.fixed) if k is None else k
    indices = fold_indices(data, k, ctx.seed)
    return [Fold(i, rows, config, data, ctx, task, trains) for i, rows in enumerate(indices)]


def train(config: dict[str, Any], data, ctx: TrialContext) -> None:
    """Train one config for up to ``ctx.max_epochs`` epochs, reporting every epoch through ``ctx``; with
    ``cv_folds`` > 1 the fold models train side by side and the epoch's row is their mean (trainables.cv)."""
    folds = make_folds(config, data, ctx)
    single = len(folds) == 1  # saved as before folds existed, so older checkpoints and exports still load
    batch_size = int(config["batch_size"])
    batched = FoldBatch(folds) if ctx.fixed.get(BATCHED_FOLDS, True) and batchable(folds, batch_size) else None
    reporter = EpochReporter(ctx)
    parts = [fold.parts("" if single else str(k)) for k, fold in enumerate(folds)]
    if batched is not None:  # the stacked optimizer holds the folds' Adam state, in torch.optim.Adam's format
        parts = [{**named, f"optimizer{k}": batched.optimizer(k)} for k, named in enumerate(parts)]
    state = TrainingState(**{name: obj for named in parts for name, obj in named.items()})

    def save(path: Path) -> None:
        states = [f.model.state_dict() for f in folds]
        torch.save(states[0] if single else {"folds": states}, path)

    for epoch in range(reporter.restore(state.load), ctx.max_epochs + 1):
        rows = batched.epoch(batch_size) if batched else [fold.epoch(batch_size) for fold in folds]
        row = mean_row(rows)
        if reporter.epoch(epoch, row, save, state.save):
            return


def evaluate(config: dict[str, Any], data, ctx: TrialContext, weights: Path, split: str = "test") -> dict[str, float]:
    """Load a trial's best-epoch weights and score them on ``split`` (``test`` for the held-out figures); with
    folds, the mean predicted probabilities of the fold models (each with its own scaler). The weights say how
    many folds trained them (the baseline phase trains the report's config on its single split beside a K-fold
    search)."""
    return split_scorer(config, data, ctx, weights, split)(None)


def split_scorer(config: dict[str, Any], data, ctx: TrialContext, weights: Path, split: str = "test"):
    """``evaluate``'s scores of ``split`` or of any resample of its rows, the fold models run once on the split
    (trainables.family.ResamplingFamily): a row's logits do not depend on the other rows in eval mode."""
    saved = torch.load(weights, map_location=ctx.device, weights_only=True)
    states = saved["folds"] if isinstance(saved, dict) and "folds" in saved else [saved]
    folds = make_folds(config, data, ctx, k=len(states), trains=False)
    units = data.splits[split]
    probabilities = []
    for fold, state in zip(folds, states, strict=True):
        fold.model.load_state_dict(state)
        fold.model.eval()
        with torch.no_grad():
            logits = fold.model(torch.as_tensor(scaled_rows(data, units, fold.scaler)["x"], device=ctx.device))
        probabilities.append(torch.sigmoid(logits) if fold.task.binary else logits.softmax(dim=1))
    mean = torch.stack(probabilities).mean(dim=0).clamp(1e-7, 1 - 1e-7)
    logits = torch.log(mean / (1 - mean)) if folds[0].task.binary else torch.log(mean)

    def score_of(outputs: torch.Tensor, rows: np.ndarray) -> dict[str, float]:
        part = {key: value[rows] for key, value in data.arrays.items()}
        return _scores_of(outputs, folds[0].task, part, ctx.device, split)

    return resample_scorer(units, logits, score_of)


def score_predictions(data, rows: np.ndarray, predicted: np.ndarray, split: str = "test") -> dict[str, float]:
    """The figures ``evaluate`` gives but the loss, of class indices predicted for ``rows`` (as ``predict`` returns
    them; trainables.family.ScoringFamily): the same metric code."""
    return _class_scores(data.meta["task"] == "binary", data.arrays["y"][rows], predicted, split)


def inference_state(config: dict[str, Any], data, ctx: TrialContext) -> dict[str, Any]:
    """What ``predict`` needs besides the weights (trainables.family.ServingFamily): each fold's feature scaler,
    fitted on the fold's training rows as in training, and the network's input and output sizes."""
    binary = data.meta["task"] == "binary"
    folds = fold_indices(data, fold_count(ctx.fixed), ctx.seed)
    return {
        "scalers": [fitted_scaler(config, data.arrays["x"][train_rows]) for train_rows, _ in folds],
        "n_features": int(data.meta["n_features"]),
        "n_outputs": 1 if binary else len(data.meta["class_names"]),
        "binary": binary,
    }


def predict(config: dict[str, Any], state: dict[str, Any], weights: Path, inputs: np.ndarray) -> np.ndarray:
    """Class indices of raw feature rows (0/1 for the binary head): the fold models' mean probability, as
    ``evaluate`` scores it."""
    saved = torch.load(weights, map_location="cpu", weights_only=True)
    states = saved["folds"] if isinstance(saved, dict) and "folds" in saved else [saved]
    probabilities = []
    for scaler, weights_of_fold in zip(state["scalers"], states, strict=True):
        model = MLP(state["n_features"], hidden_widths(config), float(config["dropout"]), state["n_outputs"])
        model.load_state_dict(weights_of_fold)
        model.eval()
        x = inputs if scaler is None else scaler.transform(inputs)
        with torch.no_grad():
            logits = model(torch.as_tensor(np.asarray(x, dtype=np.float32)))
        probabilities.append(torch.sigmoid(logits) if state["binary"] else logits.softmax(dim=1))
    mean = torch.stack(probabilities).mean(dim=0)
    return (mean[:, 0] > 0.5).long().numpy() if state["binary"] else mean.argmax(dim=1).numpy()

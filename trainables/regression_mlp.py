"""The house-price MLP of report 004: fully connected layers, MSE or a Gaussian likelihood (report section 3.3).

Features are standardised on the training split (the report "normalizes the data"). The target is scaled
too, fitted on the training split: ``standard`` is (price - mean) / sd, ``log`` the same on log(price). Both
losses work in that scaled space; every reported error is converted back to dollars, so the two losses and
the two scalings are compared on the same scale.

With ``loss = gaussian_nll`` the network has two outputs, the mean and the log variance of the (scaled)
price, trained with ``torch.nn.GaussianNLLLoss`` (variance = exp(log variance)). With ``mse`` it predicts the
mean only; for its NLL the variance is the training split's mean squared residual, the maximum-likelihood
variance of a constant-variance Gaussian. ``val_nll`` is the NLL of the price in dollars (the scaling's
Jacobian added), comparable across losses and scalings. A prediction in dollars maps the predicted mean back
(for ``log``, exp of the mean: the median price).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.preprocessing import StandardScaler
from torch import nn

from trainables import metrics as M
from trainables.family import unit_positions
from trainables.loop import TrainingState
from trainables.reporting import EpochReporter, TrialContext

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
OPTIMIZERS = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop, "sgd": torch.optim.SGD}
LOSSES = ("mse", "gaussian_nll")
TARGET_SCALINGS = ("standard", "log")


class RegressionMLP(nn.Module):
    """``n_hidden`` x (Linear -> activation), then Linear to the mean (and the log variance)."""

    def __init__(self, n_inputs: int, n_hidden: int, width: int, activation: str, n_outputs: int):
        super().__init__()
        layers: list[nn.Module] = []
        previous = n_inputs
        for _ in range(n_hidden):
            layers += [nn.Linear(previous, width), ACTIVATIONS[activation]()]
            previous = width
        layers.append(nn.Linear(previous, n_outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def gaussian_nll(mean: torch.Tensor, log_var: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample mean of 0.5 * (log(2 pi) + log var + (target - mean)^2 / var), var = exp(log_var)."""
    return nn.GaussianNLLLoss(full=True, reduction="mean")(mean, target, log_var.exp())


class TargetScaler:
    """Price <-> scaled target, fitted on the training prices; knows the log-Jacobian for NLLs in dollars."""

    def __init__(self, kind: str, prices: np.ndarray):
        if kind not in TARGET_SCALINGS:
            raise ValueError(f"target_scaling {kind!r} is not one of {TARGET_SCALINGS}")
        self.kind = kind
        base = np.log(prices) if kind == "log" else prices
        self.mean, self.sd = float(base.mean()), float(base.std())

    def forward(self, prices: np.ndarray) -> np.ndarray:
        base = np.log(prices) if self.kind == "log" else prices
        return ((base - self.mean) / self.sd).astype(np.float32)

    def inverse(self, scaled: np.ndarray) -> np.ndarray:
        base = scaled.astype(np.float64) * self.sd + self.mean
        return np.exp(base) if self.kind == "log" else base

    def log_jacobian(self, prices: np.ndarray) -> np.ndarray | float:
        """log |d scaled / d price|: NLL(price) = NLL(scaled) + this."""
        return -math.log(self.sd) - (np.log(prices) if self.kind == "log" else 0.0)


class _Setup:
    """Scaled splits, model and loss of one config (rebuilt identically by ``evaluate``)."""

    def __init__(self, config: dict[str, Any], data, ctx: TrialContext):
        if config["loss"] not in LOSSES:
            raise ValueError(f"loss {config['loss']!r} is not one of {LOSSES}")
        self.gaussian = config["loss"] == "gaussian_nll"
        train = data.split("train")
        x_scaler = StandardScaler().fit(train["x"])
        self.target = TargetScaler(config["target_scaling"], train["y"])
        self.parts = {}
        for name in ("train", "val", "test"):
            part = data.split(name)
            self.parts[name] = (
                torch.as_tensor(x_scaler.transform(part["x"]).astype(np.float32), device=ctx.device),
                torch.as_tensor(self.target.forward(part["y"]), device=ctx.device),
                part["y"],
            )
        torch.manual_seed(ctx.seed)
        self.model = RegressionMLP(
            train["x"].shape[1],
            int(config["n_hidden"]),
            int(config["width"]),
            config["activation"],
            2 if self.gaussian else 1,
        ).to(ctx.device)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.gaussian:
            return gaussian_nll(output[:, 0], output[:, 1], target)
        return nn.functional.mse_loss(output[:, 0], target)

    def _outputs(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        x, target, _ = self.parts[name]
        self.model.eval()
        with torch.no_grad():
            out = self.model(x)
        if self.gaussian:
            return out[:, 0], out[:, 1]
        train_x, train_target, _ = self.parts["train"]
        with torch.no_grad():  # constant variance: the maximum-likelihood one on the training split
            residual = ((self.model(train_x)[:, 0] - train_target) ** 2).mean()
        return out[:, 0], torch.log(residual).expand_as(out[:, 0])

    def scores(self, name: str, prefix: str) -> dict[str, float]:
        """The loss in scaled units, errors in dollars, and the NLL of the price in dollars."""
        return self.scorer(name, prefix)(None)

    def scorer(self, name: str, prefix: str):
        """``score(at)``: ``scores`` of the rows at positions ``at`` of split ``name`` (repeats allowed; None: all
        of them), the model run on the split once."""
        _, all_targets, all_prices = self.parts[name]
        all_means, all_log_vars = self._outputs(name)

        def score(at: np.ndarray | None = None) -> dict[str, float]:
            mean, log_var, target, prices = all_means, all_log_vars, all_targets, all_prices
            if at is not None:
                picked = torch.as_tensor(at, device=mean.device)
                mean, log_var, target, prices = mean[picked], log_var[picked], target[picked], prices[at]
            with torch.no_grad():
                loss = self.loss(torch.stack([mean, log_var], dim=1), target).item()
                nll_scaled = nn.GaussianNLLLoss(full=True, reduction="none")(mean, target, log_var.exp())
            nll = nll_scaled.cpu().numpy().astype(np.float64) - self.target.log_jacobian(prices)
            errors = _error_scores(self.target.inverse(mean.cpu().numpy()), prices, prefix)
            return {f"{prefix}_loss": loss, **errors, f"{prefix}_nll": float(np.mean(nll))}

        return score


def _error_scores(predicted: np.ndarray, prices: np.ndarray, prefix: str) -> dict[str, float]:
    """Errors in dollars of predicted prices."""
    error = predicted - prices
    mse = float(np.mean(error**2))
    return {f"{prefix}_mse": mse, f"{prefix}_rmse": math.sqrt(mse), f"{prefix}_mae": float(np.mean(np.abs(error)))}


def score_predictions(data, rows: np.ndarray, predicted: np.ndarray, split: str = "test") -> dict[str, float]:
    """The error figures ``evaluate`` gives (not the loss nor the NLL, which need the predicted variance), of prices
    predicted for ``rows`` (as ``predict`` returns them; trainables.family.ScoringFamily): the same metric code."""
    return _error_scores(np.asarray(predicted, dtype=np.float64), data.arrays["y"][rows], split)


def train(config: dict[str, Any], data, ctx: TrialContext) -> None:
    """Train one config for up to ``ctx.max_epochs`` epochs, reporting every epoch through ``ctx``."""
    setup = _Setup(config, data, ctx)
    optimizer = OPTIMIZERS[config["optimizer"]](setup.model.parameters(), lr=float(config["lr"]))
    x, target, _ = setup.parts["train"]
    batch_size = int(config["batch_size"])
    generator = torch.Generator().manual_seed(ctx.seed)
    reporter = EpochReporter(ctx)
    state = TrainingState(model=setup.model, optimizer=optimizer, generator=generator)
    for epoch in range(reporter.restore(state.load), ctx.max_epochs + 1):
        setup.model.train()
        order = torch.randperm(len(x), generator=generator).to(ctx.device)
        total = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = setup.loss(setup.model(x[idx]), target[idx])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        row = {M.TRAIN_LOSS: total / len(order), **setup.scores("val", "val")}
        if reporter.epoch(epoch, row, lambda path: torch.save(setup.model.state_dict(), path), state.save):
            return


def evaluate(config: dict[str, Any], data, ctx: TrialContext, weights: Path, split: str = "test") -> dict[str, float]:
    """Load a trial's best-epoch weights and score them on ``split`` (``test`` for the held-out figures)."""
    return split_scorer(config, data, ctx, weights, split)(None)


def split_scorer(config: dict[str, Any], data, ctx: TrialContext, weights: Path, split: str = "test"):
    """``evaluate``'s scores of ``split`` or of any resample of its rows, the model run once on the split
    (trainables.family.ResamplingFamily): a house's prediction does not depend on the other houses in eval mode."""
    setup = _Setup(config, data, ctx)
    setup.model.load_state_dict(torch.load(weights, map_location=ctx.device, weights_only=True))
    score, units = setup.scorer(split, split), data.splits[split]
    return lambda rows=None: score(None if rows is None else unit_positions(units, rows))


def inference_state(config: dict[str, Any], data, ctx: TrialContext) -> dict[str, Any]:
    """What ``predict`` needs besides the weights (trainables.family.ServingFamily): the feature and target scalers
    fitted on the training split, as ``evaluate`` fits them."""
    train = data.split("train")
    return {"x_scaler": StandardScaler().fit(train["x"]), "target": TargetScaler(config["target_scaling"], train["y"]),
            "n_inputs": int(train["x"].shape[1])}  # fmt: skip


def predict(config: dict[str, Any], state: dict[str, Any], weights: Path, inputs: np.ndarray) -> np.ndarray:
    """The price in dollars of each row of raw features: the predicted mean mapped back (for ``log`` scaling, the
    median price), the figure ``evaluate``'s errors are computed from."""
    model = RegressionMLP(
        state["n_inputs"],
        int(config["n_hidden"]),
        int(config["width"]),
        config["activation"],
        2 if config["loss"] == "gaussian_nll" else 1,
    )
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.eval()
    x = torch.as_tensor(state["x_scaler"].transform(inputs).astype(np.float32))
    with torch.no_grad():
        mean = model(x)[:, 0]
    return state["target"].inverse(mean.numpy())

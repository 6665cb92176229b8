"""Report 004's small CNN for 16 x 16 handwritten digits (space ``usps_cnn``).

``n_conv`` conv layers (3x3, all ``width`` channels) each followed by batch norm and the activation, then one
2x2 max-pool, dropout and a fully connected layer to the 10 classes. The convolutions are unpadded (torch's
default; the report names none): 16x16 shrinks by 2 per layer. With padding, the report's setting (Adam at
0.01, MSE on the softmax) drives the 10 outputs of the wider linear layer into saturation within a few dozen
steps, where the softmax's gradient vanishes and the model stays at chance. The loss is cross-entropy on
the logits, or (the report's best) the mean squared error between the softmax output and the one-hot label.
SGD, Adam or RMSprop (torch defaults besides the learning rate), and the report's step schedule: the learning
rate divided by 10 every 10 epochs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from trainables import metrics as M
from trainables.loop import TrainingState, train_epoch
from trainables.reporting import EpochReporter, TrialContext

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop}
LOSSES = ("cross_entropy", "mse")
EVAL_BATCH = 1024


class DigitsCNN(nn.Module):
    def __init__(self, n_conv: int, width: int, activation: str, dropout: float, side: int, n_classes: int):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation {activation!r} is not one of {', '.join(ACTIVATIONS)}")
        layers: list[nn.Module] = []
        for i in range(n_conv):
            conv = nn.Conv2d(1 if i == 0 else width, width, 3)
            layers += [conv, nn.BatchNorm2d(width), ACTIVATIONS[activation]()]
        pooled = (side - 2 * n_conv) // 2
        layers += [nn.MaxPool2d(2), nn.Dropout(dropout), nn.Flatten(), nn.Linear(width * pooled**2, n_classes)]
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images.unsqueeze(1))


def loss_value(kind: str, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on the logits, or MSE between the softmax output and the one-hot target."""
    if kind == "cross_entropy":
        return F.cross_entropy(logits, target)
    if kind == "mse":
        return F.mse_loss(logits.softmax(dim=1), F.one_hot(target, logits.shape[1]).to(logits.dtype))
    raise ValueError(f"loss {kind!r} is not one of {', '.join(LOSSES)}")


def _build(config: dict[str, Any], data, ctx: TrialContext) -> DigitsCNN:
    torch.manual_seed(ctx.seed)
    model = DigitsCNN(int(config["n_conv"]), int(config["width"]), config["activation"], float(config["dropout"]),
                      int(data.meta["side"]), int(data.meta["n_classes"]))  # fmt: skip
    return model.to(ctx.device)


def _scores(model: nn.Module, loss: str, part: dict[str, np.ndarray], device: str, prefix: str) -> dict[str, float]:
    model.eval()
    with torch.no_grad():
        logits = torch.cat([
            model(torch.as_tensor(part["x"][start : start + EVAL_BATCH], device=device))
            for start in range(0, len(part["y"]), EVAL_BATCH)
        ])  # fmt: skip
        target = torch.as_tensor(part["y"], device=device)
        value = loss_value(loss, logits, target).item()
        accuracy = (logits.argmax(dim=1) == target).float().mean().item()
    return {f"{prefix}_loss": value, f"{prefix}_accuracy": accuracy}


def train(config: dict[str, Any], data, ctx: TrialContext) -> None:
    """Train one config for up to ``ctx.max_epochs`` epochs, reporting every epoch through ``ctx``."""
    # A saturated softmax yields subnormal floats, which make CPU arithmetic tens of times slower; flush them to 0.
    torch.set_flush_denormal(True)
    device = ctx.device
    loss = config["loss"]
    if loss not in LOSSES:
        raise ValueError(f"loss {loss!r} is not one of {', '.join(LOSSES)}")
    model = _build(config, data, ctx)
    optimizer = OPTIMIZERS[config["optimizer"]](model.parameters(), lr=float(config["lr"]))
    schedule = torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=int(ctx.fixed["lr_step_epochs"]), gamma=float(ctx.fixed["lr_gamma"])
    )
    train_part, val_part = data.split("train"), data.split("val")
    x_train, y_train = torch.as_tensor(train_part["x"]), torch.as_tensor(train_part["y"])
    batch_size = int(config["batch_size"])
    generator = torch.Generator().manual_seed(ctx.seed)
    reporter = EpochReporter(ctx)
    state = TrainingState(model=model, optimizer=optimizer, schedule=schedule, generator=generator)

    for epoch in range(reporter.restore(state.load), ctx.max_epochs + 1):
        train_loss = train_epoch(model, optimizer, x_train, y_train, batch_size, generator,
                                 lambda out, y: loss_value(loss, out, y), device)  # fmt: skip
        row = {M.TRAIN_LOSS: train_loss, **_scores(model, loss, val_part, device, "val")}
        row["lr"] = optimizer.param_groups[0]["lr"]
        schedule.step()
        if reporter.epoch(epoch, row, lambda path: torch.save(model.state_dict(), path), state.save):
            return


def evaluate(config: dict[str, Any], data, ctx: TrialContext, weights: Path, split: str = "test") -> dict[str, float]:
    """Load a trial's best-epoch weights and score them on ``split`` (``test`` for the held-out figures)."""
    model = _build(config, data, ctx)
    model.load_state_dict(torch.load(weights, map_location=ctx.device, weights_only=True))
    return _scores(model, config["loss"], data.split(split), ctx.device, split)

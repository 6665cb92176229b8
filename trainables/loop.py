"""One epoch of mini-batch training: the loop every model family shares, and the chunked forward pass that scores.

Shuffled with the trial's seeded generator, batches of one skipped (BatchNorm cannot train on them), the loss
averaged over the samples seen. What differs between families (the loss, a per-step LR schedule, mixed precision)
comes in as arguments. ``TrainingState`` saves and loads what a trial needs to continue from a checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn

EVAL_BATCH = 1024
"""Rows per forward pass when scoring: a whole test split at once can outgrow a small GPU's memory."""


def eval_logits(model: nn.Module, x: Any, device: str, batch: int = EVAL_BATCH) -> torch.Tensor:
    """``model``'s outputs for the rows of ``x`` in eval mode, without gradients, ``batch`` rows at a time."""
    model.eval()
    with torch.no_grad():
        return torch.cat([model(torch.as_tensor(x[i : i + batch], device=device)) for i in range(0, len(x), batch)])


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    device: str,
    after_step: Callable[[], None] | None = None,
    autocast: Callable[[], AbstractContextManager] = nullcontext,
) -> float:
    """Train ``model`` one epoch over (x, y) in shuffled batches; returns the mean training loss."""
    model.train()
    order = torch.randperm(len(x), generator=generator)
    total, seen = 0.0, 0
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        if len(idx) < 2:
            continue
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            output = model(x[idx].to(device, non_blocking=True))
        loss = loss_fn(output, y[idx].to(device, non_blocking=True))
        loss.backward()
        optimizer.step()
        if after_step is not None:
            after_step()
        total += loss.item() * len(idx)
        seen += len(idx)
    return total / max(seen, 1)


class TrainingState:
    """What a trial resumes from: the ``state_dict`` of named modules, optimizers and LR schedules, the state of
    named ``torch.Generator``s, extra tensors or plain values, and torch's global random state (dropout), so that
    a trial continued from a checkpoint trains exactly as it would have without the interruption (on a CPU).

    ``save``/``load`` are what ``EpochReporter.epoch(..., save_state=)`` and ``EpochReporter.restore`` take."""

    def __init__(self, **objects: Any):
        self.objects = objects

    def save(self, path: Path, **extra: Any) -> None:
        state = {name: _state_of(obj) for name, obj in self.objects.items()}
        rng = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        torch.save({"objects": state, "rng": rng, "extra": extra}, path)

    def load(self, path: Path) -> dict[str, Any]:
        """Load the objects' states in place; returns the ``extra`` values saved with them."""
        return self.apply(self.read(path))

    @staticmethod
    def read(path: Path) -> dict[str, Any]:
        """A saved state, to ``apply`` once the objects exist (a family that builds them later)."""
        return torch.load(path, map_location="cpu", weights_only=True)

    def apply(self, saved: dict[str, Any]) -> dict[str, Any]:
        missing = sorted(set(self.objects) - set(saved["objects"]))
        if missing:
            raise ValueError(f"the saved training state holds nothing for {', '.join(missing)}")
        for name, obj in self.objects.items():
            if isinstance(obj, torch.Generator):
                obj.set_state(saved["objects"][name])
            else:
                obj.load_state_dict(saved["objects"][name])
        torch.set_rng_state(saved["rng"]["cpu"])
        if "cuda" in saved["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(saved["rng"]["cuda"])
        return saved["extra"]


def _state_of(obj: Any) -> Any:
    return obj.get_state() if isinstance(obj, torch.Generator) else obj.state_dict()

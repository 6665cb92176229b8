"""One epoch of mini-batch training: the loop every model family shares.

Shuffled with the trial's seeded generator, batches of one skipped (BatchNorm cannot train on them), the loss
averaged over the samples seen. What differs between families (the loss, a per-step LR schedule, mixed precision)
comes in as arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn


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

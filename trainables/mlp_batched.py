"""The K fold models of a cross-validated MLP trial trained as one computation (``trainables.stacked``).

Per fold everything is as when the folds train one after the other (``_Fold.epoch``): its own shuffling
generator, batches, skipped batch of one, optimizer state, LR schedule, BatchNorm statistics and validation row.
The folds' batches of one step are stacked ``[K, batch, ...]``; a fold with fewer rows (folds differ by a row or
so) has padding rows in its last batches, masked out of its BatchNorm statistics and its loss, and a fold whose
batches have run out (or whose last batch is a single row) is left out of that step's update.

Dropout draws its masks from torch's global generator, as ``nn.Dropout`` does, and in the same order as the folds
trained one after the other (all of fold 0's epoch, then fold 1's, ...): they are drawn at the start of the epoch,
so on a CPU every fold sees exactly the masks it saw before. The arithmetic of a step differs from the sequential
one only in rounding (batched matmuls, BatchNorm statistics summed in another order): see tests/test_mlp_batched.py.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trainables.stacked import FoldOptimizer, StackedAdam, StackedParameters, linear_of_one, stacked_linear

MASK_BYTES_LIMIT = 256 * 2**20
"""An epoch's dropout masks for all folds above this size: the folds train one after the other instead."""


def batchable(folds: list[Any], batch_size: int) -> bool:
    """True when these folds can train as one computation: more than one, and an epoch's masks fit the limit."""
    if len(folds) < 2:
        return False
    widths = sum(m.num_features for m in folds[0].model.modules() if isinstance(m, nn.BatchNorm1d))
    rows = max(len(fold.x) for fold in folds)
    return len(folds) * rows * widths * 4 <= MASK_BYTES_LIMIT and batch_size >= 1


class FoldBatch:
    """Trains ``folds`` (``trainables.mlp.Fold``) side by side; ``epoch`` returns each fold's epoch row."""

    def __init__(self, folds: list[Any]):
        self.folds = folds
        self.stack = StackedParameters([fold.model for fold in folds])
        self.adam = StackedAdam(self.stack, [fold.optimizer for fold in folds])
        net = folds[0].model.net
        self.norms = [m for m in net if isinstance(m, nn.BatchNorm1d)]
        self.norm_names = [str(i) for i, m in enumerate(net) if isinstance(m, nn.BatchNorm1d)]
        self.dropout = next(m.p for m in net if isinstance(m, nn.Dropout)) if self.norms else 0.0
        self.loss = folds[0].task.loss
        self.momentum, self.eps = self.norms[0].momentum, self.norms[0].eps

    def optimizer(self, k: int) -> FoldOptimizer:
        """What a training state saves as fold ``k``'s optimizer."""
        return FoldOptimizer(self.adam, k)

    def epoch(self, batch_size: int) -> list[dict[str, float]]:
        x, y, counts = self._shuffled()
        masks = self._dropout_masks(counts, batch_size, x.shape[1])
        totals, seen = [0.0] * len(self.folds), [0] * len(self.folds)
        for start in range(0, x.shape[1], batch_size):
            sizes = [min(max(n - start, 0), batch_size) for n in counts]
            active = [k for k, size in enumerate(sizes) if size >= 2]  # a batch of one is skipped, as in train_epoch
            if not active:
                continue
            end = start + max(sizes)
            dropped = [mask[:, start:end] for mask in masks]  # padding rows of a short fold: never used
            losses = self._step(x[:, start:end], y[:, start:end], sizes, active, dropped)
            for k, loss in zip(active, losses.tolist(), strict=True):
                totals[k] += loss * sizes[k]
                seen[k] += sizes[k]
        return [fold.finish_epoch(total / max(n, 1)) for fold, total, n in zip(self.folds, totals, seen, strict=True)]

    def _shuffled(self) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """Each fold's training rows in its epoch's order, padded to the longest fold: ``[K, rows, ...]``."""
        counts = [len(fold.x) for fold in self.folds]
        longest = max(counts)
        x = self.folds[0].x.new_zeros((len(self.folds), longest, *self.folds[0].x.shape[1:]))
        y = self.folds[0].y.new_zeros((len(self.folds), longest, *self.folds[0].y.shape[1:]))
        for k, fold in enumerate(self.folds):
            order = torch.randperm(counts[k], generator=fold.generator).to(fold.x.device)
            x[k, : counts[k]], y[k, : counts[k]] = fold.x[order], fold.y[order]
        return x, y, counts

    def _dropout_masks(self, counts: list[int], batch_size: int, longest: int) -> list[torch.Tensor]:
        """Per hidden layer ``[K, rows, width]``: the scaled dropout masks of the epoch, drawn fold by fold, batch by
        batch, layer by layer as ``nn.Dropout`` draws them when the folds train one after the other."""
        if not self.dropout or not self.norms:
            return []
        p, device = self.dropout, self.folds[0].x.device
        masks = [torch.zeros(len(counts), longest, n.num_features, device=device) for n in self.norms]
        for k, n in enumerate(counts):
            for start in range(0, n, batch_size):
                size = min(n - start, batch_size)
                if size < 2:
                    continue
                for mask in masks:
                    mask[k, start : start + size] = torch.empty(size, mask.shape[2], device=device).bernoulli_(1 - p)
        return [mask.div_(1 - p) for mask in masks]

    def _step(self, x, y, sizes, active, dropped) -> torch.Tensor:
        """One optimizer step of the active folds; returns their losses. A step whose folds all have a full batch
        runs the K folds as one computation; the others (an epoch's last step or two) fold by fold."""
        if len(set(sizes)) == 1:
            logits = self._forward_stacked(x, dropped)
            losses = torch.stack([self.loss(logits[k], y[k]) for k in active])
        else:
            losses = torch.stack([self._loss_of_fold(k, x[k, : sizes[k]], y[k, : sizes[k]], dropped) for k in active])
        self.stack.backward(losses.sum())  # each fold's loss gets gradient 1: its gradients are its own
        self.adam.step(active)
        return losses.detach()

    def _forward_stacked(self, h: torch.Tensor, dropped: list[torch.Tensor]) -> torch.Tensor:
        """The K folds' logits of a ``[K, batch, features]`` batch. BatchNorm runs as one layer of K x width
        channels over the ``[batch, K x width]`` activations: per channel the same computation as each fold's own
        layer, with each fold's running statistics updated in place."""
        k, rows = h.shape[0], h.shape[1]
        weights = iter(self.stack.tensors())  # per hidden layer: Linear weight, bias, BatchNorm weight, bias
        for layer, name in enumerate(self.norm_names):
            weight, bias = next(weights), next(weights)
            h = stacked_linear(h, weight, bias)
            gamma, beta = next(weights), next(weights)
            flat = h.transpose(0, 1).reshape(rows, -1)
            stats = self._running(name)
            flat = F.batch_norm(
                flat,
                stats[0].view(-1),
                stats[1].view(-1),
                gamma.reshape(-1),
                beta.reshape(-1),
                True,
                self.momentum,
                self.eps,
            )
            stats[2].add_(1)
            h = F.relu(flat.view(rows, k, -1).transpose(0, 1))
            if dropped:
                h = h * dropped[layer][:, :rows]
        weight, bias = next(weights), next(weights)
        return stacked_linear(h, weight, bias)

    def _loss_of_fold(self, k: int, h: torch.Tensor, y: torch.Tensor, dropped: list[torch.Tensor]) -> torch.Tensor:
        """Fold ``k``'s loss on its own batch, computed as its own model computes it."""
        weights = iter(param[k] for param in self.stack.tensors())
        for layer, name in enumerate(self.norm_names):
            h = linear_of_one(h, next(weights), next(weights))
            running_mean, running_var, batches = (stat[k] for stat in self._running(name))
            h = F.batch_norm(h, running_mean, running_var, next(weights), next(weights), True, self.momentum, self.eps)
            batches.add_(1)
            h = F.relu(h)
            if dropped:
                h = h * dropped[layer][k, : len(h)]
        return self.loss(linear_of_one(h, next(weights), next(weights)), y)

    def _running(self, name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A BatchNorm layer's stacked running mean, variance (``[K, width]``) and batch count (``[K]``)."""
        return tuple(
            self.stack.buffers[f"net.{name}.{stat}"] for stat in ("running_mean", "running_var", "num_batches_tracked")
        )


__all__ = ["FoldBatch", "batchable"]

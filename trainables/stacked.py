"""K models of one architecture trained as one computation: their parameters in one ``[K, N]`` tensor, one Adam.

Small models (the steel MLP: ~55k weights, batches of 16-64 rows) spend most of a step in per-operation overhead,
not arithmetic: K fold models trained one after the other pay it K times, and ``torch.optim.Adam`` pays it once
per parameter tensor. Stacked, a step is one forward/backward over ``[K, batch, ...]`` tensors and one Adam update
of one flat tensor, whatever K and the number of layers.

Each fold's own ``nn.Module`` stays the model of record: its parameters and buffers become views into the stacked
tensors, so its ``state_dict`` (checkpoints, ``evaluate``, ``predict``) and ``load_state_dict`` (resuming) work as
before. ``StackedAdam`` is ``torch.optim.Adam``'s update, element by element the same arithmetic, with a learning
rate and a step count per model (each fold's LR schedule acts on its own ``torch.optim.Adam``, whose
``param_groups`` this reads), and ``FoldOptimizer`` saves and loads one model's share in ``torch.optim.Adam``'s
``state_dict`` format, so training states written by either way of training load in the other.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class StackedParameters:
    """The parameters of ``modules`` (one architecture) in one ``[K, N]`` tensor ``flat`` with its gradient in
    one ``[K, N]`` tensor ``grad``, their buffers stacked ``[K, ...]`` per buffer; the modules' own tensors become
    views of them. ``tensors()`` are the leaves a forward pass uses, views of ``flat`` (slicing one differentiable
    flat tensor instead would cost a full-size zero tensor per parameter in every backward pass)."""

    def __init__(self, modules: list[nn.Module]):
        self.k = len(modules)
        first = list(modules[0].parameters())
        self.shapes = [p.shape for p in first]
        sizes = [p.numel() for p in first]
        self.bounds = [(sum(sizes[:i]), sum(sizes[: i + 1])) for i in range(len(sizes))]
        self.flat = torch.stack([torch.cat([p.detach().reshape(-1) for p in m.parameters()]) for m in modules])
        self.grad = torch.zeros_like(self.flat)
        self.leaves = [piece.requires_grad_(True) for piece in self._columns(self.flat)]
        for k, module in enumerate(modules):
            for p, piece in zip(module.parameters(), self.pieces(self.flat[k]), strict=True):
                p.data = piece
        self.buffers: dict[str, torch.Tensor] = {}
        for name, _ in modules[0].named_buffers():
            self.buffers[name] = torch.stack([m.get_buffer(name).detach() for m in modules])
            owner, _, attr = name.rpartition(".")
            for k, module in enumerate(modules):
                module.get_submodule(owner)._buffers[attr] = self.buffers[name][k]

    def pieces(self, row: torch.Tensor) -> list[torch.Tensor]:
        """One model's row of a stacked tensor, as views shaped like each of its parameters."""
        return [row[a:b].view(shape) for (a, b), shape in zip(self.bounds, self.shapes, strict=True)]

    def _columns(self, stacked: torch.Tensor) -> list[torch.Tensor]:
        return [stacked[:, a:b].view(self.k, *shape) for (a, b), shape in zip(self.bounds, self.shapes, strict=True)]

    def tensors(self) -> list[torch.Tensor]:
        """The stacked parameters, ``[K, *shape]`` each, in ``module.parameters()`` order."""
        return self.leaves

    def backward(self, loss: torch.Tensor) -> None:
        """``grad`` becomes the gradient of ``loss`` (in one copy, not one accumulation per parameter)."""
        grads = torch.autograd.grad(loss, self.leaves)
        torch.cat([g.reshape(self.k, -1) for g in grads], dim=1, out=self.grad)


class _StackedLinear(torch.autograd.Function):
    """K linear layers at once, ``[K, rows, in] -> [K, rows, out]``, with each model's forward and backward the same
    arithmetic as its own ``nn.Linear`` on a CPU: autograd's own ``baddbmm`` backward multiplies the transposed
    operands the other way round from ``addmm``'s (which takes a transposed weight into account), and its sums
    then round differently."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(h, weight)
        return torch.baddbmm(bias[:, None, :], h, weight.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        h, weight = ctx.saved_tensors
        return grad.bmm(weight), grad.transpose(1, 2).bmm(h), grad.sum(dim=1)


def stacked_linear(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``nn.Linear`` of K models over their ``[K, rows, in]`` inputs (weights ``[K, out, in]``, biases ``[K, out]``).
    A layer with one output runs model by model (``linear_of_one``)."""
    if weight.shape[1] == 1:
        return torch.stack([linear_of_one(x, w, b) for x, w, b in zip(h, weight, bias, strict=True)])
    return _StackedLinear.apply(h, weight, bias)


def linear_of_one(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``nn.Linear`` of one model whose weights are slices of stacked tensors. With one output ``nn.Linear`` takes
    a matrix-vector path whose sums round by where their operands lie in memory: the operands are copied to memory
    of their own, as a model's own parameters are."""
    if weight.shape[0] == 1:
        h, weight, bias = h.clone(), weight.clone(), bias.clone()
    return F.linear(h, weight, bias)


class StackedAdam:
    """``torch.optim.Adam``'s update (L2 ``weight_decay``, no amsgrad) of every model's share of ``stack.flat``,
    with each model's learning rate read from its own optimizer's ``param_groups`` (where its LR schedule writes)."""

    def __init__(self, stack: StackedParameters, optimizers: list[torch.optim.Optimizer]):
        group = optimizers[0].param_groups[0]
        if group["amsgrad"] or group["maximize"] or group.get("decoupled_weight_decay"):
            raise ValueError("StackedAdam implements plain Adam only (no amsgrad, maximize or decoupled decay)")
        self.stack, self.optimizers = stack, optimizers
        self.exp_avg = torch.zeros_like(stack.flat.data)
        self.exp_avg_sq = torch.zeros_like(stack.flat.data)
        self.steps = [0] * stack.k

    def step(self, active: list[int]) -> None:
        """One update of the models in ``active`` (a model whose fold had no batch this step keeps its state)."""
        flat, grad = self.stack.flat, self.stack.grad
        group = self.optimizers[0].param_groups[0]
        (beta1, beta2), eps, decay = group["betas"], group["eps"], group["weight_decay"]
        for k in active:
            self.steps[k] += 1
        # torch.optim.Adam computes these in double precision, then each op casts its scalar to float32
        step_size = [self.optimizers[k].param_groups[0]["lr"] / (1 - beta1 ** self.steps[k]) for k in active]
        correction = [(1 - beta2 ** self.steps[k]) ** 0.5 for k in active]
        column = dict(dtype=flat.dtype, device=flat.device)
        step_size = -torch.tensor(step_size, **column).unsqueeze(1)
        correction = torch.tensor(correction, **column).unsqueeze(1)
        every = len(active) == self.stack.k
        rows = slice(None) if every else torch.tensor(active, device=flat.device)
        param, exp_avg, exp_avg_sq, grad = flat[rows], self.exp_avg[rows], self.exp_avg_sq[rows], grad[rows]
        if decay != 0:
            grad = grad.add(param, alpha=decay)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (exp_avg_sq.sqrt() / correction).add_(eps)
        param.add_(exp_avg.mul(step_size).div_(denom))
        if not every:  # advanced indexing gave copies: write the active rows back
            flat[rows], self.exp_avg[rows], self.exp_avg_sq[rows] = param, exp_avg, exp_avg_sq


class FoldOptimizer:
    """Model ``k``'s optimizer as a training state sees it: ``state_dict``/``load_state_dict`` in
    ``torch.optim.Adam``'s format (the learning rate lives in the model's own optimizer)."""

    def __init__(self, adam: StackedAdam, k: int):
        self.adam, self.k = adam, k

    def state_dict(self) -> dict[str, Any]:
        adam, k = self.adam, self.k
        saved = adam.optimizers[k].state_dict()
        if adam.steps[k]:
            step = float(adam.steps[k])
            pieces = zip(adam.stack.pieces(adam.exp_avg[k]), adam.stack.pieces(adam.exp_avg_sq[k]), strict=True)
            saved["state"] = {
                i: {"step": torch.tensor(step), "exp_avg": m.clone(), "exp_avg_sq": v.clone()}
                for i, (m, v) in enumerate(pieces)
            }
        return saved

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        adam, k = self.adam, self.k
        adam.optimizers[k].load_state_dict({"state": {}, "param_groups": saved["param_groups"]})
        state = saved["state"]
        adam.steps[k] = int(state[0]["step"]) if state else 0
        with torch.no_grad():
            for name, stacked in (("exp_avg", adam.exp_avg), ("exp_avg_sq", adam.exp_avg_sq)):
                for i, piece in enumerate(adam.stack.pieces(stacked[k])):
                    piece.copy_(state[i][name] if state else torch.zeros_like(piece))


__all__ = ["FoldOptimizer", "StackedAdam", "StackedParameters", "linear_of_one", "stacked_linear"]

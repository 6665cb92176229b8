"""What a model family is: a module with ``train`` and ``evaluate``, ``ensemble`` when it can average its trials'
predictions, ``inference_state`` + ``predict`` when its chosen model can be served (logged as an MLflow model), and
``score_predictions`` when its figures can be computed from predictions (untuned references scored beside it),
``split_scorer`` when it can score resamples of a split without running its models again (fast bootstrap intervals).
``load_family`` is the one way the service gets a family from a space's ``trainable``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from trainables.reporting import TrialContext


@runtime_checkable
class ModelFamily(Protocol):
    """A module such as ``trainables.mlp``: trains one config, reporting each epoch through ``ctx``, and scores the
    weights of a checkpoint on a split."""

    def train(self, config: dict[str, Any], data: Any, ctx: TrialContext) -> None: ...

    def evaluate(
        self, config: dict[str, Any], data: Any, ctx: TrialContext, weights: Path, split: str = "test"
    ) -> dict[str, float]: ...


@runtime_checkable
class EnsemblingFamily(ModelFamily, Protocol):
    """A family that can score the mean prediction of several trials (``members``: config and weights file each)."""

    def ensemble(self, members: list[tuple[dict[str, Any], Path]], data: Any, ctx: TrialContext) -> dict[str, Any]: ...


@runtime_checkable
class ServingFamily(ModelFamily, Protocol):
    """A family whose trained weights can predict outside a study. ``inference_state`` is what ``predict`` needs
    besides the config and the weights, computed from the data as ``evaluate`` computes it (feature scalers fitted
    on the training rows, input and output sizes): plain picklable values, saved beside the weights.
    ``predict`` maps raw inputs (rows shaped like the data's ``x`` array) to what ``evaluate`` scores (class indices,
    or values in the target's units), on the CPU; a weights file of several fold models predicts their mean, as
    ``evaluate`` scores them. A family whose data holds no ``x`` array of model inputs also defines
    ``example_inputs(data, n)``: ``n`` test inputs as its ``predict`` takes them (the published input example)."""

    def inference_state(self, config: dict[str, Any], data: Any, ctx: TrialContext) -> dict[str, Any]: ...

    def predict(self, config: dict[str, Any], state: dict[str, Any], weights: Path, inputs: Any) -> Any: ...


@runtime_checkable
class ScoringFamily(ServingFamily, Protocol):
    """A family whose figures can be computed from predictions alone: ``score_predictions`` scores what ``predict``
    returned for the data's ``rows`` (one prediction per row) with the metric code of ``evaluate``, every figure
    but those that need more than a prediction (a loss). The reference phase (``tuner.study.references``) scores
    untuned standard models and the chosen model this way, on the same resampled rows."""

    def score_predictions(self, data: Any, rows: Any, predicted: Any, split: str = "test") -> dict[str, float]: ...


@runtime_checkable
class ResamplingFamily(ModelFamily, Protocol):
    """A family that scores resamples of a split without running inference again. ``split_scorer`` runs the
    weights on ``split`` once and returns ``score(units)``: ``evaluate``'s figures (the loss included) of any
    resample of the split's units (drawn from ``data.splits[split]``, repeats allowed), or of the split itself for
    None. The evaluate phase's bootstrap intervals use it where present; without it each resample runs
    ``evaluate`` again, within a time budget."""

    def split_scorer(
        self, config: dict[str, Any], data: Any, ctx: TrialContext, weights: Path, split: str = "test"
    ) -> Callable[[Any], dict[str, float]]: ...


def unit_positions(units: Any, rows: Any) -> Any:
    """Where each unit of a resample (``rows``, drawn from ``units`` with repeats) sits in ``units``: the index a
    ``split_scorer`` picks its once-computed outputs with."""
    order = np.argsort(units)
    return order[np.searchsorted(units, rows, sorter=order)]


def resample_scorer(
    units: Any, outputs: Any, score_of: Callable[[Any, Any], dict[str, float]]
) -> Callable[[Any], dict[str, float]]:
    """A ``split_scorer``'s ``score(rows)``: ``score_of(outputs, rows)`` for the split (``rows`` None: the outputs
    computed once for ``units``) or for a resample of its units, whose outputs are picked from those."""

    def score(rows: Any = None) -> dict[str, float]:
        if rows is None:
            return score_of(outputs, units)
        at = unit_positions(units, rows)
        import torch  # the families' outputs are torch tensors or numpy arrays (which have a .device too)

        if isinstance(outputs, torch.Tensor):  # its index on its own device
            at = torch.as_tensor(at, device=outputs.device)
        return score_of(outputs[at], rows)

    return score


def load_family(module: str) -> ModelFamily:
    """The family module named by a space's ``trainable``; one that lacks ``train`` or ``evaluate`` is an error
    naming what is missing (caught when a space is first used, not in the middle of a study)."""
    family: ModuleType = importlib.import_module(module)
    missing = [name for name in ("train", "evaluate") if not callable(getattr(family, name, None))]
    if missing:
        raise TypeError(f"model family {module} must define {' and '.join(missing)}() (see trainables.family)")
    return family  # type: ignore[return-value]  # a module satisfies the protocol structurally


__all__ = [
    "EnsemblingFamily",
    "ModelFamily",
    "ResamplingFamily",
    "ScoringFamily",
    "ServingFamily",
    "load_family",
    "resample_scorer",
    "unit_positions",
]

"""What a model family is: a module with ``train`` and ``evaluate``, and ``ensemble`` when it can average its
trials' predictions. ``load_family`` is the one way the service gets a family from a space's ``trainable``."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

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


def load_family(module: str) -> ModelFamily:
    """The family module named by a space's ``trainable``; one that lacks ``train`` or ``evaluate`` is an error
    naming what is missing (caught when a space is first used, not in the middle of a study)."""
    family: ModuleType = importlib.import_module(module)
    missing = [name for name in ("train", "evaluate") if not callable(getattr(family, name, None))]
    if missing:
        raise TypeError(f"model family {module} must define {' and '.join(missing)}() (see trainables.family)")
    return family  # type: ignore[return-value]  # a module satisfies the protocol structurally


__all__ = ["EnsemblingFamily", "ModelFamily", "load_family"]

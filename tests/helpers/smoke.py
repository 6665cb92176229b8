"""A space made fast to exercise: its ``SpaceSpec.smoke`` overrides applied as ``--set`` would apply them."""

from __future__ import annotations

import fcntl
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.settings import apply_settings
from tuner.spec import SpaceSpec


def smoke_spec(spec: SpaceSpec) -> SpaceSpec:
    """The spec with its ``smoke`` overrides applied (checked like ``--set``): what tests run of a space."""
    return apply_settings(spec, tuple(f"{key}={json.dumps(value)}" for key, value in spec.smoke.items()))


def load_shared(spec: SpaceSpec, data_cache: Path):
    """``spec``'s generated dataset from a cache other test processes may be filling at the same moment: the first
    to take the dataset's lock generates it, the others then read it (a loader's own write-then-rename guards a
    reader, not two writers of the same folder)."""
    from tuner.datasets import load_dataset

    with open(data_cache / f".{spec.dataset}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        return load_dataset(spec.dataset, None, spec.data_options, data_cache)


@dataclass(frozen=True)
class OneEpoch:
    """Space ``spec``'s report config (or first grid point) after one epoch of every fold, on the CPU with seed 0:
    the family, the config, the data, the trial context and every ``(row, checkpoint folder)`` reported."""

    spec: SpaceSpec
    family: Any
    config: dict[str, Any]
    data: Any
    ctx: Any
    rows: list[tuple[dict[str, Any], Path | None]]

    @property
    def weights(self) -> Path:
        """The weights file of the latest checkpoint."""
        from trainables.reporting import CHECKPOINT_FILE

        return next(ckpt for _, ckpt in reversed(self.rows) if ckpt is not None) / CHECKPOINT_FILE


def train_one_epoch(name: str, data_cache: Path) -> OneEpoch:
    """Train space ``name`` (its smoke settings applied) for one epoch of every fold, as a 1-CPU trial would."""
    from trainables.family import load_family
    from tuner import spaces
    from tuner.trial import make_context

    spec = smoke_spec(spaces.get(name))
    data = load_shared(spec, data_cache)
    rows = []
    ctx = make_context(spec, seed=0, device="cpu", report=lambda row, ckpt: rows.append((row, ckpt)))
    ctx = type(ctx)(**{**ctx.__dict__, "max_epochs": int(spec.fixed.get("folds", 1))})
    family = load_family(spec.trainable)
    config = spec.active_config(spec.report_config or spec.complete_config({}))
    family.train(config, data, ctx)
    return OneEpoch(spec, family, config, data, ctx, rows)

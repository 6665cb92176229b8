"""The function Ray Tune runs for every trial: it builds the model family's context and calls ``train``.

Data and the spec arrive through ``tune.with_parameters`` (the object store, once per study); a trial never
reads files. Only the active parameters of a config reach the trainable.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path
from typing import Any

from trainables.reporting import TrialContext
from tuner.spec import SpaceSpec


def _tune_report(row: dict[str, Any], checkpoint_dir: Path | None) -> None:
    from ray import tune

    if checkpoint_dir is None:
        tune.report(row)
        return
    try:
        tune.report(row, checkpoint=tune.Checkpoint.from_directory(str(checkpoint_dir)))
    finally:  # the checkpoint has been persisted to the study's storage by now
        shutil.rmtree(checkpoint_dir, ignore_errors=True)


def make_context(spec: SpaceSpec, seed: int, device: str, report=_tune_report) -> TrialContext:
    es = spec.early_stopping
    return TrialContext(
        metric=spec.metric,
        mode=spec.mode,
        max_epochs=spec.max_epochs,
        fixed=dict(spec.fixed),
        seed=seed,
        report=report,
        device=device,
        early_stopping_monitor=es.monitor if es else None,
        early_stopping_mode=es.mode if es else "min",
        early_stopping_patience=es.patience if es else 0,
        early_stopping_min_delta=es.min_delta if es else 0.0,
        score_last_epoch=spec.score == "last_epoch",
    )


def trial_device(gpus: float) -> str:
    """``cuda`` when Ray gave this trial (a share of) a GPU and torch can see it, else ``cpu``."""
    if gpus <= 0 or "torch" not in sys.modules:
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def run_trial(config: dict[str, Any], *, data: Any, spec: SpaceSpec, seed: int, threads: int, gpus: float) -> None:
    family = importlib.import_module(spec.trainable)
    if "torch" in sys.modules:  # torch-based families: one trial uses exactly its CPU share
        import torch

        torch.set_num_threads(threads)
    ctx = make_context(spec, seed, trial_device(gpus))
    family.train(spec.active_config(config), data, ctx)

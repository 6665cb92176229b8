"""The function Ray Tune runs for every trial: it builds the model family's context and calls ``train``.

Data and the spec arrive through ``tune.with_parameters`` (the object store, once per study); a trial never
reads files. Only the active parameters of a config reach the trainable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import shutil
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any

from trainables.family import load_family
from trainables.reporting import (
    BEST_EPOCH,
    END_MESSAGE,
    END_REASON,
    EPOCH,
    FAILED,
    SCORE,
    TrialContext,
    remove_orphaned_temp_folders,
)
from tuner.spec import SpaceSpec

DONE = "done"
"""Tune's own key: a result with ``done`` ends its trial (saves one round trip to the actor per trial)."""
NODE_ID = "node_id"
"""The Ray node a trial ran on (nodes of one machine share an IP)."""
TRACEBACK = "traceback"
SEED = "trial_seed"
"""In a config: this trial's own seed instead of the study's (the verify phase re-trains a config with fresh
seeds); in every report: the seed the trial trained with."""
FIXED_PREFIX = "fixed__"
"""In a config: ``fixed__<setting>`` overrides that fixed setting for this trial only (the baseline phase trains the
report's config with the report's protocol, ``report_fixed``, beside a search that uses the space's default)."""
TRIAL_DIR_PREFIX = "trial_"


def fixed_overrides(config: dict[str, Any]) -> dict[str, Any]:
    """The fixed settings a config overrides for its own trial (``FIXED_PREFIX`` keys), without the prefix."""
    return {key.removeprefix(FIXED_PREFIX): value for key, value in config.items() if key.startswith(FIXED_PREFIX)}


def trial_dirname(trial) -> str:
    """A trial's folder in the study's storage (Tune's ``trial_dirname_creator``)."""
    return f"{TRIAL_DIR_PREFIX}{trial.trial_id}"


def _tune_report(row: dict[str, Any], checkpoint_dir: Path | None) -> None:
    from ray import tune

    if row.get(END_REASON):  # the trial's last report: Tune ends it now instead of asking the actor once more
        row = {**row, DONE: True}

    if checkpoint_dir is None:
        tune.report(row)
        return
    try:
        tune.report(row, checkpoint=tune.Checkpoint.from_directory(str(checkpoint_dir)))
    finally:  # the checkpoint has been persisted to the study's storage by now
        shutil.rmtree(checkpoint_dir, ignore_errors=True)


def make_context(
    spec: SpaceSpec,
    seed: int,
    device: str,
    report=_tune_report,
    checkpoint_every_s: float = 60.0,
    restore: Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrialContext:
    es = spec.early_stopping
    return TrialContext(
        metric=spec.metric,
        mode=spec.mode,
        max_epochs=spec.max_epochs,
        fixed={**spec.fixed, **(overrides or {})},
        seed=seed,
        report=report,
        device=device,
        early_stopping_monitor=es.monitor if es else None,
        early_stopping_mode=es.mode if es else "min",
        early_stopping_patience=es.patience if es else 0,
        early_stopping_min_delta=es.min_delta if es else 0.0,
        score_last_epoch=spec.score == "last_epoch",
        checkpoint_every_s=checkpoint_every_s,
        restore=restore,
    )


def trial_device(gpus: float) -> str:
    """``cuda`` when Ray gave this trial (a share of) a GPU and torch can see it, else ``cpu``."""
    if gpus <= 0 or "torch" not in sys.modules:
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _node_id() -> str:
    try:
        import ray

        return ray.get_runtime_context().get_node_id() or ""
    except Exception:  # outside a Ray worker (direct calls in tests): no node
        return ""


@contextlib.contextmanager
def _restored_checkpoint():
    """The local folder of the checkpoint Tune restarted this trial from, or None (a fresh start, or outside Tune)."""
    from ray import tune

    with warnings.catch_warnings():  # outside a Tune session (direct calls, the GPU probe) it warns and gives None
        warnings.simplefilter("ignore", UserWarning)
        checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        yield None
        return
    with checkpoint.as_directory() as folder:
        yield Path(folder)


def release_accelerator_memory() -> None:
    """Give the GPU memory a finished or stopped trial held back to the device: with reused actors the next trial
    runs in this same process, and PyTorch's caching allocator would otherwise keep the old trial's blocks."""
    if "torch" not in sys.modules:
        return
    import torch

    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def run_trial(
    config: dict[str, Any],
    *,
    data: Any,
    spec: SpaceSpec,
    seed: int,
    threads: int,
    gpus: float,
    checkpoint_every_s: float = 60.0,
) -> None:
    """Train one config. An exception from the model family ends the trial as ``failed`` (its error reported as
    the trial's last result, so Tune does not retry it); only a lost worker process or node is retried by Tune,
    and a retried trial continues from its latest checkpoint (``tune.get_checkpoint()``) when its family can.
    The scheduler stopping the trial ends its thread inside ``tune.report`` (SystemExit), which passes through.
    A space of its own folder has that folder on this process's import path already: ``data`` put it there as it
    arrived (``tuner.spaces.code.with_code``; on a joined cluster's other machines Ray's runtime env brought the
    folder's code)."""
    family = load_family(spec.trainable)
    seed = int(config.get(SEED, seed))
    if "torch" in sys.modules:  # torch-based families: one trial uses exactly its CPU share
        import torch

        torch.set_num_threads(threads)
    node = _node_id()
    remove_orphaned_temp_folders()  # left by trial processes killed on this machine
    last_epoch = 0

    def report(row: dict[str, Any], checkpoint_dir: Path | None) -> None:
        nonlocal last_epoch
        last_epoch = int(row.get(EPOCH, last_epoch) or last_epoch)
        _tune_report({**row, NODE_ID: node, SEED: seed}, checkpoint_dir)

    ctx = make_context(spec, seed, trial_device(gpus), report, checkpoint_every_s, overrides=fixed_overrides(config))
    try:
        with _restored_checkpoint() as restore:
            family.train(spec.active_config(config), data, dataclasses.replace(ctx, restore=restore))
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}".strip()
        _tune_report(
            {
                EPOCH: last_epoch,
                SCORE: ctx.penalty(),
                BEST_EPOCH: 0,
                END_REASON: FAILED,
                END_MESSAGE: message[:2000],
                TRACEBACK: traceback.format_exc()[-4000:],
                NODE_ID: node,
                SEED: seed,
            },
            None,
        )
    finally:
        release_accelerator_memory()

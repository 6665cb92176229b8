"""The HMS model family, measuring at each trial's start the GPU memory its process holds (test-only).

With reused trial actors one process trains trial after trial; what it holds when a trial starts is what the
trials before it left behind. Each report of the trial carries those start figures, its process id and the
fold's peak held by PyTorch's allocator, so the test reads them from the trial's MLflow run. Ray worker processes
import it by name (``tests.helpers.gpu_memory_family``): the project root must be on their path.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

from trainables import hms
from trainables.hms import evaluate  # noqa: F401  # the study's test phase uses the real family
from trainables.reporting import TrialContext

PID = "trial_pid"
STARTED_AT = "trial_started_at"
DEVICE_USED_MB = "device_used_at_start_mb"
"""Device memory in use (total - free) when the trial started: this process's CUDA context and allocator cache,
and anything else on that GPU."""
RESERVED_MB = "reserved_at_start_mb"
"""Held by this process's PyTorch allocator when the trial started."""
PEAK_RESERVED_MB = "fold_peak_reserved_mb"
METRICS = (PID, STARTED_AT, DEVICE_USED_MB, RESERVED_MB, PEAK_RESERVED_MB)
_MIB = 1 << 20


def train(config: dict[str, Any], data: Any, ctx: TrialContext) -> None:
    start = {PID: os.getpid(), STARTED_AT: time.time(), **held_memory(ctx.device)}
    report = ctx.report

    def measured(row: dict[str, Any], checkpoint_dir: Path | None) -> None:
        report({**row, **start, PEAK_RESERVED_MB: peak_reserved(ctx.device)}, checkpoint_dir)

    hms.train(config, data, dataclasses.replace(ctx, report=measured))


def held_memory(device: str) -> dict[str, float]:
    """What this process holds on its GPU now (zeros on the CPU, where only the plumbing can be checked)."""
    if device != "cuda":
        return {DEVICE_USED_MB: 0.0, RESERVED_MB: 0.0}
    import torch

    torch.cuda.init()  # the first trial's level includes the context: creating it is not what is measured
    torch.cuda.synchronize()
    free, total = torch.cuda.mem_get_info()
    return {DEVICE_USED_MB: (total - free) / _MIB, RESERVED_MB: torch.cuda.memory_reserved() / _MIB}


def peak_reserved(device: str) -> float:
    if device != "cuda":
        return 0.0
    import torch

    return torch.cuda.max_memory_reserved() / _MIB

"""Memory release between reused trials, on a real GPU: after a trial ends and its process takes the next, the
device memory that process holds is back at its level before the first trial.

Three hms_b1 trials at full image scale (a few GiB each) run one after another with a whole GPU each, so Ray Tune
reuses one trial process for all of them; each trial records, as it starts, what its process holds
(``tests.helpers.gpu_memory_family``). The level before the first trial is taken once that process's CUDA context
exists. Tolerances:

- PyTorch's allocator: at most ``RESERVED_TOLERANCE_MB`` more than before the first trial (cuBLAS keeps its
  workspace, up to 32 MiB, for the process's life; a kept model with its optimizer state would be over 100 MiB);
- the device as a whole: at most ``DEVICE_TOLERANCE_MB`` more (the CUDA kernels the first trial loaded lazily stay
  loaded, and cuDNN's with them), against the several GiB a trial holds while training (at least twice the
  tolerance is required of the largest trial, or a trial that kept everything could pass).

It prints its figures on one ``GPU-MEMORY`` line (``benchmarks/gpu_checks.sh`` records them).
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from tests.helpers import gpu_memory_family as measured
from tests.helpers.mlflow_runs import mlflow_runs
from tuner import spaces
from tuner.datasets.hms_synthetic import generate_competition
from tuner.schema import TRIAL_STATUS_TAG
from tuner.study import RunOptions, run_study

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.slow,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

TRIALS = 3
RESERVED_TOLERANCE_MB = 64.0
DEVICE_TOLERANCE_MB = 1024.0


def test_a_reused_trial_process_gives_its_gpu_memory_back(ray_instance, tmp_path):
    assert ray_instance.gpus >= 1, "Ray sees no GPU although torch does"
    competition = tmp_path / "competition"
    generate_competition(competition, n_patients=10, recordings_per_patient=(1, 2), windows_per_recording=(2, 3))
    base = spaces.get("hms_b1")
    spec = dataclasses.replace(base, trainable=measured.__name__, metrics=(*base.metrics, *measured.METRICS))
    opts = RunOptions(
        trials=TRIALS,
        max_epochs=2,
        data=competition,
        results_dir=tmp_path / "results",
        name="memory",
        dashboard=False,
        settings=("image_scale=1.0", "ensemble_top_k=1"),
        searcher="random",
        scheduler="fifo",
        cpus_per_trial=1,
        gpus_per_trial=1,
        max_concurrent=1,
        verify_top=0,
        report_baseline=False,
    )
    run_study(spec, opts)

    _, _, children = mlflow_runs(tmp_path / "results", base.name)
    trials = sorted(
        (c for c in children if measured.PID in c.data.metrics), key=lambda c: c.data.metrics[measured.STARTED_AT]
    )
    assert len(trials) == TRIALS and {c.data.tags[TRIAL_STATUS_TAG] for c in trials} == {"completed"}
    figures = {key: [c.data.metrics[key] for c in trials] for key in measured.METRICS if key != measured.STARTED_AT}
    print(measured_line(figures))
    assert len(set(figures[measured.PID])) == 1, f"the trials did not share one process: {figures[measured.PID]}"
    first_reserved, *later_reserved = figures[measured.RESERVED_MB]
    first_device, *later_device = figures[measured.DEVICE_USED_MB]
    # a trial must have held well over the tolerance, or keeping all of it would pass unseen
    assert max(figures[measured.PEAK_RESERVED_MB]) > 2 * DEVICE_TOLERANCE_MB, figures
    assert all(r <= first_reserved + RESERVED_TOLERANCE_MB for r in later_reserved), figures
    assert all(d <= first_device + DEVICE_TOLERANCE_MB for d in later_device), figures


def measured_line(figures: dict[str, list[float]]) -> str:
    tolerances = {"reserved_tolerance_mb": RESERVED_TOLERANCE_MB, "device_tolerance_mb": DEVICE_TOLERANCE_MB}
    rounded = {key: [round(v, 1) for v in values] for key, values in figures.items()}
    return "GPU-MEMORY " + json.dumps({**rounded, **tolerances})

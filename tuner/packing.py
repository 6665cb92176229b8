"""``--gpus-per-trial auto``: measure one probe trial on a GPU, then pack as many trials per GPU as fit.

The probe trains one config of the space (the ``--config`` given, else the report's own best config) until its
first report (one epoch; one fold-epoch for spaces that cross-validate inside a trial) in a Ray task that holds
one whole GPU, on the node with the smallest GPU of the cluster. In that process it measures:

- ``torch.cuda.max_memory_allocated()``: the peak of live tensors;
- ``torch.cuda.max_memory_reserved()``: the peak held by PyTorch's caching allocator (tensors, the allocator's
  cache and its fragmentation; cuBLAS/cuDNN workspaces come from it too). This is what the trial's process
  really occupied, and what the packing is computed from;
- the overhead outside PyTorch's allocator: device memory in use (``torch.cuda.mem_get_info()``) after the epoch
  minus what the allocator holds. That is the CUDA context with the kernels it loaded, and anything else
  resident on that GPU, so it errs on the safe side. Only where the free memory cannot be read is it assumed to
  be ``FALLBACK_CONTEXT_BYTES``, and the output says so;
- the GPU's total memory.

Each trial sharing a GPU runs in its own process with its own context, so the largest ``k <= MAX_PER_GPU`` with
``k * (peak reserved + context) <= (1 - margin) * total`` trials share one GPU, and the share is ``1/k`` rounded
down to Ray's 0.0001 resource granularity (``k`` shares never exceed one GPU). The margin (15 %) covers what one
epoch of one config cannot show: later epochs, other configs of the space (a larger batch or model than the
probed one needs more; a trial that runs out of memory fails and the study goes on) and allocator noise.

The probe task exits when it is done (``max_calls=1``), so its memory is free before the first trial starts.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.errors import TunerError, first_line
from tuner.spec import SpaceSpec

AUTO = "auto"
"""The ``--gpus-per-trial`` value that asks for the measured packing."""
DEFAULT_MARGIN = 0.15
"""Fraction of the GPU's memory kept free."""
MAX_PER_GPU = 8
"""Most trials on one GPU: past that, processes contend for the GPU's time more than they gain in throughput."""
FALLBACK_CONTEXT_BYTES = 1 << 30
"""Assumed CUDA context when the device's free memory cannot be read (a context is usually 0.3-0.6 GiB)."""
RESOURCE_STEPS = 10_000
"""Ray accounts resources in steps of 0.0001."""

_MIB = 1 << 20
_GIB = 1 << 30
_NO_CUDA = (
    "torch sees no CUDA device in a Ray worker that was given a GPU (a CPU-only torch build, or GPUs declared "
    "to Ray, e.g. with --num-gpus, on a machine without them)"
)


def size(n: float) -> str:
    """Bytes as GiB (MiB below one GiB), for messages."""
    return f"{n / _GIB:.2f} GiB" if n >= _GIB else f"{n / _MIB:.0f} MiB"


def choose_gpu_share(
    peak_bytes: float,
    context_bytes: float,
    gpu_total_bytes: float,
    margin: float = DEFAULT_MARGIN,
    max_per_gpu: int = MAX_PER_GPU,
) -> tuple[float, int, str]:
    """The GPU share per trial, the trials per GPU, and a one-line explanation.

    ``per_gpu`` is the largest whole ``k <= max_per_gpu`` with ``k * (peak + context) <= (1 - margin) * total``;
    the share is ``1/k`` rounded down to Ray's 0.0001 steps. A trial that does not fit even alone is a
    ``TunerError`` naming the figures."""
    if peak_bytes < 0 or context_bytes < 0 or not gpu_total_bytes > 0:
        raise ValueError(f"bad figures: peak {peak_bytes}, context {context_bytes}, total {gpu_total_bytes}")
    if not 0 <= margin < 1 or max_per_gpu < 1:
        raise ValueError(f"margin must be in [0, 1) and max_per_gpu at least 1, got {margin}, {max_per_gpu}")
    per_trial = peak_bytes + context_bytes
    usable = (1 - margin) * gpu_total_bytes
    figures = (
        f"peak {size(peak_bytes)} + CUDA context {size(context_bytes)} = {size(per_trial)} per trial; "
        f"{size(usable)} usable of the GPU's {size(gpu_total_bytes)} with a {margin:.0%} margin"
    )
    if per_trial > usable:
        hint = (
            "--gpus-per-trial 1 gives each trial a whole GPU without the margin"
            if per_trial <= gpu_total_bytes
            else "it needs a smaller config (batch size, model or input size) or a larger GPU"
        )
        raise TunerError(f"--gpus-per-trial auto: one trial does not fit with the margin: {figures}; {hint}")
    per_gpu = max_per_gpu if per_trial == 0 else min(max_per_gpu, int(usable // per_trial))
    while per_gpu > 1 and per_gpu * per_trial > usable:  # float division at the boundary
        per_gpu -= 1
    share = 1.0 if per_gpu == 1 else math.floor(RESOURCE_STEPS / per_gpu) / RESOURCE_STEPS
    limit = f" (at most {max_per_gpu})" if per_gpu == max_per_gpu else ""
    return share, per_gpu, f"{figures} -> {per_gpu} trial(s) per GPU{limit}, --gpus-per-trial {share:g}"


@dataclass(frozen=True)
class GpuProbe:
    """What the probe trial measured, in bytes."""

    config_source: str
    device: str
    node: str
    total_bytes: int
    peak_allocated_bytes: int
    peak_reserved_bytes: int
    context_bytes: int
    context_measured: bool
    seconds: float
    gpu_nodes: int

    def record(self, margin: float, per_gpu: int, share: float) -> dict[str, Any]:
        """Flat figures for run.json and the MLflow parent run's params."""
        mb = lambda n: round(n / _MIB, 1)  # noqa: E731
        return {
            "gpus_per_trial_asked": AUTO,
            "gpu_probe_trials_per_gpu": per_gpu,
            "gpu_probe_margin": margin,
            "gpu_probe_config": self.config_source,
            "gpu_probe_device": self.device,
            "gpu_probe_node": self.node,
            "gpu_probe_gpu_nodes": self.gpu_nodes,
            "gpu_probe_total_mb": mb(self.total_bytes),
            "gpu_probe_peak_mb": mb(self.peak_reserved_bytes),
            "gpu_probe_peak_allocated_mb": mb(self.peak_allocated_bytes),
            "gpu_probe_context_mb": mb(self.context_bytes),
            "gpu_probe_context_measured": self.context_measured,
            "gpu_probe_seconds": round(self.seconds, 1),
        }


class _FirstReport(BaseException):
    """Ends the probe trial at its first report (a BaseException: a family's ``except Exception`` lets it pass)."""


def train_until_first_report(
    spec: SpaceSpec, config: dict[str, Any], data: Any, seed: int, device: str
) -> dict[str, Any] | None:
    """Train ``config`` with the space's family until its first report and return that row (None: the family
    returned without reporting). Stopping at the first report, rather than setting ``max_epochs=1``, works for
    every family, those whose epoch budget must be a multiple of their folds included."""
    from trainables.family import load_family
    from tuner.trial import make_context

    family = load_family(spec.trainable)
    rows: list[dict[str, Any]] = []

    def report(row: dict[str, Any], checkpoint_dir: Path | None) -> None:
        if checkpoint_dir is not None:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
        rows.append(row)
        raise _FirstReport

    try:
        family.train(config, data, make_context(spec, seed, device, report=report))
    except _FirstReport:
        pass
    return rows[0] if rows else None


def _node_ip() -> str:
    import ray

    return ray.util.get_node_ip_address()


def _gpu_total() -> dict[str, Any]:
    """Runs in a Ray task holding one GPU: that GPU's total memory."""
    import torch

    if not torch.cuda.is_available():
        return {"node": _node_ip(), "error": _NO_CUDA}
    return {"node": _node_ip(), "total": torch.cuda.mem_get_info()[1], "device": torch.cuda.get_device_name()}


def _measure(spec: SpaceSpec, config: dict[str, Any], data: Any, seed: int, threads: int) -> dict[str, Any]:
    """Runs in a Ray task holding one GPU: train until the first report and measure the GPU memory."""
    import torch

    node = _node_ip()
    if not torch.cuda.is_available():
        return {"node": node, "error": _NO_CUDA}
    torch.set_num_threads(threads)
    torch.cuda.init()
    device = torch.cuda.get_device_name()
    total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
    torch.cuda.reset_peak_memory_stats()
    started = time.monotonic()
    try:
        train_until_first_report(spec, config, data, seed, "cuda")
    except torch.OutOfMemoryError as exc:
        first = first_line(exc, default="CUDA out of memory")
        return {"node": node, "device": device, "total": total, "oom": first[:300]}
    seconds = time.monotonic() - started
    torch.cuda.synchronize()
    reserved_now = torch.cuda.memory_reserved()
    try:
        free, total = torch.cuda.mem_get_info()
        context, measured = max(0, total - free - reserved_now), True
    except RuntimeError:  # some virtualised devices do not report free memory
        context, measured = FALLBACK_CONTEXT_BYTES, False
    return {
        "node": node,
        "device": device,
        "total": total,
        "peak_allocated": torch.cuda.max_memory_allocated(),
        "peak_reserved": torch.cuda.max_memory_reserved(),
        "context": context,
        "context_measured": measured,
        "seconds": seconds,
    }


def probe_gpu_memory(
    spec: SpaceSpec, config: dict[str, Any], config_source: str, data: Any, seed: int, cpus: float
) -> GpuProbe:
    """Run the probe trial on one whole GPU of the connected Ray cluster, on the node whose GPU is smallest
    (GPUs are assumed alike within a node; with one GPU node nothing is asked before the probe)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("GPU", 0) >= 1]
    if not nodes:
        raise TunerError("--gpus-per-trial auto: no node of the Ray cluster has a whole GPU for the probe trial")
    placement: dict[str, Any] = {}
    if len(nodes) > 1:
        query = ray.remote(num_gpus=1, num_cpus=0, max_calls=1)(_gpu_total)
        on = [NodeAffinitySchedulingStrategy(node, soft=False) for node in nodes]
        answers = ray.get([query.options(scheduling_strategy=where).remote() for where in on])
        for answer in answers:
            if "error" in answer:
                raise TunerError(
                    f"--gpus-per-trial auto: reading GPU sizes, on node {answer['node']}, {answer['error']}"
                )
        smallest = min(range(len(nodes)), key=lambda i: answers[i]["total"])
        placement["scheduling_strategy"] = on[smallest]
    measure = ray.remote(num_gpus=1, num_cpus=cpus, max_calls=1)(_measure)  # exits when done: its memory is freed
    result = ray.get(measure.options(**placement).remote(spec, config, data, seed, max(1, int(cpus))))
    if "error" in result:
        raise TunerError(f"--gpus-per-trial auto: on node {result['node']}, {result['error']}")
    if "oom" in result:
        raise TunerError(
            f"--gpus-per-trial auto: the probe trial ({config_source}) ran out of memory alone on a whole "
            f"{result['device']} ({size(result['total'])}) on node {result['node']}: {result['oom']}"
        )
    return GpuProbe(
        config_source=config_source,
        device=result["device"],
        node=result["node"],
        total_bytes=int(result["total"]),
        peak_allocated_bytes=int(result["peak_allocated"]),
        peak_reserved_bytes=int(result["peak_reserved"]),
        context_bytes=int(result["context"]),
        context_measured=bool(result["context_measured"]),
        seconds=float(result["seconds"]),
        gpu_nodes=len(nodes),
    )


def auto_gpu_share(
    spec: SpaceSpec,
    fixed_config: dict[str, Any] | None,
    data: Any,
    seed: int,
    cpus: float,
    echo: Callable[[str], None],
    margin: float = DEFAULT_MARGIN,
) -> tuple[float, dict[str, Any]]:
    """Probe, choose, and say so in one line; return the share and the figures to record."""
    if fixed_config is not None:
        config, source = fixed_config, "the --config config"
    elif spec.report_config:
        config, source = spec.active_config(spec.report_config), "the report's config"
    else:
        raise TunerError(
            f"--gpus-per-trial auto: space {spec.name} has no report config to probe; give --config or a number"
        )
    echo(f"GPU probe: training {source} until its first report on one GPU to measure its memory ...")
    probe = probe_gpu_memory(spec, config, source, data, seed, cpus)
    share, per_gpu, why = choose_gpu_share(probe.peak_reserved_bytes, probe.context_bytes, probe.total_bytes, margin)
    assumed = "" if probe.context_measured else f", context not measurable: {size(FALLBACK_CONTEXT_BYTES)} assumed"
    echo(
        f"GPU probe on {probe.device} (node {probe.node}, {probe.gpu_nodes} GPU node(s), {probe.seconds:.1f} s): "
        f"tensors peaked at {size(probe.peak_allocated_bytes)}, PyTorch's allocator held "
        f"{size(probe.peak_reserved_bytes)}{assumed}; {why}"
    )
    return share, probe.record(margin, per_gpu, share)


__all__ = ["AUTO", "GpuProbe", "auto_gpu_share", "choose_gpu_share", "probe_gpu_memory", "train_until_first_report"]

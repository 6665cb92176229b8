"""Trials per hour and peak GPU memory of hms_b1 trials packed 1, 2 and 4 to a GPU (0.25-1 GPU per trial).

Each packing runs P worker processes on the same GPU, each training hms_b1 trials (the report's optimised config,
2 folds x 2 epochs, no pruning) back to back on the synthetic competition data, for a fixed measuring window that
starts once every worker has loaded its data and built its first model. Throughput counts finished fold-epochs
(a whole trial is ``max_epochs`` of them); memory is each process's peak allocated/reserved by PyTorch plus the
CUDA context (device total in use, read from the driver, divided by P).

This drives the trainable directly, as a Ray worker would after ``tune.with_resources(gpu=1/P)``: what it
measures is the GPU's capacity for packed trials, without Ray's scheduling overhead.

    python benchmarks/hms_gpu_packing.py --packings 1 2 4 --seconds 45 --image-scale 1.0
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import queue
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _worker(rank: int, args, ready, start, stop_at, results) -> None:
    import torch

    import trainables.hms as family
    from tuner import spaces
    from tuner.datasets import load_dataset
    from tuner.trial import make_context

    spec = spaces.get("hms_b1")
    spec = dataclasses.replace(spec, fixed={**spec.fixed, "image_scale": args.image_scale})
    data = load_dataset("hms", None, spec.data_options, Path(args.cache))
    torch.set_num_threads(2)
    steps, trials, rows = 0, 0, []

    class Stop(Exception):
        pass

    def report(row, checkpoint):
        nonlocal steps
        if checkpoint is not None:  # the trainable's checkpoint folder: a study would persist it, here it goes
            shutil.rmtree(checkpoint, ignore_errors=True)
        if start.is_set():
            steps += 1
            rows.append({k: row[k] for k in ("epoch", "val_kl", "cv_kl", "val_kl_prior") if k in row})
        if time.time() > stop_at.value > 0:
            raise Stop

    def stop_at_once(row, checkpoint):
        shutil.rmtree(checkpoint, ignore_errors=True) if checkpoint else None
        raise Stop

    cuda = args.device == "cuda"
    warmup = make_context(spec, rank, args.device, report=stop_at_once)
    try:  # build images and a model once (cudnn autotuning, allocator warm-up), then wait for the others
        family.train(dict(spec.report_config), data, warmup)
    except Stop:
        pass
    ready.put(rank)
    start.wait()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    try:
        while True:
            ctx = make_context(spec, rank * 1000 + trials, args.device, report=report)
            family.train(dict(spec.report_config), data, ctx)
            trials += 1
    except Stop:
        pass
    results.put(
        {
            "rank": rank,
            "steps": steps,
            "trials": trials,
            "peak_allocated_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else 0.0,
            "peak_reserved_mib": torch.cuda.max_memory_reserved() / 2**20 if cuda else 0.0,
            "rows": rows[-8:],
        }
    )


def measure(packing: int, args) -> dict:
    import torch

    ctx = mp.get_context("spawn")
    ready, results, start = ctx.Queue(), ctx.Queue(), ctx.Event()
    stop_at = ctx.Value("d", 0.0)
    workers = [ctx.Process(target=_worker, args=(r, args, ready, start, stop_at, results)) for r in range(packing)]
    for w in workers:
        w.start()
    waiting = len(workers)
    while waiting:
        try:
            ready.get(timeout=5)
            waiting -= 1
        except queue.Empty:  # noqa: PERF203
            dead = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
            if dead:
                raise SystemExit(f"error: a worker died (exit codes {dead}); see its traceback above") from None
    begin = time.time()
    stop_at.value = begin + args.seconds
    start.set()
    used = 0.0
    while time.time() < begin + args.seconds:
        if args.device == "cuda":
            free, total = torch.cuda.mem_get_info()
            used = max(used, (total - free) / 2**20)
        time.sleep(0.5)
    out = [results.get(timeout=600) for _ in workers]
    for w in workers:
        w.join()
    wall = time.time() - begin
    steps = sum(o["steps"] for o in out)
    return {
        "packing": packing,
        "gpu_per_trial": 1 / packing,
        "seconds": round(wall, 1),
        "fold_epochs": steps,
        "trials_per_hour": round(steps / 4 / wall * 3600, 1),
        "peak_allocated_mib_per_trial": round(max(o["peak_allocated_mib"] for o in out), 1),
        "peak_reserved_mib_per_trial": round(max(o["peak_reserved_mib"] for o in out), 1),
        "device_in_use_mib_per_trial": round(used / packing, 1),
        "last_rows": out[0]["rows"],
    }


def learning_curve(args) -> None:
    """One hms_b1 trial of the report config with more epochs per fold: is the synthetic data learnable?"""
    import trainables.hms as family
    from tuner import spaces
    from tuner.datasets import load_dataset
    from tuner.trial import make_context

    spec = spaces.get("hms_b1")
    fixed = {**spec.fixed, "image_scale": args.image_scale}
    spec = dataclasses.replace(spec, max_epochs=args.learn_epochs, fixed=fixed)
    data = load_dataset("hms", None, spec.data_options, Path(args.cache))
    began = time.time()

    def report(row, checkpoint):
        shutil.rmtree(checkpoint, ignore_errors=True) if checkpoint else None
        kl = f"val_kl {row['val_kl']:.4f} cv_kl {row['cv_kl']:.4f} prior {row['val_kl_prior']:.4f}"
        print(f"  [{time.time() - began:6.1f}s] step {row['epoch']:>2} fold {int(row['fold'])} {kl}", flush=True)

    print(f"learning curve: report config, 2 folds x {args.learn_epochs // 2} epochs, image scale {args.image_scale}")
    family.train(dict(spec.report_config), data, make_context(spec, 0, args.device, report=report))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packings", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=45)
    parser.add_argument("--image-scale", type=float, default=1.0)
    parser.add_argument("--cache", default=str(ROOT / "results" / ".data"))
    parser.add_argument("--out", default=None, help="also write the figures as JSON here")
    parser.add_argument("--learn-epochs", type=int, default=0, help="first, one trial with this many steps (2 folds)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cpu: a dry run of the script")
    args = parser.parse_args()

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: this benchmark needs a CUDA GPU")
    from tuner.datasets import load_dataset

    started = time.time()
    data = load_dataset("hms", None, {"windows": "all", "test_fraction": 0.2, "split_seed": 42}, Path(args.cache))
    print(f"data: {data.summary} (prepared in {time.time() - started:.1f}s)", flush=True)
    gpu = torch.cuda.get_device_name() if args.device == "cuda" else "none (dry run on CPU)"
    print(f"GPU: {gpu}, image scale {args.image_scale}, hms_b1 report config", flush=True)
    if args.learn_epochs:
        learning_curve(args)
    figures = []
    for packing in args.packings:
        result = measure(packing, args)
        figures.append(result)
        print(json.dumps(result), flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(figures, indent=1))
    print(f"{'trials/GPU':>10} {'GPU/trial':>9} {'trials/hour':>11} {'peak alloc MiB':>14} {'device MiB/trial':>16}")
    for f in figures:
        print(
            f"{f['packing']:>10} {f['gpu_per_trial']:>9.2f} {f['trials_per_hour']:>11.1f} "
            f"{f['peak_allocated_mib_per_trial']:>14.0f} {f['device_in_use_mib_per_trial']:>16.0f}"
        )


if __name__ == "__main__":
    main()

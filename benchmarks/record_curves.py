"""Record learning curves: N configs of a space, each trained to max_epochs on S seeds, every epoch kept.

The configs are drawn from the space with a fixed seed (``--draw-seed``); the report's own config is config 0.
Each config trains as a study's trial trains it (the space's model family, its fixed settings and ``--set``
overrides, one torch thread), in this process, with no pruning and no early stopping: every epoch up to
``max_epochs`` is recorded (a trial that diverges ends there, as it would in a study). Each epoch row keeps every
metric the space reports and the seconds since the trial started (training, validating and writing its best
checkpoint, as in a study; Ray's own overheads are not in it).

The table is one JSON-lines file, ``OUT/SPACE.jsonl``: a first line of metadata (space, settings, data
fingerprint, machine, date, the drawn configs), then one line per finished (config, seed). It is appended to as
configs finish, so an interrupted recording resumes where it stopped (the same command again): finished (config,
seed) pairs are never trained twice, and a torn last line is dropped. ``benchmarks/curves.py`` loads it.

    python benchmarks/record_curves.py SPACE [--data PATH] --configs N --seeds S --out DIR
        [--set KEY=VALUE ...] [--max-epochs E] [--draw-seed 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import logging
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from benchmarks.curves import CPU, ELAPSED, META, ROW, draw_configs, table_path  # noqa: E402
from trainables.family import load_family  # noqa: E402
from trainables.reporting import END_REASON, EPOCH  # noqa: E402
from tuner import spaces  # noqa: E402
from tuner.datasets import load_dataset  # noqa: E402
from tuner.errors import TunerError  # noqa: E402
from tuner.run_files import git_commit  # noqa: E402
from tuner.settings import apply_settings  # noqa: E402
from tuner.spec import SpaceSpec  # noqa: E402
from tuner.trial import make_context  # noqa: E402

LOG = logging.getLogger("record_curves")
DIGITS = 6
"""Significant digits kept per metric value: far below a metric's seed-to-seed spread, and the table stays small."""


def fingerprint(path: Path | None) -> str:
    """sha256 over the data file, or over a folder's files in name order ("generated" without --data)."""
    if path is None:
        return "generated"
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def machine() -> dict[str, Any]:
    return {"node": platform.node(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "load_avg": os.getloadavg(), "python": platform.python_version(),
            "torch_threads": 1}  # fmt: skip


CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
"""Instruction sets that choose torch's CPU kernels, and so the last bits of every float a curve holds."""


def cpu_kind() -> str:
    """The CPU's model name and which of ``CPU_FLAGS`` it has ("unknown" where /proc/cpuinfo is not readable)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    return " ".join([model or "unknown", *(flag for flag in CPU_FLAGS if flag in flags)])


def train_curve(spec: SpaceSpec, config: dict[str, Any], data: Any, seed: int) -> dict[str, Any]:
    """One config trained on one seed to max_epochs: each epoch's metrics and seconds since the start."""
    rows: list[dict[str, Any]] = []
    started, cpu = time.monotonic(), time.process_time()

    def report(row: dict[str, Any], checkpoint_dir: Path | None) -> None:
        rows.append({**row, ELAPSED: time.monotonic() - started, CPU: time.process_time() - cpu})
        if checkpoint_dir is not None:  # written as a study writes it (its time counts); not kept
            for file in checkpoint_dir.iterdir():
                file.unlink()
            checkpoint_dir.rmdir()

    ctx = make_context(spec, seed, "cpu", report=report)
    load_family(spec.trainable).train(spec.active_config(config), data, ctx)
    metrics = {m: [_round(r.get(m)) for r in rows] for m in spec.metrics}
    return {ELAPSED: [round(r[ELAPSED], 4) for r in rows], CPU: [round(r[CPU], 4) for r in rows], "metrics": metrics,
            "end_reason": rows[-1].get(END_REASON, "") if rows else "", "epochs": [r[EPOCH] for r in rows]}  # fmt: skip


def _round(value: Any) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return float(f"{float(value):.{DIGITS}g}")


def finished(path: Path) -> set[tuple[int, int]]:
    """The (config, seed) pairs the table holds; a torn last line (an interrupted write) is cut off."""
    done, good = set(), 0
    with path.open("rb") as f:
        for line in f:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                break
            good += len(line)
            if entry.get("kind") == ROW:
                done.add((entry["config"], entry["seed"]))
    with path.open("rb+") as f:
        f.truncate(good)
    return done


def open_table(path: Path, meta: dict[str, Any]) -> set[tuple[int, int]]:
    """Start the table with its metadata, or check that the existing one was recorded the same way."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(meta) + "\n")
        return set()
    with path.open() as f:
        old = json.loads(f.readline())
    for key in ("space", "settings", "data_fingerprint", "max_epochs", "draw_seed", "early_stopping"):
        if old.get(key) != meta[key]:
            raise TunerError(
                f"{path} was recorded with {key}={old.get(key)!r}, not {meta[key]!r}; "
                f"give another --out or the same options"
            )
    if old["configs"] != meta["configs"][: len(old["configs"])]:
        raise TunerError(f"{path}: its drawn configs differ from this draw; give another --out")
    if len(meta["configs"]) > len(old["configs"]):  # more configs asked for: the metadata line lists them all
        raise TunerError(f"{path} holds {len(old['configs'])} drawn configs; record more into another --out")
    return finished(path)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("space")
    parser.add_argument("--data", type=Path, help="the real dataset (default: generated)")
    parser.add_argument("--configs", type=int, required=True, help="configs to draw (the report's is the first)")
    parser.add_argument("--seeds", type=int, required=True, help="training seeds per config")
    parser.add_argument("--out", type=Path, required=True, help="folder of the table (SPACE.jsonl)")
    parser.add_argument("--max-epochs", type=int, help="train this many epochs (default: the space's max_epochs)")
    parser.add_argument(
        "--early-stopping",
        action="store_true",
        help="keep the space's in-trial early stopping: each curve ends where a study's trial would "
        "stop by itself (fewer epochs to record; the table replays that rule only)",
    )
    parser.add_argument("--draw-seed", type=int, default=0, help="seed of the config draw (default 0)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a fixed setting or data option, as `tuner run --set`",
    )
    args = parser.parse_args()
    if args.configs < 1 or args.seeds < 1:
        parser.error(f"--configs {args.configs} --seeds {args.seeds}: both must be at least 1")
    if args.data is not None and not args.data.exists():
        parser.error(f"--data {args.data}: no such file or folder")
    try:
        spaces.get(args.space)
    except (KeyError, TunerError, ValueError) as exc:
        parser.error(str(exc).strip("'\""))
    if args.max_epochs is not None and not 1 <= args.max_epochs:
        parser.error(f"--max-epochs {args.max_epochs}: must be at least 1")
    return args


def recording_spec(args) -> SpaceSpec:
    """The space as its trials train, without early stopping (every epoch recorded) and at --max-epochs."""
    spec = apply_settings(spaces.get(args.space), tuple(args.set))
    epochs = args.max_epochs or spec.max_epochs
    rule = spec.early_stopping if args.early_stopping else None
    return dataclasses.replace(
        spec, early_stopping=rule, max_epochs=epochs, grace_period=min(spec.grace_period, epochs)
    )


def record(args) -> Path:
    spec = recording_spec(args)
    configs = draw_configs(spec, args.configs, args.draw_seed)
    meta = {"kind": META, "space": spec.name, "settings": list(args.set), "max_epochs": spec.max_epochs,
            "draw_seed": args.draw_seed, "early_stopping": args.early_stopping, "metrics": list(spec.metrics),
            "metric": spec.metric, "mode": spec.mode,
            "data": str(args.data.name) if args.data else "generated", "data_fingerprint": fingerprint(args.data),
            "machine": machine(), "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "configs": configs}  # fmt: skip
    path = table_path(args.out, spec.name)
    done = open_table(path, meta)
    with tempfile.TemporaryDirectory() as tmp:
        data = load_dataset(spec.dataset, args.data, dict(spec.data_options), Path(tmp))
        # seed by seed: a recording cut short still covers every config it reached once
        todo = [(c, s) for s in range(args.seeds) for c in range(len(configs)) if (c, s) not in done]
        print(
            f"{spec.name}: {len(configs)} configs x {args.seeds} seeds, {len(done)} recorded, {len(todo)} to go; "
            f"{spec.max_epochs} epochs each; table {path}",
            flush=True,
        )
        # Each row names the code and the CPU that trained it: a table is appended to over days, on whichever
        # machine is at hand, and either changes a curve (the same code on another instruction set rounds
        # differently, and training amplifies the difference).
        made_by = {"commit": git_commit(), "cpu": cpu_kind()}
        for n, (c, seed) in enumerate(todo, 1):
            curve = train_curve(spec, configs[c], data, seed)
            row = {"kind": ROW, "config": c, "seed": seed, "load_avg": os.getloadavg()[0], **made_by, **curve}
            with path.open("a") as f:
                f.write(json.dumps(row) + "\n")
            values = [v for v in curve["metrics"][spec.metric] if v is not None]
            best = (max if spec.mode == "max" else min)(values) if values else None
            print(
                f"[{n}/{len(todo)}] config {c} seed {seed}: {len(curve['epochs'])} epochs in "
                f"{curve[ELAPSED][-1] if curve[ELAPSED] else 0:.1f}s ({curve[CPU][-1] if curve[CPU] else 0:.1f} CPU "
                f"s), best {spec.metric} {best}",
                flush=True,
            )
    return path


def main() -> None:
    args = parse_args()
    torch_threads()
    log = Path(tempfile.gettempdir()) / "record_curves.log"
    try:
        record(args)
    except TunerError as exc:
        raise SystemExit(f"error: {exc}") from None
    except Exception as exc:
        log.write_text(traceback.format_exc())
        raise SystemExit(f"error: {type(exc).__name__}: {exc} (traceback in {log})") from None


def torch_threads() -> None:
    import torch

    torch.set_num_threads(1)


if __name__ == "__main__":
    main()

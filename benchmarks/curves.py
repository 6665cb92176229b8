"""Recorded learning curves (``benchmarks/record_curves.py`` writes them): the table, and a config's nearest one.

A table is a JSON-lines file: its first line is the metadata (``kind: meta``: space, settings, data fingerprint,
machine, date, metrics, and the drawn ``configs``, complete points of the space), then one line per recorded
(config, seed): the seconds since the trial started and every metric, epoch by epoch. ``load_table`` gives them as
arrays, configs x seeds x epochs (x metrics), NaN where nothing was recorded: a partial table (a recording still
running, or a diverged trial's missing epochs) loads as it is, and only configs with at least one seed count.

Distance between two configs (``distances``): the Euclidean norm over the space's parameters, each scaled to
[0, 1]: a Uniform or IntUniform value by its range, a LogUniform one by its range in log space, a Choice as 0
(same value) or 1 (another); a parameter active in one config and not the other (a conditional one) counts 1, one
active in neither counts 0.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tuner.spec import Choice, IntUniform, LogUniform, SpaceSpec, Uniform

META = "meta"
ROW = "row"
ELAPSED = "elapsed_s"
"""Wall seconds since the trial started, at each epoch's report."""
CPU = "cpu_s"
"""CPU seconds the recording process spent since the trial started (one torch thread): the same work without the
waits a shared machine adds."""


def table_path(folder: Path, space: str) -> Path:
    return folder / f"{space}.jsonl"


def draw_configs(spec: SpaceSpec, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` complete configs of the space: the report's own first (when it has one), then seeded draws."""
    rng = np.random.default_rng(seed)
    configs = [spec.complete_config(spec.report_config)] if spec.report_config else []
    while len(configs) < n:
        configs.append({p.name: _draw(p.domain, rng) for p in spec.params})
    return configs[:n]


def _draw(domain, rng: np.random.Generator) -> Any:
    if isinstance(domain, LogUniform):
        return float(math.exp(rng.uniform(math.log(domain.low), math.log(domain.high))))
    if isinstance(domain, Uniform):
        return float(rng.uniform(domain.low, domain.high))
    if isinstance(domain, IntUniform):
        return int(rng.integers(domain.low, domain.high + 1))
    if isinstance(domain, Choice):
        return domain.values[int(rng.integers(len(domain.values)))]
    raise TypeError(f"unsupported domain {domain!r}")


@dataclass
class CurveTable:
    """configs[c]: a complete config; objectives[c, s, e, m]: metric m after epoch e+1 of config c on seed s;
    elapsed[c, s, e]: wall seconds since that trial started (``ELAPSED``), cpu[c, s, e] its CPU seconds (``CPU``);
    lengths[c, s]: epochs recorded (0: seed not recorded)."""

    meta: dict[str, Any]
    configs: list[dict[str, Any]]
    objectives: np.ndarray
    elapsed: np.ndarray
    cpu: np.ndarray
    lengths: np.ndarray

    def with_clock(self, clock: str) -> CurveTable:
        """The table whose ``elapsed`` is the wall seconds (``ELAPSED``) or the CPU seconds (``CPU``)."""
        if clock not in (ELAPSED, CPU):
            raise ValueError(f"clock {clock!r}: expected {ELAPSED} or {CPU}")
        return self if clock == ELAPSED else dataclasses.replace(self, elapsed=self.cpu)

    @property
    def metrics(self) -> list[str]:
        return list(self.meta["metrics"])

    @property
    def recorded(self) -> np.ndarray:
        """Indices of the configs with at least one recorded seed."""
        return np.flatnonzero((self.lengths > 0).any(axis=1))

    def seeds_of(self, config: int) -> np.ndarray:
        return np.flatnonzero(self.lengths[config] > 0)

    def curve(self, config: int, seed: int, metric: str) -> np.ndarray:
        n = self.lengths[config, seed]
        return self.objectives[config, seed, :n, self.metrics.index(metric)]


def load_table(path: Path) -> CurveTable:
    """The table at ``path``; a torn last line (a recording interrupted mid-write) is left out."""
    lines = path.read_text().splitlines()
    meta = json.loads(lines[0])
    if meta.get("kind") != META:
        raise ValueError(f"{path}: its first line is not a curve table's metadata")
    rows = []
    for line in lines[1:]:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    configs, metrics = meta["configs"], meta["metrics"]
    seeds = 1 + max((r["seed"] for r in rows), default=0)
    shape = (len(configs), seeds, int(meta["max_epochs"]))
    objectives, elapsed, cpu = np.full((*shape, len(metrics)), np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    lengths = np.zeros(shape[:2], dtype=int)
    for r in rows:
        n = len(r[ELAPSED])
        elapsed[r["config"], r["seed"], :n] = r[ELAPSED]
        cpu[r["config"], r["seed"], :n] = r[CPU]
        for m, name in enumerate(metrics):
            objectives[r["config"], r["seed"], :n, m] = [np.nan if v is None else v for v in r["metrics"][name]]
        lengths[r["config"], r["seed"]] = n
    return CurveTable(meta, configs, objectives, elapsed, cpu, lengths)


def _coordinate(spec: SpaceSpec, name: str, value: Any) -> float:
    domain = spec.param(name).domain
    if isinstance(domain, LogUniform):
        return (math.log(value) - math.log(domain.low)) / (math.log(domain.high) - math.log(domain.low))
    return (value - domain.low) / (domain.high - domain.low)


def distances(spec: SpaceSpec, config: dict[str, Any], others: list[dict[str, Any]]) -> np.ndarray:
    """The distance of ``config`` to each of ``others`` (see the module's docstring)."""
    active = spec.active_config(config)
    out = np.zeros(len(others))
    for i, other in enumerate(others):
        theirs, total = spec.active_config(other), 0.0
        for name in set(active) | set(theirs):
            if name not in active or name not in theirs:
                total += 1.0
            elif isinstance(spec.param(name).domain, Choice):
                total += float(active[name] != theirs[name])
            else:
                total += (_coordinate(spec, name, active[name]) - _coordinate(spec, name, theirs[name])) ** 2
        out[i] = math.sqrt(total)
    return out


def nearest(spec: SpaceSpec, table: CurveTable, config: dict[str, Any]) -> tuple[int, float]:
    """The recorded config closest to ``config`` (the lowest index among equals) and its distance."""
    candidates = table.recorded
    d = distances(spec, config, [table.configs[c] for c in candidates])
    i = int(np.argmin(d))
    return int(candidates[i]), float(d[i])

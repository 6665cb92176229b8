"""Report parity: every space's report config(s) trained as users get them, N seeds each, beside the report's figures.

    python benchmarks/report_parity.py --data-root DIR [--seeds N] [--spaces a,b,...] [--split-seeds K,...]
                                       [--set KEY=VALUE ...] [--cpus-per-trial C] [--num-cpus C] [--json FILE]

Each space's own config (as ``tuner run SPACE --config report``) and each of its ``report_variants`` (``--config
report:NAME``) is trained with seeds 0..N-1 (default 3) through ``tuner.study.run_study``, so the figures are
exactly what users get: the space's split, best-epoch weights, the test split scored once. The data is the real
files under DIR where they lie in the real layouts the loaders read (``LAYOUTS``: e.g.
DIR/steel_plates/faults_openml1504.csv, DIR/usps/), else the space's generated data, flagged ``synthetic``
(its figures are not comparable to the report's). Which dataset was found where, and which space found nothing,
is printed first. The HMS spaces on generated data take minutes to hours on a CPU and run only when
``--spaces`` names them. One Ray instance serves the whole benchmark; the studies' folders and MLflow store live in
a temporary folder removed at the end.

Output: one row per space, report config and test metric the report published (``report_results`` /
``report_variant_results``; a space that published none shows our test metrics beside "-"), and the searched
metric when the report published it (our figure: the best epoch's): the report's figure, ours as mean +- sd over
the seeds with every seed's value, ours minus the report's, the split and the data kind. ``--split-seeds`` trains
every seed again on each of those random splits (the space's ``split_seed`` data option), one row each: how much
of a gap the split alone explains where the report's split is unknown. ``--set`` passes a data option or fixed
setting to every run, as ``tuner run --set`` does (e.g. ``val_fraction=0.1``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tuner import spaces  # noqa: E402
from tuner.errors import TunerError, first_line  # noqa: E402
from tuner.spec import SpaceSpec  # noqa: E402

LAYOUTS: dict[str, tuple[str, ...]] = {
    "steel": ("steel_plates/faults_openml1504.csv", "steel_plates/steel_plates_faults_named.csv"),
    "usps": ("usps",),
    "mitbih": ("mitbih", "heartbeat"),
    "house_prices": ("house_prices/train.csv", "house-prices-advanced-regression-techniques/train.csv"),
    "pirate_pain": ("pirate_pain",),
    "hms": ("hms", "hms-harmful-brain-activity-classification"),
}
"""Where each dataset's files are looked for under --data-root, first match wins: a file for the loaders that
take one (steel, house prices), else the folder holding the files (DATA_FORMATS.md names them)."""
SLOW_ON_GENERATED = ("trainables.hms",)
"""Families left out on generated data unless --spaces names their spaces (ImageNet backbones on a CPU)."""


@dataclass
class Row:
    """One space and report config: its seeds' test figures, or the errors of the runs that failed."""

    space: str
    metric: str
    """The space's searched metric."""
    config: str
    data: str
    split_seed: int | None = None
    """None: the space's own split."""
    extra: tuple[str, ...] = ()
    """``--set KEY=VALUE`` settings of every run."""
    split: str = ""
    report: dict[str, float] = field(default_factory=dict)
    values: dict[int, dict[str, float]] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)

    @property
    def settings(self) -> tuple[str, ...]:
        """What the runs pass as ``tuner run --set``."""
        return self.extra + (() if self.split_seed is None else (f"split_seed={self.split_seed}",))


def find_data(root: Path, dataset: str) -> Path | None:
    """The first of ``LAYOUTS[dataset]`` that exists under ``root``, or None."""
    return next((root / rel for rel in LAYOUTS.get(dataset, ()) if (root / rel).exists()), None)


def chosen_spaces(named: str | None, found: dict[str, Path | None]) -> list[SpaceSpec]:
    """The spaces to run: those ``--spaces`` names (unknown names are an error listing the valid ones), or all but
    the slow families without real data."""
    if named:
        return [spaces.get(name.strip()) for name in named.split(",") if name.strip()]
    specs = [spaces.get(name) for name in spaces.names()]
    return [s for s in specs if found.get(s.dataset) is not None or s.trainable not in SLOW_ON_GENERATED]


def report_configs(spec: SpaceSpec) -> list[tuple[str, dict[str, float]]]:
    """``--config`` choices for the report's configs, each with the figures the report published for it."""
    configs = [("report", dict(spec.report_results))]
    configs += [(f"report:{n}", dict(spec.report_variant_results.get(n, {}))) for n in spec.report_variants]
    return configs


def split_text(spec: SpaceSpec, row: Row, export: dict[str, Any]) -> str:
    """The split options the run used and the size of the test split its figures come from."""

    def text(value: Any) -> str:
        return "/".join(f"{v:g}" for v in value) if isinstance(value, (list, tuple)) else str(value)

    given = dict(setting.split("=", 1) for setting in row.settings)
    used = {**spec.data_options, **given}
    options = " ".join(f"{k}={text(v)}" for k, v in used.items())
    size = (export.get("test_uncertainty") or {}).get("split_size")
    return f"{options}; test n={size}" if size else options


def run_seed(spec: SpaceSpec, row: Row, data: Path | None, seed: int, args, results: Path) -> dict[str, float]:
    """One ``--config`` study, as ``tuner run`` makes it; its test figures and the best epoch's searched metric."""
    from tuner.study import RunOptions, run_study

    name = f"parity-{spec.name}-{row.config.replace(':', '-')}-{row.split_seed}-s{seed}"
    options = RunOptions(
        config_file=row.config,
        data=data,
        seed=seed,
        results_dir=results,
        dashboard=False,
        verify_top=0,
        progress_every=0,
        cpus_per_trial=args.cpus_per_trial,
        settings=row.settings,
        name=name,
    )
    export = run_study(spec, options, echo=lambda line: None).export
    if not export.get("test"):
        raise TunerError(f"no test figures (trials: {export['search']['statuses']})")
    row.split = split_text(spec, row, export)
    return {spec.metric: float(export["metric"]["value"]), **{k: float(v) for k, v in export["test"].items()}}


def run_row(spec: SpaceSpec, row: Row, data: Path | None, args, results: Path) -> Row:
    """Every seed of one space, report config and split; a failed run is kept as its one-line error."""
    for seed in range(args.seeds):
        started = time.monotonic()
        try:
            row.values[seed] = run_seed(spec, row, data, seed, args, results)
        except (TunerError, RuntimeError, ValueError) as exc:
            row.errors[seed] = first_line(exc)
            print(f"  {row.space} {row.config} seed {seed}: failed: {row.errors[seed]}", file=sys.stderr, flush=True)
            continue
        shown = ", ".join(f"{k} {row.values[seed][k]:.4g}" for k in shown_metrics(row))
        split = "default" if row.split_seed is None else row.split_seed
        print(
            f"  {row.space} {row.config} split {split} seed {seed} ({row.data}): {shown} "
            f"[{time.monotonic() - started:.0f} s]",
            file=sys.stderr,
            flush=True,
        )
    return row


def shown_metrics(row: Row) -> list[str]:
    """The report's test figures and its searched-metric figure; all our test figures when it published none."""
    ours = sorted({k for values in row.values.values() for k in values})
    published = [k for k in row.report if k in ours and (k.startswith("test_") or k == row.metric)]
    if any(k.startswith("test_") for k in published):
        return published
    return published + [k for k in ours if k.startswith("test_")]


def table_lines(rows: list[Row]) -> list[str]:
    """The table: one line per row and metric, then the runs that failed."""
    head = (
        f"{'space':17} {'config':14} {'metric':20} {'report':>9} {'ours mean +- sd':>19} {'ours-report':>11}  "
        f"{'per seed (0, 1, ...)':36} {'data':9} split"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        for metric in shown_metrics(row):
            seeds = [v[metric] for v in row.values.values() if metric in v]
            report = row.report.get(metric)
            mean = statistics.fmean(seeds)
            sd = statistics.stdev(seeds) if len(seeds) > 1 else 0.0
            gap = _num(mean - report, mean) if report is not None else "-"
            lines.append(
                f"{row.space:17} {row.config:14} {metric:20} {_num(report, report):>9} "
                f"{_num(mean, mean) + ' +- ' + _num(sd, mean):>19} {gap:>11}  "
                f"{' '.join(_num(v, mean) for v in seeds):36} {row.data:9} {row.split}"
            )
        lines += [f"{row.space:17} {row.config:14} seed {s} failed: {e}" for s, e in row.errors.items()]
    return lines


def _num(value: float | None, scale: float | None) -> str:
    """Four decimals for figures of ``scale`` below 100 (accuracies, losses); fewer for larger ones (about four
    significant digits, none from 1,000 up: prices)."""
    if value is None:
        return "-"
    if scale is None or abs(scale) < 100:
        return f"{value:.4f}"
    return f"{value:.{max(0, 4 - len(str(int(abs(scale)))))}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True, help="folder holding the real datasets (LAYOUTS)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per report config (default 3)")
    parser.add_argument("--spaces", help="comma-separated spaces (default: all but HMS on generated data)")
    parser.add_argument(
        "--split-seeds",
        type=lambda t: [int(k) for k in t.split(",")],
        help="comma-separated split seeds: every seed again on each of these random splits",
    )
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a data option or fixed setting for every run, as tuner run --set (repeatable)",
    )
    parser.add_argument("--cpus-per-trial", type=float, help="CPUs (torch threads) per run (default: the space's)")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the local Ray instance (default: all)")
    parser.add_argument("--json", type=Path, help="also write every seed's figures to this JSON file")
    args = parser.parse_args()
    if not args.data_root.is_dir() or args.seeds < 1:
        parser.error(f"--data-root {args.data_root} must be a folder and --seeds at least 1")

    found = {name: find_data(args.data_root, name) for name in LAYOUTS}
    try:
        specs = chosen_spaces(args.spaces, found)
    except TunerError as exc:
        parser.error(str(exc))
    for spec in specs:
        where = found.get(spec.dataset)
        tried = ", ".join(str(args.data_root / rel) for rel in LAYOUTS.get(spec.dataset, ()))
        print(f"{spec.name}: {f'real data {where}' if where else f'found nothing at {tried}: generated data'}")

    from tuner.cluster import connect

    cluster = connect(None, dashboard=False, num_cpus=args.num_cpus, preload=tuple({s.trainable for s in specs}))
    print(f"ray: {cluster.describe()}; {args.seeds} seed(s) per report config", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="report-parity-") as tmp:
        for spec in specs:
            data = found.get(spec.dataset)
            for choice, published in report_configs(spec):
                for split_seed in args.split_seeds or [None]:
                    kind = "real" if data else "synthetic"
                    row = Row(spec.name, spec.metric, choice, kind, split_seed, tuple(args.settings), report=published)
                    rows.append(run_row(spec, row, data, args, Path(tmp)))
    print("\n".join(table_lines(rows)))
    if args.json:
        args.json.write_text(json.dumps([row.__dict__ for row in rows], indent=1, default=str))


if __name__ == "__main__":
    main()

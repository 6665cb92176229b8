"""Search efficiency in simulated time: strategies replayed on recorded learning curves, at many workers.

Each strategy (``<searcher>_<scheduler>`` as in ``benchmarks/search_efficiency.py``, optionally with settings:
``optuna_asha:grace=10:rf=2:brackets=3:startup=5:max_concurrent=4``) runs as the study builds it
(``benchmarks/simulator.py``) against a curve table (``benchmarks/record_curves.py``), for every worker count in
--workers and seed in 0..--seeds-1, one run per (strategy, workers, seed) at the largest budget: the best so far at
a smaller budget is read off the same run's anytime curve. Budgets are in trial-lengths: the median recorded
seconds of a trial that runs until it stops by itself (no scheduler).

Printed per worker count and budget: each strategy's median time to the target with a 95 % bootstrap interval
(seeds resampled; a run that never reached it counts as the budget, and the table says how many did not), its
speedup over random + FIFO (the ratio of medians, both resampled), and the median best at the budget. The target is
by default the 95th percentile of the recorded configs' scores (each config's mean over its seeds; --target to
give one). Then how far the searchers' proposals were from their nearest recorded config. One PNG per worker
count: each strategy's median best-so-far with its 25-75 % band.

    python benchmarks/simulate.py SPACE --table FILE [--workers 1,2,8,32] [--seeds 30]
        [--budgets 3,10,30,100] [--first-seed 1] [--strategies random_fifo,optuna_asha] [--target VALUE] [--clock cpu_s]
        [--decision-cost SECONDS] [--trial-overhead SECONDS] [--plots DIR] [--validate TIMELINES]

With --validate (a file ``search_efficiency.py --timelines`` wrote) it instead simulates that file's strategies
at W=2 and its budget in seconds, and draws the real runs' median and 25-75 % band beside the simulated ones.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from benchmarks.curves import CPU, ELAPSED, CurveTable, load_table  # noqa: E402
from benchmarks.search_efficiency import (  # noqa: E402
    REFERENCE,
    STRATEGIES,
    best_so_far,
    parse_strategy,
    quantile,
    time_to_target,
)
from benchmarks.simulator import SimRun, Strategy, natural_end, simulate, simulation_spec, trial_scores  # noqa: E402
from tuner import spaces  # noqa: E402
from tuner.errors import TunerError  # noqa: E402
from tuner.spec import SpaceSpec  # noqa: E402

BOOTSTRAP = 2000
CURVE_POINTS = 200


def trial_length(spec: SpaceSpec, table: CurveTable) -> float:
    """The median seconds of a recorded trial run until it stops by itself."""
    lengths = [
        table.elapsed[c, s, natural_end(spec, table, c, s)[0] - 1] for c in table.recorded for s in table.seeds_of(c)
    ]
    return float(np.median(lengths))


def config_scores(spec: SpaceSpec, table: CurveTable) -> np.ndarray:
    """Each recorded config's score (its running best where it stops by itself), the mean over its seeds."""
    out = []
    for c in table.recorded:
        ends = [
            trial_scores(spec, table.curve(c, s, spec.metric))[natural_end(spec, table, c, s)[0] - 1]
            for s in table.seeds_of(c)
        ]
        out.append(float(np.mean(ends)))
    return np.array(out)


def rank_agreement(spec: SpaceSpec, table: CurveTable) -> str:
    """How early a curve tells its final rank: Spearman's correlation, over recorded (config, seed) curves, between
    the score after epoch e and the score where the trial stops by itself, at the epochs ASHA's rungs sit at."""
    pairs = [(c, s) for c in table.recorded for s in table.seeds_of(c)]
    scores = [trial_scores(spec, table.curve(c, s, spec.metric)) for c, s in pairs]
    ends = [natural_end(spec, table, c, s)[0] for c, s in pairs]
    finals = np.array([score[end - 1] for score, end in zip(scores, ends, strict=True)])
    cells = []
    for epoch in sorted({1, spec.grace_period, 3 * spec.grace_period, 9 * spec.grace_period}):
        early = np.array([score[min(epoch, end) - 1] for score, end in zip(scores, ends, strict=True)])
        if len(pairs) > 2:
            rho = np.corrcoef(early.argsort().argsort(), finals.argsort().argsort())[0, 1]
            cells.append(f"epoch {epoch}: {rho:.2f}")
    return "rank correlation of a curve's score at epoch e with its final score (Spearman): " + ", ".join(cells)


def bootstrap(values: np.ndarray, rng: np.random.Generator, reference: np.ndarray | None = None) -> np.ndarray:
    """Medians of ``values`` resampled (or the ratio median(reference) / median(values), each resampled)."""
    pick = rng.integers(len(values), size=(BOOTSTRAP, len(values)))
    medians = np.median(values[pick], axis=1)
    if reference is None:
        return medians
    ref = np.median(reference[rng.integers(len(reference), size=(BOOTSTRAP, len(reference)))], axis=1)
    return ref / np.maximum(medians, 1e-9)


def times_to_target(runs: list[SimRun], target: float, mode: str, budget: float) -> tuple[np.ndarray, int]:
    """Each run's time to the target (the budget where it never got there) and how many never did."""
    reached = [time_to_target(run.timeline, target, mode, budget) for run in runs]
    return np.array([budget if t is None else t for t in reached]), sum(t is None for t in reached)


def print_table(
    spec: SpaceSpec, runs: dict[str, list[SimRun]], workers: int, budget: float, unit: float, target: float
) -> None:
    """One worker count at one budget: time to target, its interval, the speedup and the best at the budget."""
    rng = np.random.default_rng(0)
    ref, _ = times_to_target(runs[REFERENCE], target, spec.mode, budget)
    print(f"\nW={workers}, budget {budget / unit:g} trial-lengths ({budget:.0f}s)")
    print(f"{'strategy':<24} {'time to target [95% CI]':>30} {'missed':>7} {'speedup [95% CI]':>24} {'best':>8}")
    for name, strategy_runs in runs.items():
        times, missed = times_to_target(strategy_runs, target, spec.mode, budget)
        low, high = np.percentile(bootstrap(times, rng), [2.5, 97.5])
        speed = bootstrap(times, rng, ref)
        s_low, s_high = np.percentile(speed, [2.5, 97.5])
        best = quantile(
            np.array([[best_so_far(r.timeline, np.array([budget]), spec.mode)[0]] for r in strategy_runs]),
            50,
            spec.mode,
        )[0]
        print(
            f"{name:<24} {np.median(times):>9.0f}s [{low:>7.0f}, {high:>7.0f}]s {f'{missed}/{len(times)}':>7} "
            f"{np.median(ref) / max(np.median(times), 1e-9):>7.2f}x [{s_low:5.2f}, {s_high:6.2f}] "
            f"{best:>8.4f}"
        )


def print_proximity(runs: dict[str, list[SimRun]]) -> None:
    """How far each strategy's proposals were from the recorded config whose curve they got."""
    print("\nproposals' distance to their nearest recorded config (0: a recorded config replayed exactly)")
    for name, strategy_runs in runs.items():
        d = np.concatenate([r.distances for r in strategy_runs])
        print(
            f"{name:<24} {len(d):>7} trials  exact {np.mean(d == 0):6.1%}  median {np.median(d):.3f}  "
            f"90th pct {np.percentile(d, 90):.3f}  max {d.max():.3f}"
        )


def plot(
    spec: SpaceSpec,
    curves: dict[str, np.ndarray],
    times: np.ndarray,
    target: float,
    title: str,
    path: Path,
    real: dict[str, np.ndarray] | None = None,
) -> None:
    """Median best-so-far with its 25-75 % band per strategy; ``real``: real runs' curves drawn dashed beside."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5))
    colours = plt.get_cmap("tab10").colors
    for i, (name, values) in enumerate(curves.items()):
        colour = colours[i % len(colours)]
        low, mid, high = (quantile(values, q, spec.mode) for q in (25, 50, 75))
        ax.plot(times, mid, color=colour, label=f"{name} (simulated)")
        ax.fill_between(times, low, high, color=colour, alpha=0.15)
        if real and name in real:
            low, mid, high = (quantile(real[name], q, spec.mode) for q in (25, 50, 75))
            ax.plot(times, mid, color=colour, linestyle="--", label=f"{name} (real)")
            ax.fill_between(times, low, high, color=colour, alpha=0.08, hatch="//", edgecolor=colour)
    ax.axhline(target, color="grey", linestyle=":", linewidth=1, label=f"target {target:.4f}")
    finite = np.concatenate(
        [
            v[:, len(times) // 10 :][np.isfinite(v[:, len(times) // 10 :])]
            for v in [*curves.values(), *(real or {}).values()]
        ]
    )
    if finite.size:
        ax.set_ylim(np.percentile(finite, 5) - 0.01, finite.max() + 0.01)
    ax.set(xlabel="seconds since the first trial started", ylabel=f"best {spec.metric} so far", title=title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_all(
    spec: SpaceSpec, table: CurveTable, strategies: list[str], workers: int, seeds: int, budget: float, args
) -> dict[str, list[SimRun]]:
    runs: dict[str, list[SimRun]] = {}
    for name in strategies:
        started = time.monotonic()
        strategy = Strategy.parse(name, parse_strategy)
        timer = time.process_time if args.clock == CPU else time.perf_counter
        runs[name] = [
            simulate(spec, table, strategy, workers, budget, seed, args.decision_cost, args.trial_overhead, timer)
            for seed in range(args.first_seed, args.first_seed + seeds)
        ]
        trials = sum(len(r.trials) for r in runs[name])
        print(
            f"  W={workers} {name}: {seeds} runs, {trials} trials, {time.monotonic() - started:.0f}s to simulate",
            flush=True,
        )
    return runs


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("space")
    parser.add_argument("--table", type=Path, required=True, help="the curve table (record_curves.py wrote it)")
    parser.add_argument("--workers", default="1,2,8,32", help="worker counts, comma-separated (default 1,2,8,32)")
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument(
        "--first-seed",
        type=int,
        default=1,
        help="seeds run from here (default 1: with the default --draw-seed 0 a table's configs are "
        "random seed 0's proposals: seed 0 would replay only recorded configs)",
    )
    parser.add_argument("--budgets", default="3,10,30,100", help="budgets in trial-lengths (default 3,10,30,100)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated (default: all)")
    parser.add_argument("--target", type=float, help="the score to reach (default: the recorded configs' 95th pct)")
    parser.add_argument(
        "--clock",
        choices=(ELAPSED, CPU),
        default=CPU,
        help="replay recorded CPU or wall seconds (default cpu_s: no busy-CPU waits)",
    )
    parser.add_argument(
        "--decision-cost",
        type=float,
        metavar="SECONDS",
        help="a fixed cost per searcher/scheduler call (default: their measured time)",
    )
    parser.add_argument(
        "--trial-overhead",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="added to every trial's start (a real study's per-trial cost; default 0)",
    )
    parser.add_argument("--plots", type=Path, default=Path("."), help="folder of the PNGs (default: here)")
    parser.add_argument(
        "--validate",
        type=Path,
        metavar="TIMELINES",
        help="compare with real runs (search_efficiency.py --timelines) at W=2",
    )
    args = parser.parse_args()
    try:
        spec = spaces.get(args.space)
    except (KeyError, TunerError, ValueError) as exc:
        parser.error(str(exc).strip("'\""))
    try:
        args.workers = [int(w) for w in args.workers.split(",")]
        args.budgets = [float(b) for b in args.budgets.split(",")]
    except ValueError as exc:
        parser.error(f"--workers/--budgets: expected comma-separated numbers ({exc})")
    if min(args.workers) < 1 or min(args.budgets) <= 0 or args.seeds < 1:
        parser.error(f"--workers {args.workers} --budgets {args.budgets} --seeds {args.seeds}: all must be positive")
    if not args.table.is_file():
        parser.error(f"--table {args.table}: no such file")
    strategies = list(
        dict.fromkeys([REFERENCE, f"{spec.default_searcher}_{spec.default_scheduler}", *args.strategies.split(",")])
    )
    try:
        for name in strategies:
            Strategy.parse(name, parse_strategy)
    except ValueError as exc:
        parser.error(str(exc))
    return args, spec, strategies


def measure(spec: SpaceSpec, table: CurveTable, strategies: list[str], args, target: float) -> None:
    unit = trial_length(spec, table)
    top = max(args.budgets) * unit
    times = np.linspace(0, top, CURVE_POINTS)
    print(f"trial-length {unit:.1f}s ({args.clock}); budgets {args.budgets} trial-lengths")
    for workers in args.workers:
        runs = run_all(spec, table, strategies, workers, args.seeds, top, args)
        for budget in args.budgets:
            print_table(spec, runs, workers, budget * unit, unit, target)
        print_proximity(runs)
        curves = {n: np.array([best_so_far(r.timeline, times, spec.mode) for r in rs]) for n, rs in runs.items()}
        path = args.plots / f"simulated_{spec.name}_w{workers}.png"
        plot(spec, curves, times, target, f"{spec.name}, simulated, W={workers}: median best so far (25-75 %)", path)
        print(f"plot: {path}")


def validate(spec: SpaceSpec, table: CurveTable, args, target: float) -> None:
    """Simulated against real runs at W=2 and the real runs' budget: the share of the real median curve's time
    points where the simulated median lies inside the real 25-75 % band."""
    saved = json.loads(args.validate.read_text())
    budget, real_runs = float(saved["budget"]), saved["runs"]
    times = np.linspace(0, budget, CURVE_POINTS)
    sims = run_all(spec, table, list(real_runs), 2, args.seeds, budget, args)
    sim = {n: np.array([best_so_far(r.timeline, times, spec.mode) for r in rs]) for n, rs in sims.items()}
    real = {
        n: np.array([best_so_far([tuple(p) for p in tl], times, spec.mode) for tl in tls])
        for n, tls in real_runs.items()
    }
    print(
        f"\nW=2, {budget:g}s; real: {args.validate} ({len(next(iter(real_runs.values())))} seeds), simulated "
        f"{args.seeds} seeds"
    )
    for name in real_runs:
        low, high = (quantile(real[name], q, spec.mode) for q in (25, 75))
        mid = quantile(sim[name], 50, spec.mode)
        ok = np.isfinite(low) & np.isfinite(mid)
        inside = (mid[ok] >= low[ok]) & (mid[ok] <= high[ok])
        end = [f"{quantile(c, 50, spec.mode)[-1]:.4f}" for c in (sim[name], real[name])]
        print(
            f"{name:<24} simulated median inside the real 25-75 % band at {inside.mean():.0%} of "
            f"{ok.sum()} time points; median best at the budget: simulated {end[0]}, real {end[1]}"
        )
    print_proximity(sims)
    path = args.plots / f"simulated_vs_real_{spec.name}.png"
    plot(spec, sim, times, target, f"{spec.name}, W=2: simulated (solid) and real (dashed) runs", path, real)
    print(f"plot: {path}")


def main() -> None:
    args, spec, strategies = parse_args()
    log = Path(tempfile.gettempdir()) / "simulate.log"
    try:
        run(args, spec, strategies)
    except Exception as exc:
        log.write_text(traceback.format_exc())
        raise SystemExit(f"error: {type(exc).__name__}: {exc} (traceback in {log})") from None


def run(args, spec: SpaceSpec, strategies: list[str]) -> None:
    table = load_table(args.table).with_clock(args.clock)
    spec = simulation_spec(spec, table)
    if table.meta["space"] != spec.name:
        raise SystemExit(f"error: {args.table} holds space {table.meta['space']}, not {spec.name}")
    scores = config_scores(spec, table)
    target = args.target if args.target is not None else float(np.percentile(scores, 95 if spec.mode == "max" else 5))
    print(
        f"{spec.name}: table {args.table} ({len(table.recorded)} configs, {int((table.lengths > 0).sum())} curves, "
        f"{table.meta['max_epochs']} epochs, settings {table.meta['settings']}); target {target:.4f}; best "
        f"recorded config {scores.max() if spec.mode == 'max' else scores.min():.4f}; decision time "
        f"{'measured' if args.decision_cost is None else f'{args.decision_cost:g}s a call'}; trial overhead "
        f"{args.trial_overhead:g}s"
    )
    print(rank_agreement(spec, table))
    if args.validate:
        validate(spec, table, args, target)
    else:
        measure(spec, table, strategies, args, target)


if __name__ == "__main__":
    main()

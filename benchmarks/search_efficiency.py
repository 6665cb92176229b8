"""Search efficiency: anytime curves of searcher + scheduler strategies at the same wall-clock budget.

For each strategy (``<searcher>_<scheduler>``, e.g. random_fifo, optuna_asha) and study seed, one study runs for
``--budget`` seconds (Ray Tune's time budget; the trial count is left unbounded). From the study's trial ledger
the best-so-far validation score is followed against wall time, counted from the first trial's start: a trial's
score counts from the moment it ended, a trial the budget stopped counts its running best at its last report (Ray
Tune's result timestamps, one-second resolution).

Printed per strategy: the median time to reach a target score (by default the 95th percentile of every trial score
seen across all runs, the 5th for a metric to minimise; or --target), the median best score at 25/50/100 % of the
budget, and the time-to-target against random + FIFO. A run that never reaches the target counts as the full
budget, and the table says how many did so. A PNG shows each strategy's median curve with its 25-75 % spread.
The last lines are the seed-by-seed ratios of random + FIFO's time-to-target to the default's (the spread) and
``speedup default/random_fifo=<x>``: random + FIFO's median time-to-target divided by the space's default
strategy's.

With ``--warm-start-trials N`` the default strategy runs cold and warm-started (``+warm``): per seed, an earlier
study of N trials with another seed (not timed: it stands for a study the user already has), then both budgeted
studies; the last line is ``speedup warm/cold=<x>``.

    python benchmarks/search_efficiency.py SPACE [--data PATH] [--budget 60] [--seeds 3]
        [--strategies random_fifo,optuna_asha] [--target VALUE] [--plot FILE] [--report-start]
        [--set KEY=VALUE ...] [--warm-start-trials N] [--timelines FILE] [--from-timelines FILE]

Without --data the space's generated data is used (SYNTHETIC in the output). The report's own config is not
evaluated first (it would hand every strategy the same head start) unless --report-start. Runs on one local Ray
instance; a strategy's studies run one after the other.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from trainables.reporting import SCORE  # noqa: E402
from tuner import spaces  # noqa: E402
from tuner.cluster import connect  # noqa: E402
from tuner.errors import TunerError, first_line  # noqa: E402
from tuner.internals.tune_files import newest_callback_states  # noqa: E402
from tuner.monitor.ledger import real_score  # noqa: E402
from tuner.settings import apply_settings  # noqa: E402
from tuner.spec import SCHEDULERS, SEARCHERS, SpaceSpec  # noqa: E402
from tuner.study import RunOptions, run_study  # noqa: E402

STRATEGIES = ("random_fifo", "random_asha", "hyperopt_asha", "optuna_asha", "optuna_grouped_asha", "optuna_gp_asha",
              "optuna_cmaes_asha", "optuna_hyperband")  # fmt: skip
REFERENCE = "random_fifo"
WARM = "+warm"
"""A strategy warm-started from an earlier study of the same seed (``--warm-start-trials``)."""
EARLIER_SEED = 10_000
"""Added to a seed for its earlier study, so the warm-started study does not replay the same random stream."""
UNBOUNDED_TRIALS = 100_000
"""The trial count of a budgeted study: the budget ends it."""
FRACTIONS = (0.25, 0.5, 1.0)
CURVE_POINTS = 200

Timeline = list[tuple[float, float]]
"""(seconds since the first trial started, score) of every trial with a score the study could choose by, by the
time it ended (or last reported, for a trial the budget stopped); see ``comparable_scores``."""


def parse_strategy(name: str) -> tuple[str, str]:
    """``optuna_grouped_asha`` -> (``optuna_grouped``, ``asha``)."""
    for scheduler in sorted(SCHEDULERS, key=len, reverse=True):
        searcher = name.removesuffix(f"_{scheduler}")
        if searcher != name and searcher in SEARCHERS and searcher != "grid":
            return searcher, scheduler
    searchers = ", ".join(s for s in SEARCHERS if s != "grid")
    raise ValueError(
        f"strategy {name!r}: expected SEARCHER_SCHEDULER with a searcher of {searchers} and a "
        f"scheduler of {', '.join(SCHEDULERS)}"
    )


def run_one(spec: SpaceSpec, strategy: str, seed: int, args, results: Path) -> tuple[Timeline, bool]:
    """One budgeted study; its trials' timeline and whether its data was synthetic. ``<strategy>+warm``: the
    strategy warm-started from this seed's earlier study (``earlier_study``)."""
    warm = (earlier_name(seed),) if strategy.endswith(WARM) else ()
    name = f"{strategy.replace(WARM, '-warm')}-{seed}"
    opts = study_options(
        args,
        results,
        strategy.removesuffix(WARM),
        seed,
        name,
        trials=UNBOUNDED_TRIALS,
        time_budget=args.budget,
        warm_start=warm,
    )
    run_dir = results / spec.name / str(opts.name)
    try:
        with redirect_stdout(io.StringIO()):
            study = run_study(spec, opts, echo=lambda line: None)
    except TunerError as exc:  # no trial ended with a score within the budget
        if not run_dir.exists():  # refused before it started: a bad option, not a slow strategy
            raise
        print(
            f"seed {seed} {strategy}: the study ended without a scored trial ({first_line(exc)}); trials the "
            f"budget stopped count with their last report",
            flush=True,
        )
        return trial_timeline(run_dir, apply_settings(spec, args.set)), args.data is None
    return trial_timeline(run_dir, apply_settings(spec, args.set)), bool(study.export["data"]["synthetic"])


def study_options(args, results: Path, strategy: str, seed: int, name: str, **options) -> RunOptions:
    """A benchmark study: the search alone (no re-verification, no report baseline, no dashboard, quiet)."""
    searcher, scheduler = parse_strategy(strategy)
    return RunOptions(
        searcher=searcher,
        scheduler=scheduler,
        seed=seed,
        data=args.data,
        results_dir=results,
        name=name,
        verify_top=0,
        report_baseline=False,
        dashboard=False,
        progress_every=0,
        report_start=args.report_start,
        settings=tuple(args.set),
        **options,
    )


def earlier_name(seed: int) -> str:
    return f"earlier-{seed}"


def earlier_study(spec: SpaceSpec, strategy: str, seed: int, args, results: Path) -> None:
    """The earlier study a warm start learns from: ``--warm-start-trials`` trials of ``strategy`` with another
    seed, not timed (it stands for a study the user ran before)."""
    opts = study_options(
        args, results, strategy, EARLIER_SEED + seed, earlier_name(seed), trials=args.warm_start_trials
    )
    with redirect_stdout(io.StringIO()):
        run_study(spec, opts, echo=lambda line: None)


def trial_timeline(run_dir: Path, spec: SpaceSpec) -> Timeline:
    """The trials of the study's ledger (from Ray Tune's last saved state of tuner's monitor) as a timeline."""
    saved = newest_callback_states(run_dir / "ray")
    if saved is None:
        return []
    ledger = next(s["ledger"] for s in saved.values() if isinstance(s, dict) and "ledger" in s)
    return comparable_scores(ledger.outcomes.values(), spec)


def comparable_scores(outcomes, spec: SpaceSpec) -> Timeline:
    """(seconds since the first trial started, score) of each trial whose score the study could choose by. A trial
    still running when the budget ran out has no end score: its running best at its last report counts. When the
    score is the last epoch's aggregate (a K-fold mean, ``score="last_epoch"``), only trials that ran every epoch
    count: a pruned trial's figure covers some folds only (the study ranks such trials last, too)."""
    reported = [o for o in outcomes if "timestamp" in o.last]
    if not reported:
        return []
    first_start = min(o.last["timestamp"] - o.last.get("time_total_s", 0.0) for o in reported)
    if spec.score == "last_epoch":
        reported = [o for o in reported if o.epochs >= spec.max_epochs]
    scored = [
        (o.last["timestamp"], o.score if o.score is not None else real_score(o.last.get(SCORE))) for o in reported
    ]
    return sorted((end - first_start, score) for end, score in scored if score is not None)


def best_so_far(timeline: Timeline, times: np.ndarray, mode: str) -> np.ndarray:
    """The best score at each of ``times`` (NaN before the first trial ended)."""
    pick = max if mode == "max" else min
    curve, best, i = np.full(len(times), np.nan), None, 0
    for k, t in enumerate(times):
        while i < len(timeline) and timeline[i][0] <= t:
            best = timeline[i][1] if best is None else pick(best, timeline[i][1])
            i += 1
        if best is not None:
            curve[k] = best
    return curve


def time_to_target(timeline: Timeline, target: float, mode: str, budget: float) -> float | None:
    """When the best so far first reached ``target`` (None: never within the budget)."""
    for t, score in timeline:
        if t <= budget and (score >= target if mode == "max" else score <= target):
            return t
    return None


def summarise(runs: dict[str, list[Timeline]], spec: SpaceSpec, budget: float, target: float) -> dict[str, float]:
    """Print the table; the median time-to-target per strategy (a run that never reached it counts as the budget)."""
    print(
        f"\n{'strategy':<20} {'time to target':>16} {'never reached':>14} "
        + " ".join(f"{f'best@{int(f * 100)}%':>10}" for f in FRACTIONS)
        + f" {'time / ' + REFERENCE:>20}"
    )
    medians: dict[str, float] = {}
    for strategy, timelines in runs.items():
        reached = [time_to_target(tl, target, spec.mode, budget) for tl in timelines]
        medians[strategy] = float(np.median([budget if t is None else t for t in reached]))
        bests = [[best_so_far(tl, np.array([f * budget]), spec.mode)[0] for tl in timelines] for f in FRACTIONS]
        cells = " ".join(_cell(quantile(np.array(b)[:, None], 50, spec.mode)[0]) for b in bests)
        missed = sum(t is None for t in reached)
        ratio = medians[strategy] / medians[REFERENCE] if REFERENCE in medians and medians[REFERENCE] else None
        print(
            f"{strategy:<20} {medians[strategy]:>15.1f}s {f'{missed}/{len(reached)}':>14} {cells} "
            f"{'-' if ratio is None else f'{ratio:.2f}x':>20}"
        )
    if any(time_to_target(tl, target, spec.mode, budget) is None for tls in runs.values() for tl in tls):
        print(f"never reached: that run counts as the full budget ({budget:g}s) in the median")
    print(
        "best@: the median run's best score by then; a run without a score yet counts as the worst ('-': the "
        "median run had none)"
    )
    return medians


def paired_ratios(slow: list[Timeline], fast: list[Timeline], target: float, mode: str, budget: float) -> str:
    """Seed by seed, ``slow``'s time-to-target over ``fast``'s: the spread behind the ratio of medians. A run that
    never reached the target makes its ratio a bound (``>=`` when ``slow`` never did, ``<=`` when ``fast`` never
    did; ``?`` when neither did)."""
    cells = []
    for a, b in zip(slow, fast, strict=True):
        ta, tb = (time_to_target(tl, target, mode, budget) for tl in (a, b))
        if ta is None and tb is None:
            cells.append("?")
            continue
        ratio = (budget if ta is None else ta) / max(budget if tb is None else tb, 1.0)
        cells.append(f"{'>=' if ta is None else '<=' if tb is None else ''}{ratio:.2f}")
    return " ".join(cells)


def quantile(curves: np.ndarray, q: float, mode: str) -> np.ndarray:
    """The ``q``-th percentile over runs (axis 0) of best-so-far values, a run without a score yet (NaN) counting
    as the worst; NaN where that percentile run has none. Always one run's own value (no interpolation: with an
    even number of runs the worse of the middle two), so a median curve never gets worse. ``q`` counts from the
    worst run for either mode."""
    sign = 1.0 if mode == "max" else -1.0  # higher is better from here on
    value = np.percentile(np.where(np.isnan(curves), -np.inf, sign * curves), q, axis=0, method="inverted_cdf")
    return np.where(np.isinf(value), np.nan, sign * value)


def _cell(value: float) -> str:
    return f"{'-':>10}" if np.isnan(value) else f"{value:>10.4f}"


def plot(runs: dict[str, list[Timeline]], spec: SpaceSpec, budget: float, target: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = np.linspace(0, budget, CURVE_POINTS)
    fig, ax = plt.subplots(figsize=(9, 5.5))
    colours = plt.get_cmap("tab10").colors
    for i, (strategy, timelines) in enumerate(runs.items()):
        curves = np.array([best_so_far(tl, times, spec.mode) for tl in timelines])
        low, mid, high = (quantile(curves, q, spec.mode) for q in (25, 50, 75))
        colour = colours[i % len(colours)]
        ax.plot(times, mid, label=strategy, color=colour)
        ax.fill_between(times, low, high, color=colour, alpha=0.15)
    ax.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"target {target:.4f}")
    _zoom(ax, runs, spec.mode, times)
    ax.set(
        xlabel="wall time since the first trial started (s)",
        ylabel=f"best {spec.metric} so far",
        title=f"{spec.name}: median best-so-far over seeds (band: 25-75 %)",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args() -> tuple[argparse.Namespace, SpaceSpec, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("space")
    parser.add_argument("--data", type=Path, help="the real dataset (default: generated)")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per study (default 60)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help=f"comma-separated (default {STRATEGIES})")
    parser.add_argument("--target", type=float, help="the score to reach (default: a percentile of all scores)")
    parser.add_argument("--plot", type=Path, help="the PNG (default search_efficiency_<space>.png here)")
    parser.add_argument("--report-start", action="store_true", help="evaluate the report's config first")
    parser.add_argument(
        "--warm-start-trials",
        type=int,
        default=0,
        metavar="N",
        help="compare the default strategy cold and warm-started from an earlier study of N trials "
        "(per seed, not timed) instead of the strategies",
    )
    parser.add_argument(
        "--timelines",
        type=Path,
        metavar="FILE",
        help="also write every run's timeline (seconds, score) as JSON, to recompute figures later",
    )
    parser.add_argument(
        "--from-timelines",
        type=Path,
        metavar="FILE",
        help="run nothing: print the table and draw the plot of the runs --timelines wrote",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a fixed setting or data option for every study, as `tuner run --set`",
    )
    args = parser.parse_args()
    spec = spaces.get(args.space)
    default = f"{spec.default_searcher}_{spec.default_scheduler}"
    strategies = list(dict.fromkeys([REFERENCE, default, *args.strategies.split(",")]))
    if args.warm_start_trials > 0:
        strategies = [default, default + WARM]
    try:
        for strategy in strategies:
            parse_strategy(strategy.removesuffix(WARM))
        apply_settings(spec, args.set)  # checked here: a bad --set would otherwise fail every study alike
    except (ValueError, TunerError) as exc:
        parser.error(str(exc))
    return args, spec, strategies


def collect(spec: SpaceSpec, strategies: list[str], args) -> tuple[dict[str, list[Timeline]], bool]:
    """Every strategy's budgeted study for every seed (seed by seed, so a slow spell of a shared machine hits
    every strategy alike); their timelines and whether the data was synthetic."""
    connect(None, dashboard=False, preload=(spec.trainable,))
    runs: dict[str, list[Timeline]] = {s: [] for s in strategies}
    synthetic = args.data is None
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            if args.warm_start_trials > 0:
                earlier_study(spec, strategies[0], seed, args, Path(tmp))
            for strategy in strategies:
                timeline, synthetic = run_one(spec, strategy, seed, args, Path(tmp))
                runs[strategy].append(timeline)
                best = max if spec.mode == "max" else min
                top = f"{best(s for _, s in timeline):.4f}" if timeline else "-"
                print(
                    f"seed {seed} {strategy:<20} {len(timeline):4d} scored trials, best {top}"
                    + (" (SYNTHETIC data)" if synthetic else ""),
                    flush=True,
                )
            if args.timelines:  # after every seed: an interrupted benchmark keeps the seeds it finished
                save_timelines(args.timelines, spec, args.budget, synthetic, runs)
    return runs, synthetic


def save_timelines(path: Path, spec: SpaceSpec, budget: float, synthetic: bool, runs: dict[str, list[Timeline]]):
    """Every finished run's timeline, for ``--from-timelines`` (written whole, then renamed into place)."""
    text = json.dumps({"space": spec.name, "budget": budget, "synthetic": synthetic, "runs": runs})
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)


def report(spec: SpaceSpec, args, runs: dict[str, list[Timeline]], synthetic: bool) -> None:
    """The table, the plot and the speedup lines."""
    scores = [s for tls in runs.values() for tl in tls for _, s in tl]
    if not scores:
        raise SystemExit("error: no trial produced a score within the budget; give a larger --budget")
    target = args.target if args.target is not None else float(np.percentile(scores, 95 if spec.mode == "max" else 5))
    how = "--target" if args.target is not None else f"{95 if spec.mode == 'max' else 5}th percentile of all scores"
    seeds = len(next(iter(runs.values())))
    print(
        f"\n{spec.name} ({'SYNTHETIC data' if synthetic else args.data}): {args.budget:g}s per study, "
        f"{seeds} seeds; {spec.metric} ({spec.mode}); target {target:.4f} ({how}); "
        f"report's config first: {'yes' if args.report_start else 'no'}"
        + "".join(f"; --set {pair}" for pair in args.set)
    )
    medians = summarise(runs, spec, args.budget, target)
    path = args.plot or Path(f"search_efficiency_{spec.name}.png")
    plot(runs, spec, args.budget, target, path)
    print(f"plot: {path}")
    default = f"{spec.default_searcher}_{spec.default_scheduler}"
    warm = default + WARM in runs
    slow, fast = (default, default + WARM) if warm else (REFERENCE, default)
    spread = paired_ratios(runs[slow], runs[fast], target, spec.mode, args.budget)
    print(f"time-to-target {slow}/{fast} per seed: {spread}")
    print(f"speedup {'warm/cold' if warm else 'default/random_fifo'}={medians[slow] / medians[fast]:.2f}")


def _zoom(ax, runs: dict[str, list[Timeline]], mode: str, times: np.ndarray) -> None:
    """The y range of the curves after the first tenth of the budget: the first trials' low scores would squash
    where the strategies differ into a line."""
    later = times >= times[-1] / 10
    values = [
        quantile(np.array([best_so_far(tl, times, mode) for tl in tls]), q, mode)[later]
        for tls in runs.values()
        for q in (25, 75)
    ]
    values = np.concatenate(values)
    values = values[np.isfinite(values)]
    if values.size:
        pad = max(0.05 * (values.max() - values.min()), 1e-3)
        ax.set_ylim(values.min() - pad, values.max() + pad)


def main() -> None:
    args, spec, strategies = parse_args()
    if args.from_timelines:
        saved = json.loads(args.from_timelines.read_text())
        runs = {k: [[tuple(point) for point in tl] for tl in tls] for k, tls in saved["runs"].items()}
        args.budget, synthetic = saved["budget"], saved.get("synthetic", args.data is None)
    else:
        runs, synthetic = collect(spec, strategies, args)
    report(spec, args, runs, synthetic)


if __name__ == "__main__":
    main()

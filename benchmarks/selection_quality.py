"""Selection quality: how well the config a study chooses holds up on the test split, per selection strategy.

At the same trial budget and study seed, each strategy chooses a config:

    single          the report's single train/validation split (cv_folds=1), the best trial's validation score
    single+verify   as single, then the top 3 configs trained again with 3 fresh seeds; the best mean is chosen
    cv              K-fold cross-validation over the non-test rows (cv_folds=K), the best trial's mean over folds
    cv+verify       as cv, then the top 3 configs trained again with 3 fresh seeds (and reshuffled folds)

For each study seed and strategy it prints the chosen config's validation figure (what the strategy selected on),
its test figure (the held-out split, scored once) and the drop from one to the other; then per strategy the mean
and sd over seeds. The test rows are the same for every strategy (the loader's split), so the test figures compare
directly; the drop says how much the selection was luck.

    python benchmarks/selection_quality.py --space steel_multiclass [--data FILE] [--seeds 5] [--trials 20] [--k 5]
        [--strategies single,cv+verify]

Without --data the space's generated data is used (and said so). Runs on one local Ray instance.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from trainables.cv import CV_FOLDS  # noqa: E402
from tuner import spaces  # noqa: E402
from tuner.cluster import connect  # noqa: E402
from tuner.study import RunOptions, run_study  # noqa: E402

STRATEGIES = ("single", "single+verify", "cv", "cv+verify")


def options(strategy: str, k: int, seed: int, trials: int, data: Path | None, results: Path) -> RunOptions:
    folds = k if strategy.startswith("cv") else 1
    name = f"{strategy.replace('+', '-')}-{seed}"
    return RunOptions(
        trials=trials,
        seed=seed,
        data=data,
        results_dir=results,
        name=name,
        dashboard=False,
        progress_every=0,
        settings=(f"{CV_FOLDS}={folds}",),
        verify_top=3 if strategy.endswith("+verify") else 0,
        verify_seeds=3,
        report_baseline=False,
    )


def chosen_figures(export: dict, metric: str) -> tuple[float, float]:
    """The chosen config's validation figure (the verified mean when verified) and its test figure."""
    value = export["metric"]["value"]
    verified = export.get("verification")
    if verified:
        chosen = next(c for c in verified["candidates"] if c["trial_number"] == verified["chosen_trial_number"])
        value = chosen["mean"] if chosen["mean"] is not None else value
    return value, export["test"][metric.replace("val_", "test_", 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="steel_multiclass")
    parser.add_argument("--data", type=Path, help="the real dataset (default: generated)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--k", type=int, default=5, help="folds of the cv strategies")
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help=f"comma-separated, of {STRATEGIES}")
    args = parser.parse_args()
    strategies = args.strategies.split(",")
    unknown = sorted(set(strategies) - set(STRATEGIES))
    if unknown:
        parser.error(f"--strategies: unknown {', '.join(unknown)}; accepted: {', '.join(STRATEGIES)}")

    spec = spaces.get(args.space)
    connect(None, dashboard=False, preload=(spec.trainable,))
    rows: dict[str, list[tuple[float, float, float]]] = {s: [] for s in strategies}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for strategy in strategies:
                started = time.monotonic()
                with redirect_stdout(io.StringIO()):
                    study = run_study(spec, options(strategy, args.k, seed, args.trials, args.data, Path(tmp)))
                val, test = chosen_figures(study.export, spec.metric)
                rows[strategy].append((val, test, time.monotonic() - started))
                synthetic = " (SYNTHETIC data)" if study.export["data"]["synthetic"] else ""
                print(
                    f"seed {seed} {strategy:<13} val {val:.4f} test {test:.4f} drop {val - test:+.4f} "
                    f"({rows[strategy][-1][2]:.0f}s){synthetic}",
                    flush=True,
                )
    print(
        f"\n{args.space}: {args.trials} trials per study, {args.seeds} study seeds, k={args.k}; mean +- sd over seeds"
    )
    print(f"{'strategy':<13} {'validation':>17} {'test':>17} {'val - test':>17} {'wall':>8}")
    for strategy, values in rows.items():
        cols = [[v[i] for v in values] for i in range(3)]
        drop = [v - t for v, t in zip(cols[0], cols[1], strict=True)]
        print(
            f"{strategy:<13} {_mean_sd(cols[0]):>17} {_mean_sd(cols[1]):>17} {_mean_sd(drop):>17} "
            f"{statistics.fmean(cols[2]):7.0f}s"
        )


def _mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.4f} +- {sd:.4f}"


if __name__ == "__main__":
    main()

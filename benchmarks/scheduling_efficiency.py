"""Scheduling efficiency: 40 one-second trials through tuner's driver and through plain Ray Tune defaults.

Both run in one process on one Ray instance (started first, not timed), tuner first so that it gets no warm
worker processes from the plain run. For each: wall time, ideal time (trials x 1 s / slots) and efficiency =
ideal / wall. tuner's wall covers its whole ``run_study``: data, MLflow parent and 40 child runs, Tune, summary.

    python benchmarks/scheduling_efficiency.py [--trials 40] [--sleep 1.0]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

# The sleep space and family (benchmarks/) are not part of the installed packages: this script and the Ray
# workers it starts (which inherit PYTHONPATH) import them from the project root.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)

from benchmarks.sleep_space import FAMILY, sleep_spec  # noqa: E402
from tuner.cluster import connect  # noqa: E402
from tuner.schema import TrialStatus  # noqa: E402
from tuner.study import RunOptions, run_study  # noqa: E402


def plain_ray(trials: int, seconds: float, storage: Path) -> float:
    from ray import tune

    from tuner.internals.ray_tune import restore_default_actor_env

    # tuner drops Tune's default per-actor env var (see tuner.session); plain Ray Tune runs with its own default.
    restore_default_actor_env()

    def trainable(config):
        time.sleep(seconds)
        tune.report({"score": config["x"]})

    tuner = tune.Tuner(
        trainable,
        param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(num_samples=trials, metric="score", mode="max"),
        run_config=tune.RunConfig(storage_path=str(storage), name="plain", verbose=0),
    )
    start = time.monotonic()
    tuner.fit()
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--sleep", type=float, default=1.0)
    args = parser.parse_args()

    t0 = time.monotonic()
    cluster = connect(None, dashboard=False, preload=(FAMILY,))  # as `tuner run` starts Ray
    print(f"ray start (not timed): {time.monotonic() - t0:.1f}s; {cluster.describe()}")
    slots = int(cluster.cpus)
    ideal = args.trials * args.sleep / slots

    with tempfile.TemporaryDirectory() as tmp:
        # The search alone: verification would add trials the plain run does not have.
        opts = RunOptions(
            trials=args.trials,
            seed=0,
            results_dir=Path(tmp) / "results",
            dashboard=False,
            report_start=False,
            name="bench",
            verify_top=0,
        )
        start = time.monotonic()
        with redirect_stdout(io.StringIO()):
            result = run_study(sleep_spec(sleep_s=args.sleep), opts)
        tuner_wall = time.monotonic() - start
        assert result.counts.get(TrialStatus.COMPLETED) == args.trials, result.counts
        plain_wall = plain_ray(args.trials, args.sleep, Path(tmp) / "plain")

    for label, wall in (("tuner", tuner_wall), ("plain", plain_wall)):
        print(
            f"{label:5}: wall {wall:6.1f}s  ideal {ideal:5.1f}s ({args.trials} x {args.sleep:g}s / {slots} slots)"
            f"  efficiency {ideal / wall:.2f}"
        )
    print(f"tuner: first trial running {result.first_trial_after_s:.1f}s after the tuner package was imported")
    print(f"efficiency tuner={ideal / tuner_wall:.2f} plain={ideal / plain_wall:.2f}")


if __name__ == "__main__":
    main()

"""Where a study's wall time goes: start-up to the first trial, each phase, and the search phase's compute share.

    python benchmarks/study_profile.py SPACE [--trials N] [--set k=v ...] [any other `tuner run` option]
        [--profile-json FILE]

Runs the study as ``python -m tuner run SPACE ...`` does (``tuner.cli.main``, the same code path), with timers
wrapped around the phases of ``run_study`` and the steps of its prepare phase (those present: a renamed step is
simply not split out), then prints:

- start-up: from this script's start to the first trial's start (imports, plan, data, Ray and the dashboard,
  MLflow, Tune's start-up);
- each phase's wall time (search, verify, baseline, evaluate, analyze, publish, export);
- the search phase's slot time (its wall time x trial slots) split into the families' epoch computations (the
  compute share: the sum of the trials' ``compute_s``), checkpoint writing (``checkpoint_s``), Tune's hand-over of
  the reports (``report_s``), the trials' own start-up (Tune's ``time_total_s`` less those three: data, model
  building) and the rest outside the trials (actor start-up, scheduling, the driver's callbacks with MLflow, idle
  slots). The trial fields come from ``trainables.reporting``; a tuner that does not report them shows the
  in-trial share (``time_total_s``) only.
"""

from __future__ import annotations

import time

SCRIPT_START = time.monotonic()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import functools  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

TIME_TOTAL = "time_total_s"
"""Tune's own field: seconds a trial has been running (its trainable's time)."""
TRIAL_TIMERS = {
    "compute_s": "compute share: the families' epoch computations",
    "checkpoint_s": "checkpoint writing",
    "report_s": "reports handed over to Tune (with their checkpoints)",
}
PHASES = ("search", "verify", "baseline", "evaluate", "references", "publish", "analyze", "export", "tidy")
PREPARE_STEPS = (
    ("tuner.study.prepare", "_load_data", "data"),
    ("tuner.study.prepare", "place", "Ray, dashboard, GPU share"),
    ("tuner.tracking", "StudyTracker", "MLflow store"),
    ("tuner.study.prepare", "_open_parent_run", "MLflow parent run"),
)


class Timers:
    """Wall seconds per label and what the wrapped calls returned, filled while the study runs."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.starts: dict[str, float] = {}
        self.calls: dict[str, tuple] = {}
        self.returned: dict[str, object] = {}

    def wrap(self, module, name: str, label: str) -> None:
        original = getattr(module, name, None)
        if original is None:  # a renamed step would otherwise drop out of the profile unnoticed
            raise SystemExit(f"study_profile: {module.__name__}.{name} ({label}) no longer exists; update this script")

        @functools.wraps(original)
        def timed(*args, **kwargs):
            start = time.monotonic()
            self.starts.setdefault(label, start)
            self.calls[label] = args
            try:
                result = original(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.monotonic() - start
            self.returned[label] = result
            return result

        setattr(module, name, timed)

    def wrap_context(self, module, name: str, label: str) -> None:
        """A context manager function: timed from the call to the end of its ``__enter__``."""
        original = getattr(module, name)

        @contextlib.contextmanager
        def timed(*args, **kwargs):
            start = time.monotonic()
            self.starts[label] = start
            with original(*args, **kwargs) as value:
                self.seconds[label] = time.monotonic() - start
                yield value

        setattr(module, name, timed)


def install(timers: Timers) -> None:
    study = importlib.import_module("tuner.study")
    timers.wrap(study, "resolve", "plan")
    timers.wrap(importlib.import_module("tuner.warmstart"), "warm_start", "warm start")
    timers.wrap_context(study, "prepare", "prepare")
    for module, name, label in PREPARE_STEPS:
        timers.wrap(importlib.import_module(module), name, label)
    for phase in PHASES:
        timers.wrap(study, phase, phase)


def search_shares(timers: Timers) -> dict[str, float] | None:
    """The search phase's slot time split by where it went (shares of wall x slots), from its trials' last rows."""
    if "search" not in timers.returned:
        return None
    from tuner.study.placement import trial_slots

    study = timers.calls["search"][0]
    opts = study.plan.options
    slots = opts.max_concurrent or trial_slots(study.cluster, opts.cpus_per_trial)
    rows = [outcome.last for outcome in timers.returned["search"].ledger.outcomes.values()]
    slot_seconds = timers.seconds["search"] * slots
    in_trials = sum(float(row.get(TIME_TOTAL) or 0.0) for row in rows)
    out = {"slots": slots, "slot_seconds": slot_seconds, "trials": len(rows)}
    if rows and all(key in row for row in rows for key in TRIAL_TIMERS):
        parts = {key: sum(float(row[key]) for row in rows) for key in TRIAL_TIMERS}
        out.update({key: value / slot_seconds for key, value in parts.items()})
        out["trial_start_s"] = (in_trials - sum(parts.values())) / slot_seconds
    out["in_trials"] = in_trials / slot_seconds
    out["outside_trials"] = 1.0 - out["in_trials"]
    return out


def first_trial_after(timers: Timers) -> float | None:
    """Seconds from this script's start to the first trial's start."""
    import tuner

    result = timers.returned.get("search")
    after = getattr(getattr(result, "ledger", None), "first_trial_after", None)
    return None if after is None else tuner.PROCESS_START - SCRIPT_START + after


def report(timers: Timers, wall: float, imports: float) -> dict:
    first = first_trial_after(timers)
    prepare = {"prepare (all)": timers.seconds["prepare"]} if "prepare" in timers.seconds else {}
    prepare.update({label: timers.seconds[label] for _, _, label in PREPARE_STEPS if label in timers.seconds})
    profile = {"wall_s": wall, "imports_s": imports, "first_trial_s": first,
               "phases_s": {label: timers.seconds[label] for label in PHASES if label in timers.seconds},
               "prepare_s": prepare,
               "plan_s": timers.seconds.get("plan", 0.0) + timers.seconds.get("warm start", 0.0),
               "search": search_shares(timers)}  # fmt: skip
    if first is not None and "search" in timers.starts:
        profile["search_to_first_trial_s"] = first - (timers.starts["search"] - SCRIPT_START)
    return profile


def print_profile(p: dict) -> None:
    line = "{:<58}{:>9}".format
    print("\n== where the study's time went ==")
    first = p["first_trial_s"]
    print(line("start-up to the first trial", f"{first:.1f} s" if first is not None else "-"))
    print(line("  imports (tuner, its CLI and study phases)", f"{p['imports_s']:.1f} s"))
    print(line("  plan and warm start", f"{p['plan_s']:.1f} s"))
    for label, seconds in p["prepare_s"].items():
        print(line(f"  {label}" if label.startswith("prepare") else f"    {label}", f"{seconds:.1f} s"))
    if "search_to_first_trial_s" in p:
        print(line("  search set-up to the first trial (Tune, trial actor)", f"{p['search_to_first_trial_s']:.1f} s"))
    for phase, seconds in p["phases_s"].items():
        print(line(f"phase {phase}", f"{seconds:.1f} s"))
    print(line("whole study (this script's wall time)", f"{p['wall_s']:.1f} s"))
    s = p["search"]
    if s is None:
        return
    print(f"search: {s['trials']} trials, wall x {s['slots']} slot(s) = {s['slot_seconds']:.1f} slot-s, shares:")
    for key, label in TRIAL_TIMERS.items():
        if key in s:
            print(line(f"  {label}", f"{s[key]:.3f}"))
    if "trial_start_s" in s:
        print(line("  trials' own start-up (data, model; Tune's time_total_s rest)", f"{s['trial_start_s']:.3f}"))
    else:
        print(line("  inside the trials (Tune's time_total_s; no compute timers)", f"{s['in_trials']:.3f}"))
    print(line("  outside the trials (actors, scheduling, driver, MLflow, idle)", f"{s['outside_trials']:.3f}"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], add_help=False)
    parser.add_argument("--profile-json", type=Path, help="also write the figures to this JSON file")
    ours, rest = parser.parse_known_args(argv)
    from tuner import cli

    timers = Timers()
    install(timers)
    imports = time.monotonic() - SCRIPT_START
    code = cli.main(["run", *rest])
    profile = report(timers, time.monotonic() - SCRIPT_START, imports)
    print_profile(profile)
    if ours.profile_json:
        ours.profile_json.write_text(json.dumps(profile, indent=2))
    return code


if __name__ == "__main__":
    sys.exit(main())

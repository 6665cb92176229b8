"""The figures of ``benchmarks/gpu_checks.sh``: read what its steps left and write ``gpu_checks.json`` and a short
``gpu_checks.txt``.

    python benchmarks/gpu_checks.py hms-data DIR          # the small competition folder of the dry run
    python benchmarks/gpu_checks.py report --mode device|dry_run --work WORK --out DIR --usps-budget S

What each figure is read from (nothing here runs a study):

- wall time and exit code of each step: the script's ``steps.tsv`` (its own clock around each command);
- time to the first trial, the GPU share given and the probe's figures (``gpu_probe_*``, measured by
  ``tuner.packing``), counts: the study's ``run.json``; a study cut by its cap has no counts there, so they come
  from ``progress.json``, as does the best ``cv_kl`` of the search;
- test KL: ``best_config.json`` (``test``); peak GPU memory per trial: the ``gpu_peak_mem_mb`` the HMS family
  reports on a GPU (``tuner.analysis.trials``: Ray Tune's state and MLflow); failed and out-of-memory trials: the
  ``tuner.end_message`` tag of each failed trial's MLflow run;
- GPU utilisation: the nvidia-smi samples (one a second) taken while the hms_b1 step ran;
- trials per hour on usps_cnn: search trials ended over the span from the first start to the last end;
- the memory-release test: pytest's last line and the ``GPU-MEMORY`` line the test prints.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tuner.schema import TrialStatus  # noqa: E402

STEPS = ("hms_b1", "usps_auto", "usps_1", "gpu_memory")
"""The script's steps in order; each has a ``WORK/<step>.log``."""
HMS_GOAL_S = 300.0
"""The headline study, end to end on one GPU: under 5 minutes."""
MEMORY_MARK = "GPU-MEMORY "
"""The line tests/test_gpu_memory.py prints its figures on."""
NO_CUDA = "torch sees no CUDA device"
"""How tuner.packing refuses the probe where Ray was given GPUs that torch cannot see (the dry run)."""
ERROR_TAIL_LINES = 40
OOM = re.compile(r"out of memory|OutOfMemoryError", re.IGNORECASE)


def write_hms_data(folder: Path) -> None:
    """A competition folder small enough for the dry run (10 patients, as the HMS study tests use)."""
    from tuner.datasets.hms_synthetic import generate_competition

    generate_competition(folder, n_patients=10, recordings_per_patient=(1, 2), windows_per_recording=(2, 3), seed=3)


def read_steps(work: Path) -> dict[str, dict[str, Any]]:
    steps = {}
    for line in (work / "steps.tsv").read_text().splitlines():
        name, rc, start, end, cap = line.split("\t")
        steps[name] = {"rc": int(rc), "start": float(start), "end": float(end), "cap_s": float(cap),
                       "seconds": round(float(end) - float(start), 1)}  # fmt: skip
    return steps


def step_status(step: dict[str, Any] | None) -> str:
    if step is None:
        return "not_run"
    if step["rc"] in (124, 137):  # timeout's codes: the cap was reached (137: killed after the grace period)
        return "timed_out"
    return "ok" if step["rc"] == 0 else "failed"


def run_dir(work: Path, space: str, name: str) -> Path:
    return work / "results" / space / name


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def study_figures(folder: Path) -> dict[str, Any]:
    """What one study's files say: share, probe, first trial, counts, best search score."""
    run, progress = read_json(folder / "run.json"), read_json(folder / "progress.json")
    probe = run.get("gpu_probe") or {}
    best = progress.get("best") or {}
    counts = run.get("counts") or progress.get("counts") or {}
    return {
        "run_status": run.get("status"),
        "gpus_per_trial": (run.get("options") or {}).get("gpus_per_trial"),
        "trials_per_gpu": probe.get("gpu_probe_trials_per_gpu")
        or _per_gpu((run.get("options") or {}).get("gpus_per_trial")),
        "gpu_probe": probe or None,
        "first_trial_s": _round(run.get("first_trial_after_s")),
        "study_wall_s": _round(run.get("wall_s")),
        "counts": counts,
        "trials_ended": sum(n for status, n in counts.items() if status != TrialStatus.RUNNING),
        "best_score": best.get("score"),
    }


def trial_records(folder: Path) -> tuple[list[Any], list[str]]:
    """The study's ended search trials with their times and GPU peaks (empty with a note when unreadable)."""
    from tuner.analysis.trials import load_trials
    from tuner.errors import TunerError

    try:
        study = load_trials(folder, tracking_uri=f"sqlite:///{folder.parent.parent / 'mlflow.db'}")
    except (TunerError, OSError, ValueError) as exc:
        return [], [f"trials of {folder.name}: {exc}"]
    return study.trials, study.notes


def failed_trials(folder: Path) -> dict[str, Any]:
    """Failed search trials and those among them that ran out of GPU memory, from their MLflow runs."""
    from mlflow.tracking import MlflowClient

    from tuner.schema import END_MESSAGE_TAG, PARENT_RUN_TAG, TRIAL_STATUS_TAG, TrialStatus

    parent = (read_json(folder / "run.json").get("mlflow") or {}).get("parent_run_id")
    if not parent:
        return {"failed": None, "oom": None, "messages": [], "note": "no MLflow parent run recorded"}
    try:
        client = MlflowClient(f"sqlite:///{folder.parent.parent / 'mlflow.db'}")
        experiment = client.get_run(parent).info.experiment_id
        runs = client.search_runs([experiment], f"tags.`{PARENT_RUN_TAG}` = '{parent}'", max_results=5000)
    except Exception as exc:  # the figures stand without it; say why
        return {"failed": None, "oom": None, "messages": [], "note": f"MLflow store did not answer: {exc}"[:300]}
    failed = [r for r in runs if r.data.tags.get(TRIAL_STATUS_TAG) == TrialStatus.FAILED]
    messages = [r.data.tags.get(END_MESSAGE_TAG, "")[:300] for r in failed]
    return {"failed": len(failed), "oom": sum(bool(OOM.search(m)) for m in messages), "messages": messages[:3]}


def sample_rows(path: Path) -> list[tuple[float, float, float, str]]:
    """The nvidia-smi samples as (epoch seconds, utilisation %, memory used MiB, GPU name); the header and a line
    cut when the sampler was stopped are left out."""
    rows = []
    for line in path.read_text().splitlines() if path.exists() else []:
        fields = [f.strip() for f in line.split(",")]
        try:
            when = dt.datetime.strptime(fields[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()
            rows.append((when, float(fields[1]), float(fields[2]), fields[4]))
        except (ValueError, IndexError):
            continue
    return rows


def gpu_samples(path: Path, start: float, end: float) -> dict[str, Any]:
    """Utilisation and memory from the samples taken between ``start`` and ``end`` (epoch seconds)."""
    within = [row for row in sample_rows(path) if start <= row[0] <= end]
    if not within:
        return {"samples": 0, "mean_util_pct": None, "median_util_pct": None, "max_memory_used_mb": None}
    util, used = [row[1] for row in within], [row[2] for row in within]
    return {"samples": len(within), "mean_util_pct": round(statistics.fmean(util), 1),
            "median_util_pct": statistics.median(util), "max_memory_used_mb": max(used)}  # fmt: skip


def hms_figures(
    work: Path, step: dict[str, Any] | None, samples: Path, sampler_note: str, on_device: bool
) -> dict[str, Any]:
    folder = run_dir(work, "hms_b1", "hms")
    figures = study_figures(folder)
    best = figures.pop("best_score")
    failed = failed_trials(folder)
    trials, notes = trial_records(folder)
    peaks = [t.gpu_peak_mb for t in trials if t.gpu_peak_mb is not None]
    test = read_json(folder / "best_config.json").get("test") or {}
    wall = step["seconds"] if step else None
    util = gpu_samples(samples, step["start"], step["end"]) if step else gpu_samples(samples, 0, 0)
    return {
        **figures,
        "wall_s": wall,
        "goal_s": HMS_GOAL_S,
        "goal_met": bool(wall is not None and step_status(step) == "ok" and wall < HMS_GOAL_S) if on_device else None,
        "best_cv_kl": best,
        "test_kl": test.get("test_kl"),
        "gpu_peak_mb": {
            "trials_reporting": len(peaks),
            "per_trial": [round(p, 1) for p in peaks],
            "max": round(max(peaks), 1) if peaks else None,
            "median": round(statistics.median(peaks), 1) if peaks else None,
        },
        "gpu_utilisation": {**util, "note": sampler_note},
        "failed_trials": failed["failed"],
        "oom_trials": failed["oom"],
        "failed_messages": failed["messages"],
        "notes": notes + ([failed["note"]] if "note" in failed else []),
    }


def usps_figures(work: Path, share: str, step: dict[str, Any] | None) -> dict[str, Any]:
    folder = run_dir(work, "usps_cnn", f"usps-{share}")
    figures = study_figures(folder)
    trials, notes = trial_records(folder)
    timed = [t for t in trials if t.start_s is not None and t.end_s is not None]
    span = max(t.end_s for t in timed) - min(t.start_s for t in timed) if timed else None
    ended = figures["trials_ended"]
    log = work / f"usps_{share}.log"
    refused = log.exists() and NO_CUDA in log.read_text(errors="replace")
    return {
        "asked": share,
        **{k: figures[k] for k in ("run_status", "gpus_per_trial", "trials_per_gpu", "gpu_probe", "counts")},
        "trials_ended": ended,
        "search_span_s": _round(span),
        "trials_per_hour": round(ended * 3600 / span, 1) if span and ended else None,
        "auto_refused_without_cuda": bool(share == "auto" and refused),
        "notes": notes,
    }


def memory_figures(work: Path) -> dict[str, Any]:
    """The outcome of ``pytest -m gpu`` from its last line, and the figures the memory test printed."""
    log = work / "gpu_memory.log"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    summary = next(
        (
            line.strip("= ")
            for line in reversed(lines)
            if re.search(
                r"\d+ (passed|failed|skipped|"
                r"deselected|error)",
                line,
            )
        ),
        "",
    )
    if re.search(r"\d+ (failed|error)", summary):
        outcome = "failed"
    elif re.search(r"\d+ passed", summary):
        outcome = "passed"
    elif re.search(r"\d+ skipped", summary):
        outcome = "skipped"
    else:
        outcome = "no_result"
    figures = [json.loads(line[len(MEMORY_MARK) :]) for line in lines if line.startswith(MEMORY_MARK)]
    return {"outcome": outcome, "pytest": summary, "figures": figures[-1] if figures else None}


def _per_gpu(share: Any) -> int | None:
    """Trials Ray fits on one GPU with a fixed share (Ray's steps of 0.0001: 0.3333 gives 3)."""
    return int(1 / share + 1e-3) if isinstance(share, int | float) and share > 0 else None


def _round(value: Any) -> float | None:
    return round(float(value), 1) if isinstance(value, int | float) else None


def device_name(samples: Path) -> str:
    names = {row[3] for row in sample_rows(samples)}
    if names:
        return ", ".join(sorted(names))
    return "unknown (no nvidia-smi samples)"


def collect(mode: str, work: Path, out: Path, usps_budget: float) -> dict[str, Any]:
    steps = read_steps(work)
    samples = out / "gpu_samples.csv"
    note_file = work / "sampler.note"
    sampler_note = note_file.read_text().strip() if note_file.exists() else "nvidia-smi, one sample a second"
    status = {}
    for name in STEPS:
        step = steps.get(name)
        status[name] = {"status": step_status(step), **(step or {}), "error": None, "error_file": None}
        if step and status[name]["status"] != "ok":
            status[name]["error"] = error_line(work / f"{name}.log")
            status[name]["error_file"] = write_error_tail(work / f"{name}.log", out / f"{name}.err.txt")
        status[name].pop("start", None), status[name].pop("end", None)
    return {
        "mode": mode,
        "device": device_name(samples) if mode == "device" else "cpu (dry run; a logical GPU declared to Ray)",
        "written": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "steps": status,
        "hms_b1": hms_figures(work, steps.get("hms_b1"), samples, sampler_note, mode == "device"),
        "usps_cnn": {
            "time_budget_s": usps_budget,
            "auto": usps_figures(work, "auto", steps.get("usps_auto")),
            "one": usps_figures(work, "1", steps.get("usps_1")),
        },
        "gpu_memory_test": memory_figures(work),
    }


def error_line(log: Path) -> str | None:
    """tuner's one-line ``error: ...``, else the log's last line."""
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    errors = [line for line in lines if line.startswith("error: ")]
    return (errors or lines or [None])[-1]


def write_error_tail(log: Path, target: Path) -> str | None:
    if not log.exists():
        return None
    lines = log.read_text(errors="replace").splitlines()[-ERROR_TAIL_LINES:]
    target.write_text("\n".join(lines) + "\n")
    return target.name


def summary_text(figures: dict[str, Any]) -> str:
    hms, usps, memory = figures["hms_b1"], figures["usps_cnn"], figures["gpu_memory_test"]
    util = hms["gpu_utilisation"]
    lines = [f"gpu_checks ({figures['mode']}) on {figures['device']}, {figures['written']}"]
    for name, step in figures["steps"].items():
        error = f", tail of its log: {step['error_file']}" if step["error_file"] else ""
        lines.append(
            f"  step {name:<10} {step['status']:<9} {step.get('seconds', '-')} s of {step.get('cap_s')} s{error}"
        )
    lines += [
        f"hms_b1: wall {hms['wall_s']} s (goal < {hms['goal_s']:g} s on the GPU: {_goal(hms['goal_met'])}), "
        f"first trial after {hms['first_trial_s']} s, run {hms['run_status']}",
        f"  GPU per trial {hms['gpus_per_trial']} ({hms['trials_per_gpu'] or '-'} per GPU); probe: "
        + _probe_line(hms["gpu_probe"]),
        f"  trials {hms['counts']}; failed {hms['failed_trials']}, out of memory {hms['oom_trials']}",
        f"  peak GPU memory per trial (allocated, MiB): max {hms['gpu_peak_mb']['max']}, median "
        f"{hms['gpu_peak_mb']['median']} over {hms['gpu_peak_mb']['trials_reporting']} trial(s)",
        f"  GPU utilisation: mean {util['mean_util_pct']} %, median {util['median_util_pct']} % over "
        f"{util['samples']} samples ({util['note']})",
        f"  best cv_kl (search) {_fmt(hms['best_cv_kl'])}, test KL {_fmt(hms['test_kl'])}",
        f"usps_cnn, --time-budget {usps['time_budget_s']:g} s each:",
    ]
    for key in ("auto", "one"):
        u = usps[key]
        refused = " (refused: no CUDA device, as expected on the CPU)" if u["auto_refused_without_cuda"] else ""
        share = f"share {u['gpus_per_trial']} ({u['trials_per_gpu'] or '-'} per GPU)"
        rate = f"{u['trials_ended']} trials ended, {u['trials_per_hour']} trials/hour"
        lines.append(f"  --gpus-per-trial {u['asked']:<4}: {share}, {rate}{refused}")
    lines.append(f"memory release test: {memory['outcome']} ({memory['pytest']}); figures {memory['figures']}")
    return "\n".join(lines) + "\n"


def _probe_line(probe: dict[str, Any] | None) -> str:
    if not probe:
        return "none (a fixed share, or the study stopped before it)"
    return (
        f"{probe.get('gpu_probe_device')}, total {probe.get('gpu_probe_total_mb')} MiB, peak reserved "
        f"{probe.get('gpu_probe_peak_mb')} MiB (allocated {probe.get('gpu_probe_peak_allocated_mb')}), context "
        f"{probe.get('gpu_probe_context_mb')} MiB, {probe.get('gpu_probe_seconds')} s"
    )


def _goal(met: bool | None) -> str:
    return "not applicable in a dry run" if met is None else "met" if met else "NOT met"


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("hms-data").add_argument("folder", type=Path)
    report = sub.add_parser("report")
    report.add_argument("--mode", choices=("device", "dry_run"), required=True)
    report.add_argument("--work", type=Path, required=True)
    report.add_argument("--out", type=Path, required=True)
    report.add_argument("--usps-budget", type=float, required=True)
    args = parser.parse_args()
    if args.command == "hms-data":
        write_hms_data(args.folder)
        return 0
    figures = collect(args.mode, args.work, args.out, args.usps_budget)
    (args.out / "gpu_checks.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
    text = summary_text(figures)
    (args.out / "gpu_checks.txt").write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())

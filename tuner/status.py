"""``tuner status SPACE [--name RUN]``: a running or finished study, read from its results folder only.

The driver keeps ``run.json`` (status, options, its pid and host) and ``progress.json`` (counts, best so far,
every trial) up to date; nothing here needs Ray or the MLflow store. A run that says ``running`` but whose
driver process is gone on this host was killed (or the machine restarted) and is reported as such.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from pathlib import Path
from typing import Any

from tuner.errors import TunerError
from tuner.run_files import BEST_CONFIG_FILE, PROGRESS_FILE, RUN_FILE
from tuner.schema import RunStatus, TrialStatus


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def find_run(results_dir: Path, space: str, name: str | None) -> Path:
    """The named run of ``space``, or its most recently started one."""
    runs = sorted(
        (
            (info.get("started", ""), path.parent)
            for path in (results_dir / space).glob(f"*/{RUN_FILE}")
            if (info := _read(path)) is not None
        ),
    )
    if name is not None:
        if not (results_dir / space / name / RUN_FILE).exists():
            known = ", ".join(p.name for _, p in runs) or "none"
            raise TunerError(f"no run named {name!r} for space {space} under {results_dir}; runs: {known}")
        return results_dir / space / name
    if not runs:
        raise TunerError(f"no run of space {space} under {results_dir}; start one with: tuner run {space}")
    return runs[-1][1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_state(info: dict[str, Any]) -> str:
    """The run's status, with ``running`` checked against its driver process when it ran on this host."""
    status = info.get("status", "unknown")
    driver = info.get("driver") or {}
    if status == RunStatus.RUNNING and driver.get("host") == socket.gethostname() and not _alive(int(driver["pid"])):
        return f"interrupted (its driver, pid {driver['pid']}, is gone: killed, or the machine restarted)"
    if status == RunStatus.RUNNING and driver.get("host") not in (None, socket.gethostname()):
        return f"running (on {driver['host']}, pid {driver['pid']}; not checked from here)"
    return status


def describe(run_dir: Path) -> str:
    info = _read(run_dir / RUN_FILE) or {}
    progress = _read(run_dir / PROGRESS_FILE)
    lines = [f"{info.get('space', run_dir.parent.name)} run {run_dir.name}: {run_state(info)}"]
    started = info.get("started")
    if started:
        end = info.get("ended") or dt.datetime.now().isoformat(timespec="seconds")
        took = dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(started)
        lines.append(
            f"  started {started}, {'ended ' + info['ended'] if info.get('ended') else 'now'} "
            f"({int(took.total_seconds())} s)"
        )
    if info.get("error"):
        lines.append(f"  error: {info['error'].splitlines()[0][:300]}")
    if progress is None and info.get("counts"):  # a run from before progress files: its final counts
        lines.append(f"  trials: {', '.join(f'{v} {k}' for k, v in sorted(info['counts'].items()))}")
    elif progress is None:
        lines.append("  no trial has started yet")
    else:
        counts = progress.get("counts", {})
        running = counts.get(TrialStatus.RUNNING, 0)
        done = sum(counts.values()) - running
        tally = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()) if k != TrialStatus.RUNNING)
        lines.append(
            f"  trials: {done}/{progress.get('total')} done ({tally or 'none'}), {running} running; "
            f"progress written {progress.get('updated')}"
        )
        metric, mode = progress.get("metric"), progress.get("mode")
        best = progress.get("best")
        if best:
            lines.append(
                f"  best {metric} ({mode}): {best['score']:.4f} (trial {best['trial']}) "
                f"{json.dumps(best['config'], separators=(',', ':'))[:200]}"
            )
        scored = [t for t in progress.get("trials", []) if t.get("score") is not None]
        scored.sort(key=lambda t: t["score"], reverse=mode == "max")
        if scored:
            lines.append(f"  {'trial':>5}  {'status':<13} {metric:>16}  {'epochs':>6}")
            lines += [f"  {t['trial']:>5}  {t['status']:<13} {t['score']:>16.4f}  {t['epochs']:>6}" for t in scored[:5]]
    if info.get("tracking_uri"):
        lines.append(f"  MLflow: {info['tracking_uri']}")
    if (run_dir / BEST_CONFIG_FILE).exists():
        lines.append(f"  best config: {run_dir / BEST_CONFIG_FILE}")
    lines += _answer_lines(run_dir)
    lines += _importance_lines(run_dir)
    return "\n".join(lines)


def _answer_lines(run_dir: Path) -> list[str]:
    """What the finished study hands back: how its config was chosen and its test figures beside the report's
    config on the same split, as the end of ``tuner run`` printed them."""
    from tuner.study_text import print_test_figures, print_verification

    export = _read(run_dir / BEST_CONFIG_FILE)
    if export is None:
        return []
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(f"  {line}")

    print_verification(echo, export)
    if export.get("test"):
        print_test_figures(echo, export, (export.get("report") or {}).get("results", {}))
    return lines


def _importance_lines(run_dir: Path) -> list[str]:
    """The top importances of the study's analysis (``tuner.analysis``), when it has one."""
    from tuner.analysis import ANALYSIS_FOLDER, IMPORTANCE_FILE, PAGE_FILE
    from tuner.analysis.importance import ranking

    importance = _read(run_dir / ANALYSIS_FOLDER / IMPORTANCE_FILE)
    if importance is None:
        return []
    ranked = ranking(importance)
    shown = ", ".join(f"{name} {value:.2f}" for name, value in ranked[:3]) or importance.get("note", "none")
    return [
        f"  importance (fANOVA, {importance.get('trials_used', 0)} trials): {shown}",
        f"  analysis: {run_dir / ANALYSIS_FOLDER / PAGE_FILE}",
    ]

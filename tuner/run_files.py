"""A run folder's files (``run.json``, ``progress.json``, ``best_config.json``) read and written whole, finding a
space's finished runs and their best config, and the provenance a run records (library versions, git commit)."""

from __future__ import annotations

import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from tuner import PROJECT_ROOT
from tuner.datasets.base import write_atomically
from tuner.errors import TunerError
from tuner.schema import RunStatus

BEST_CONFIG_FILE = "best_config.json"
RUN_FILE = "run.json"
PROGRESS_FILE = "progress.json"
PACKAGES = ("torch", "ray", "mlflow", "optuna", "hyperopt", "scikit-learn", "pandas", "numpy", "timm")


def library_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def git_commit() -> str:
    """The project's commit, with ``-dirty`` when tracked files have uncommitted changes; ``unknown`` outside git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def write_json(path: Path, payload: dict[str, Any]) -> None:
    write_atomically(path, json.dumps(payload, indent=2, sort_keys=False) + "\n")


def read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        raise TunerError(f"{path}: no such file ({what})") from None
    except json.JSONDecodeError as exc:
        raise TunerError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except OSError as exc:
        raise TunerError(f"{path}: cannot be read ({exc.strerror})") from None
    if not isinstance(payload, dict):
        raise TunerError(f"{path}: expected a JSON object ({what})")
    return payload


def finished_runs(results_dir: Path, space: str) -> list[Path]:
    """Run folders of ``space`` that finished with a best config, oldest first."""
    space_dir = results_dir / space
    runs = []
    for run_file in space_dir.glob(f"*/{RUN_FILE}"):
        try:
            info = json.loads(run_file.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if info.get("status") == RunStatus.FINISHED and (run_file.parent / BEST_CONFIG_FILE).exists():
            runs.append((info.get("ended", ""), run_file.parent))
    return [path for _, path in sorted(runs)]


def find_best_config(results_dir: Path, space: str, name: str | None) -> Path:
    """The best_config.json of the named run, or of the latest finished run of ``space``."""
    if name is not None:
        run_dir = results_dir / space / name
        if not (run_dir / RUN_FILE).exists():
            known = [p.name for p in finished_runs(results_dir, space)]
            raise TunerError(
                f"no run named {name!r} for space {space} under {results_dir}; "
                f"finished runs: {', '.join(known) or 'none'}"
            )
        status = read_json(run_dir / RUN_FILE, "a run's status file").get("status")
        if status != RunStatus.FINISHED or not (run_dir / BEST_CONFIG_FILE).exists():
            raise TunerError(f"run {name!r} of {space} has status {status!r}; only finished runs have a best config")
        return run_dir / BEST_CONFIG_FILE
    runs = finished_runs(results_dir, space)
    if not runs:
        raise TunerError(f"no finished run of space {space} under {results_dir}; start one with: tuner run {space}")
    return runs[-1] / BEST_CONFIG_FILE


def config_from_file(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config, whole file) from an exported best_config.json or a bare JSON object of parameters."""
    payload = read_json(path, "a best_config.json from `tuner export`, or a JSON object of parameters")
    if "config" in payload and isinstance(payload["config"], dict):
        return payload["config"], payload
    return payload, {}

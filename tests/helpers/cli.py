"""The command line in a fresh process, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tuner import PROJECT_ROOT


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a fresh ``tuner`` process: this one's, the project root on PYTHONPATH (after any path
    ``extra`` gives), no MLflow store set."""
    extra = dict(extra or {})
    paths = [p for p in (extra.pop("PYTHONPATH", ""), str(PROJECT_ROOT)) if p]
    env = {**os.environ, **extra, "PYTHONPATH": os.pathsep.join(paths)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def run_cli(*args: str, cwd: Path, timeout: float = 300, env: dict[str, str] | None = None):
    """``python -m tuner ...`` in a fresh process, as a user would run it (``env``: variables to add)."""
    env = cli_env(env)
    return subprocess.run(
        [sys.executable, "-m", "tuner", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def start_cli(*args: str, cwd: Path, capture: bool = False) -> subprocess.Popen:
    """``python -m tuner ...`` started in its own session, as a terminal runs it: a signal sent to its process
    group (Ctrl-C, a kill) reaches the driver and the local Ray it starts, as a machine restart would take both.
    ``capture``: its output is piped as text (else thrown away)."""
    env = cli_env()
    out = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", "tuner", *args], cwd=cwd, env=env, stdout=out, stderr=out,
                            text=capture, start_new_session=True)  # fmt: skip

"""The command line as a user runs it: in a fresh process, or in this one where a fresh process is not the point."""

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
    return subprocess.Popen(
        [sys.executable, "-m", "tuner", *args],
        cwd=cwd,
        env=env,
        stdout=out,
        stderr=out,
        text=capture,
        start_new_session=True,
    )


def run_main(*args: str, cwd: Path, capfd) -> subprocess.CompletedProcess:
    """``tuner ...`` in this process: ``tuner.cli.main``, the function ``python -m tuner`` calls, run from ``cwd``
    with no MLflow store set, its output as the terminal gets it (``capfd``: file descriptors 1 and 2, so what a
    library writes there counts too). For checks of what a command prints and returns where a fresh process is not
    the point: it saves the seconds a fresh one spends importing Ray Tune, MLflow and torch.

    The command must start no Ray process (a test that needs one is ``slow`` and runs the command in a fresh one)."""
    from tuner.cli import main

    capfd.readouterr()  # what came before is not the command's
    here, store = Path.cwd(), os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.chdir(cwd)
    _STARTED.clear()
    _STARTED.append("watching")
    try:
        status = main(list(args))
    except SystemExit as exc:  # argparse's --help
        status = exc.code
    finally:
        started = _STARTED[1:]
        _STARTED.clear()
        os.chdir(here)
        if store is not None:
            os.environ["MLFLOW_TRACKING_URI"] = store
    out, err = capfd.readouterr()
    ray = [command for command in started if f"{os.sep}ray{os.sep}" in command]
    assert not ray, f"tuner {' '.join(args)} started Ray processes in this one: {ray}"
    return subprocess.CompletedProcess(["tuner", *args], status, out, err)


_STARTED: list[str] = []
"""While ``run_main`` watches: a marker, then every program this process starts."""


def _note_started(event: str, details: tuple) -> None:
    if _STARTED and event == "subprocess.Popen":
        _STARTED.append(str(details[0]))


sys.addaudithook(_note_started)  # an audit hook cannot be removed: it only records while _STARTED is not empty

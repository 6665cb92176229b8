"""``tuner ui [SPACE]``: the MLflow UI on a study's store, and the address that opens a space's runs table.

MLflow 3's UI chooses between its GenAI pages (traces) and its model-training pages (the runs table) from the
``workflowType`` query parameter, else from the browser's local storage (``mlflow.workflowType``, GenAI until the
user clicks "Model training" once); the server has no setting for it and the experiment's
``mlflow.experimentKind`` tag does not decide it. So every address tuner prints carries
``workflowType=machine_learning``: it opens the runs table in any browser, a fresh one included.
"""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tuner.errors import TunerError, first_line
from tuner.tracking.check import is_server
from tuner.tracking.store import default_tracking_uri, sqlite_path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
RUNS_TABLE = "workflowType=machine_learning"
START_TIMEOUT_S = 120.0
"""How long the server may take to answer its health check (imports and the store's migrations check)."""
UI_LOG = "mlflow-ui.log"
"""The server's own messages, in the results folder."""


_say = functools.partial(print, flush=True)
"""Each line as it is said: a script or a test reading the address from a pipe gets it at once."""


def experiment_address(base: str, experiment_id: str | None) -> str:
    """The address under ``base`` (``http://host:port``) that opens an experiment's runs table (the experiment
    list when the id is not known)."""
    base = base.rstrip("/")
    if experiment_id is None:
        return f"{base}/#/experiments?{RUNS_TABLE}"
    return f"{base}/#/experiments/{experiment_id}?{RUNS_TABLE}"


def run_link(experiment_id: str, run_id: str) -> str:
    """A run's page as a link inside the UI (a run's description): it keeps the model-training pages."""
    return f"#/experiments/{experiment_id}/runs/{run_id}?{RUNS_TABLE}"


def local_base(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    """The address a browser on this machine uses for a server listening on ``host`` (all interfaces included)."""
    shown = DEFAULT_HOST if host in ("0.0.0.0", "::", "") else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def ui_hint(tracking_uri: str, space: str, results_dir: Path, experiment_id: str | None) -> str:
    """What the run header says about the UI: the address, and the command that serves it for a local store."""
    if is_server(tracking_uri):
        return f"open {experiment_address(tracking_uri, experiment_id)}"
    command = f"tuner ui {space}" + ("" if results_dir == Path("results") else f" --results-dir {results_dir}")
    return f"{command}, then open {experiment_address(local_base(), experiment_id)}"


def serve(
    space: str | None, name: str | None, results_dir: Path, host: str, port: int, echo: Callable[[str], None] = _say
) -> int:
    """Serve the MLflow UI on the store of a study of ``space`` (its latest, or ``name``), or on the results
    folder's own store without ``space``, until Ctrl-C; a server store is only pointed at."""
    results_dir = results_dir.resolve()
    uri, label = _study_store(space, name, results_dir)
    if is_server(uri):
        from tuner.tracking.check import check_store

        try:
            check_store(uri)  # seconds, not MLflow's minutes of retries against a server that is down
            ids, state = _experiment_ids(uri, label), ""
        except TunerError as exc:
            ids, state = {}, f" ({exc})"
        echo(f"the study tracked to the MLflow server {uri}; open {experiment_address(uri, _one(ids))}{state}")
        return 0
    _check_port(host, port)
    ids = _experiment_ids(uri, label)
    log = results_dir / UI_LOG
    # Ctrl-C and a `kill` stop the server, also where this process was started with SIGINT ignored (a shell's `&`).
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = None
    try:
        server = _start_server(uri, results_dir, host, port, log)
        _wait_until_up(server, local_base(host, port), log)
        for label, experiment_id in ids.items():
            echo(f"MLflow UI: {experiment_address(local_base(host, port), experiment_id)}  ({label})")
        if not ids:
            echo(f"MLflow UI: {experiment_address(local_base(host, port), None)}  (no space's experiment yet)")
        echo(f"serving {uri} on {host}:{port}; Ctrl-C stops it")
        server.wait()
        raise TunerError(f"the MLflow server stopped by itself (exit status {server.returncode})")
    except KeyboardInterrupt:
        echo("MLflow UI stopped")
        return 0
    finally:
        if server is not None:
            _stop(server)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _study_store(space: str | None, name: str | None, results_dir: Path) -> tuple[str, str | None]:
    """The tracking URI of the study (from its run record) and its space's name, or the results folder's SQLite
    store and None."""
    label = None
    if space is None:
        uri = default_tracking_uri(results_dir)
    else:
        from tuner.run_files import RUN_FILE, read_json
        from tuner.study import find_study

        run_dir = find_study(space, name, results_dir)
        uri, label = read_json(run_dir / RUN_FILE, "run record")["tracking_uri"], run_dir.parent.name
    store = sqlite_path(uri)
    if store is not None and not store.exists():
        where = f"of {label} " if label else ""
        raise TunerError(
            f"no MLflow store {where}at {store}: run a study first (tuner run SPACE --results-dir {results_dir})"
        )
    return uri, label


def _experiment_ids(uri: str, label: str | None) -> dict[str, str]:
    """Space name -> experiment id: the space's experiment, or every experiment but MLflow's Default one."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    if label is not None:
        found = client.get_experiment_by_name(label)
        return {label: found.experiment_id} if found is not None else {}
    return {e.name: e.experiment_id for e in client.search_experiments() if e.experiment_id != "0"}


def _one(ids: dict[str, str]) -> str | None:
    return next(iter(ids.values())) if len(ids) == 1 else None


def _check_port(host: str, port: int) -> None:
    """Fail in one line when ``host:port`` cannot be listened on (the server would say so in a traceback)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is no conflict
        try:
            probe.bind((host, port))
        except OSError as exc:
            busy = "is in use (another MLflow UI?)" if exc.errno == 98 else f"cannot be listened on ({exc.strerror})"
            raise TunerError(f"--port {port}: {host}:{port} {busy}; pass another --port or --host") from None


def _start_server(uri: str, results_dir: Path, host: str, port: int, log: Path) -> subprocess.Popen:
    """``mlflow server`` on the store, one worker, in its own process group (stopped as a whole). Runs in the
    results folder with its artifact folders there: nothing lands in the user's working directory."""
    artifacts = (results_dir / "mlartifacts").as_uri()
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host", host, "--port",
               str(port), "--workers", "1", "--default-artifact-root", artifacts, "--artifacts-destination",
               artifacts]  # fmt: skip
    with open(log, "w") as out:  # the server's own messages; its last line is the error when it fails to start
        return subprocess.Popen(
            command,
            cwd=results_dir,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _wait_until_up(server: subprocess.Popen, base: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise TunerError(f"the MLflow server did not start: {_last_line(log)} (all of it in {log})")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as answer:  # noqa: S310 - our own server
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TunerError(f"the MLflow server did not answer at {base}/health within {START_TIMEOUT_S:g}s")


def _last_line(log: Path) -> str:
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError as exc:
        return first_line(exc)
    return lines[-1].strip() if lines else "no output"


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (uvicorn and its worker), SIGKILL after 10 s."""
    if server.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "experiment_address", "local_base", "run_link", "serve", "ui_hint"]

"""A tracking server that stops answering mid-study fails no trial: the writes it misses are spooled to the run
folder and replayed when it answers again (at the study's end, or by ``tuner sync``); MLflow then holds what an
undisturbed study would have written.

Real parts: a real ``mlflow server`` process (SQLite backend) killed and started again, the session's local Ray.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from mlflow.tracking import MlflowClient

from benchmarks.sleep_space import sleep_spec
from tests.helpers.progress import ended_trials
from tuner.options import RunOptions
from tuner.schema import TRIAL_STATUS_TAG
from tuner.study import run_study, sync_study
from tuner.tracking.spool import SPOOL_FILE

TRIALS = 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, folder, port: int):
        self.folder, self.port, self.process = folder, port, None
        self.uri = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{self.folder}/server.db",
               "--default-artifact-root", str(self.folder / "artifacts"), "--host", "127.0.0.1",
               "--port", str(self.port), "--workers", "1"]  # fmt: skip
        log = (self.folder / "server.log").open("a")
        self.process = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.uri}/health", timeout=2).read()
                return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"mlflow server did not start: {(self.folder / 'server.log').read_text()[-2000:]}")

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


@pytest.fixture()
def server(tmp_path):
    server = Server(tmp_path, free_port())
    server.start()
    yield server
    if server.process.poll() is None:  # also when the test failed: no server outlives it
        server.kill()


@pytest.mark.slow
def test_a_server_killed_and_restarted_mid_study_loses_nothing(ray_instance, server, tmp_path):
    run_dir = tmp_path / "results" / "sleep" / "outage"
    outage = {}

    def disturb() -> None:
        while ended_trials(run_dir) < 2:
            time.sleep(0.1)
        server.kill()
        outage["killed_after"] = ended_trials(run_dir)
        while ended_trials(run_dir) < 5:
            time.sleep(0.1)
        server.start()

    disturber = threading.Thread(target=disturb, daemon=True)
    disturber.start()
    spec = sleep_spec(sleep_s=1.0, max_epochs=2, grid=tuple(round(0.1 * i, 1) for i in range(1, TRIALS + 1)))
    opts = RunOptions(
        trials=TRIALS,
        searcher="grid",
        scheduler="fifo",
        max_concurrent=1,
        name="outage",
        results_dir=tmp_path / "results",
        dashboard=False,
        tracking_uri=server.uri,
        verify_top=0,
    )
    lines: list[str] = []
    study = run_study(spec, opts, echo=lines.append)
    disturber.join(timeout=180)

    assert study.counts == {"completed": TRIALS}  # no trial failed because the store did
    assert study.export["config"] == {"x": 0.7}  # what an undisturbed study of this grid chooses
    assert outage["killed_after"] < TRIALS
    record = json.loads((run_dir / "run.json").read_text())
    if record["mlflow"]["records_waiting"]:  # the study ended before the server was back: tuner sync sends them
        assert any("tuner sync sleep --name outage" in line for line in lines)
        assert sync_study("sleep", "outage", tmp_path / "results", echo=lines.append) > 0
    assert not (run_dir / SPOOL_FILE).exists()

    client = MlflowClient(server.uri)
    experiment = client.get_experiment_by_name("sleep")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert parents[0].data.metrics["trials_completed"] == TRIALS
    assert len(children) == TRIALS
    assert {c.data.tags[TRIAL_STATUS_TAG] for c in children} == {"completed"}
    assert {c.info.status for c in children} == {"FINISHED"}
    for child in children:  # every epoch of every trial, once
        history = client.get_metric_history(child.info.run_id, "val_score")
        assert [m.step for m in history] == [1, 2]

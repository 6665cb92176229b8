"""A study on a real two-node Ray cluster on this machine (cluster/local_cluster.sh: a head and a worker, each a
separate `ray start` with 1 CPU), driven by `tuner run --address`. Trials run on both nodes; then the worker node
is killed mid-study, its trial is retried on the head from its latest checkpoint, and the study completes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers.cli import PROJECT_ROOT
from tests.helpers.cluster import free_base_port, process_trees, run_local_script
from tests.helpers.outside_project import write_project
from tuner.schema import TRIAL_STATUS_TAG
from tuner.tracking import default_tracking_uri

TRIALS = 6


def _ended_nodes(run_dir: Path) -> Counter:
    try:
        progress = json.loads((run_dir / "progress.json").read_text())
    except (OSError, json.JSONDecodeError):
        return Counter()
    return Counter(t["node_id"] for t in progress["trials"] if t["status"] != "running" and t.get("node_id"))


def _running_epochs(run_dir: Path) -> dict[str, int]:
    """node id -> epochs done by the trial running there."""
    try:
        progress = json.loads((run_dir / "progress.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return {t["node_id"]: t["epochs"] for t in progress["trials"] if t["status"] == "running" and t.get("node_id")}


def _kill_tree(pidfile: Path) -> int:
    """SIGKILL a node's `ray start` and every process below it (its raylet, object store, workers)."""
    import psutil

    root = psutil.Process(int(pidfile.read_text()))
    procs = [root, *root.children(recursive=True)]
    for proc in procs:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    return len(procs)


@pytest.fixture(scope="module")
def two_nodes():
    """The cluster: its address and the folder of its nodes' state (pid files)."""
    port = free_base_port()
    state = Path(tempfile.mkdtemp(prefix="trl-", dir="/tmp"))
    started: list = []
    try:
        start = run_local_script(
            "start",
            "--workers",
            "1",
            "--head-cpus",
            "1",
            "--worker-cpus",
            "1",
            "--port",
            str(port),
            "--dir",
            str(state),
            timeout=240,
        )
        assert start.returncode == 0, start.stdout + start.stderr
        started = process_trees(state)
        yield re.search(r"^address\s+(\S+)$", start.stdout, re.MULTILINE).group(1), state
    finally:
        if state.exists():
            run_local_script("stop", "--port", str(port), "--dir", str(state), timeout=120)
        for proc in started:
            try:
                proc.kill()
            except Exception:
                pass
        shutil.rmtree(state, ignore_errors=True)


def _driver_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "RAY_AUTH_MODE": "token"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("RAY_ADDRESS", None)
    return env


@pytest.mark.slow
def test_a_space_of_a_users_own_folder_runs_on_both_nodes_from_the_code_ray_shipped(tmp_path, two_nodes):
    """The project's code reaches the workers with Ray's runtime env (each file and package of its folder): the
    folder is deleted once the driver joined the cluster, and every trial still imports the family."""
    address, _ = two_nodes
    project, imports = tmp_path / "proj", tmp_path / "imports.txt"
    # trials of 4 s: a worker-node actor that starts slowly on a loaded machine still finds trials left to run (at 1 s
    # the head node's reused actor could run all four before it was up, as one loaded CI saw)
    write_project(project, sleep_s=2.0, max_epochs=2)
    results = tmp_path / "results"
    run_dir = results / "outside" / "outside"
    cmd = [sys.executable, "-m", "tuner", "run", "proj/space.py", "--trials", "4", "--verify-top", "0", "--address",
           address, "--results-dir", str(results), "--name", "outside", "--progress-every", "0", "--set",
           f"import_log={imports}"]  # fmt: skip
    driver = subprocess.Popen(
        cmd, cwd=tmp_path, env=_driver_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 120
    while not (run_dir / "run.json").exists() and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # run.json is written once Ray is joined (the code shipped), before any trial starts
    shutil.rmtree(project)
    output, _ = driver.communicate(timeout=300)
    assert driver.returncode == 0, output[-3000:]
    export = json.loads((run_dir / "best_config.json").read_text())
    assert export["search"]["statuses"] == {"completed": 4}
    assert len(_ended_nodes(run_dir)) == 2, "the outside space's trials did not run on both nodes"
    found_at = set(imports.read_text().split())
    assert found_at and not any(path.startswith(str(project)) for path in found_at), found_at


@pytest.mark.slow
def test_study_spreads_over_two_nodes_and_survives_losing_the_worker(tmp_path, two_nodes):
    """Last in this module: it kills the cluster's worker node."""
    address, state = two_nodes
    results = tmp_path / "results"
    run_dir = results / "usps_cnn" / "two-nodes"
    env = _driver_env()
    # usps_cnn: epochs of about a second on one CPU, so a trial is still running when its node is killed;
    # its training state is checkpointed after every epoch
    cmd = [sys.executable, "-m", "tuner", "run", "usps_cnn", "--trials", str(TRIALS), "--max-epochs", "8",
           "--verify-top", "0", "--no-report-baseline", "--scheduler", "fifo", "--address", address,
           "--results-dir", str(results),
           "--name", "two-nodes", "--max-retries", "2", "--checkpoint-every", "0",
           "--progress-every", "0"]  # fmt: skip
    log = tmp_path / "driver.log"
    with log.open("w") as out:
        driver = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while len(_ended_nodes(run_dir)) < 2 and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert driver.poll() is None, f"the study ended before both nodes ran a trial: {log.read_text()[-3000:]}"
        assert len(_ended_nodes(run_dir)) == 2, "trials did not run on both nodes"
        # Both slots are busy all study long; wait until the trials running on both nodes have checkpointed
        # two epochs, so the one on the worker node has a checkpoint to continue from.
        nodes = set(_ended_nodes(run_dir))
        while driver.poll() is None and time.monotonic() < deadline:
            epochs = _running_epochs(run_dir)
            if set(epochs) == nodes and min(epochs.values()) >= 2:
                break
            time.sleep(0.1)
        assert driver.poll() is None, f"the study ended before the kill: {log.read_text()[-3000:]}"
        killed = _kill_tree(state / "worker1.pid")
        assert killed >= 2
        rc = driver.wait(timeout=400)
    output = log.read_text()
    assert rc == 0, output[-3000:]
    assert "lost its worker" in output and "retrying it" in output, output[-3000:]
    assert re.search(r"continues from its checkpoint of epoch [2-9]", output), output[-3000:]

    export = json.loads((run_dir / "best_config.json").read_text())
    assert export["search"]["trials"] == TRIALS
    assert "failed" not in export["search"]["statuses"], export["search"]["statuses"]

    client = MlflowClient(default_tracking_uri(results))
    experiment = client.get_experiment_by_name("usps_cnn")
    children = [
        r
        for r in client.search_runs([experiment.experiment_id], max_results=100)
        if "mlflow.parentRunId" in r.data.tags
    ]
    assert len(children) == TRIALS and len({c.data.tags["tuner.trial_id"] for c in children}) == TRIALS
    nodes = Counter(c.data.tags["tuner.node_id"] for c in children)
    assert len(nodes) == 2, nodes  # both nodes ran trials, recorded per trial in MLflow
    retried = [c for c in children if int(c.data.tags["tuner.restarts"]) > 0]
    assert retried, "no trial was retried after its node was lost"
    assert all(c.data.tags[TRIAL_STATUS_TAG] in ("completed", "early_stopped") for c in retried)
    assert any(int(c.data.tags["tuner.resumed_from_epoch"]) >= 2 for c in retried), "retried from epoch 1"
    for child in retried:  # a continued trial logs the epochs after its checkpoint, up to its last one
        steps = {m.step for m in client.get_metric_history(child.info.run_id, "val_loss")}
        assert steps == set(range(1, int(child.data.metrics["epochs_run"]) + 1))
    # Every trial that ended after the kill ran on the surviving head node.
    head_node = Counter(c.data.tags["tuner.node_id"] for c in retried).most_common(1)[0][0]
    assert all(c.data.tags["tuner.node_id"] == head_node for c in retried)
    print(
        f"two-node study: trials per node {dict(nodes)}, retried {len(retried)}, continued from epochs "
        f"{[c.data.tags['tuner.resumed_from_epoch'] for c in retried]}"
    )

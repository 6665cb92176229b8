"""The MLflow UI as a user meets it: ``tuner ui`` serving a finished study's store, looked at in a headless Chromium
with a fresh profile (tests.helpers.browser), and a study that writes nothing into the folder it is started from.

Screenshots are kept in pytest's temporary folder (their paths are printed); with ``TUNER_UI_SCREENSHOTS=DIR`` they
are also written to DIR (the README's pictures come from there)."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.helpers.browser import Browser, find_chromium
from tests.helpers.cli import run_cli, start_cli
from tuner.cli import main as cli_main
from tuner.schema import CHOSEN_TAG, PHASE_TAG, SEARCH_TRIAL_TAG
from tuner.tracking import create_sqlite_store
from tuner.ui import experiment_address, run_link

SPACE = "steel_multiclass"
RUN = "ui"
ADDRESS = re.compile(r"http://127\.0\.0\.1:(\d+)(/#/experiments/\d+\?workflowType=machine_learning)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- the command's errors: one line, exit 2 ---
def test_ui_without_a_store_says_so_in_one_line(tmp_path, capsys):
    assert cli_main(["ui", "--results-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no MLflow store at ") and "mlflow.db" in err and len(err.splitlines()) == 1
    assert cli_main(["ui", "steel_binary", "--results-dir", str(tmp_path)]) == 2
    assert "no run of space steel_binary" in capsys.readouterr().err


def test_ui_on_a_busy_port_says_so_in_one_line(tmp_path, capsys):
    create_sqlite_store(tmp_path / "mlflow.db")
    capsys.readouterr()  # MLflow's own messages while the store was made
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli_main(["ui", "--results-dir", str(tmp_path), "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == f"error: --port {port}: 127.0.0.1:{port} is in use (another MLflow UI?); pass another --port or --host"
    )
    assert cli_main(["ui", "--results-dir", str(tmp_path), "--port", "70000"]) == 2
    assert "'70000' is not a port number (1-65535)" in capsys.readouterr().err


def test_ui_of_a_study_tracked_to_a_server_points_at_the_server(tmp_path, capsys):
    run = tmp_path / "steel_binary" / "s"
    run.mkdir(parents=True)
    server = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    (run / "run.json").write_text(json.dumps({"started": "2026-01-01T00:00:00", "tracking_uri": server}))
    assert cli_main(["ui", "steel_binary", "--results-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"the study tracked to the MLflow server {server}; open {server}/#/experiments?workflowType=")
    assert "does not answer" in out and not (tmp_path / "mlflow-ui.log").exists()  # no local server started


def test_every_address_opens_the_runs_table():
    """MLflow 3.17 opens an experiment on its GenAI page unless the address or the browser's storage says
    otherwise (tuner.ui's docstring): every address tuner prints says so."""
    assert experiment_address("http://127.0.0.1:5000", "3") == (
        "http://127.0.0.1:5000/#/experiments/3?workflowType=machine_learning"
    )
    assert experiment_address("https://mlflow.example:443/", None).endswith(
        "/#/experiments?workflowType=machine_learning"
    )


# --- a real study, then its UI ---
@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A tiny finished study (search, verify, baseline, test split, model), started from an empty folder with its
    results elsewhere."""
    root = tmp_path_factory.mktemp("ui-study")
    scratch, results = root / "scratch", root / "elsewhere" / "results"
    scratch.mkdir()
    proc = run_cli(
        "run",
        SPACE,
        "--trials",
        "3",
        "--max-epochs",
        "2",
        "--verify-top",
        "1",
        "--verify-seeds",
        "1",
        "--no-dashboard",
        "--num-cpus",
        "2",
        "--results-dir",
        str(results),
        "--name",
        RUN,
        cwd=scratch,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    export = json.loads((results / SPACE / RUN / "best_config.json").read_text())
    return {"scratch": scratch, "results": results, "stdout": proc.stdout, "export": export}


@pytest.mark.slow
def test_a_study_run_from_another_folder_writes_nothing_there(study):
    assert sorted(p.name for p in study["scratch"].iterdir()) == []  # no mlruns/, mlflow.db, mlartifacts/
    models = list((study["results"] / "mlartifacts").rglob("MLmodel"))
    assert len(models) == 1, "the chosen model's files are under the results folder"

    from mlflow.tracking import MlflowClient

    mlflow = study["export"]["mlflow"]
    client = MlflowClient(tracking_uri=mlflow["tracking_uri"])
    runs = client.search_runs([mlflow["experiment_id"]], max_results=100)
    by_phase = {}
    for run in runs:
        by_phase.setdefault(run.data.tags.get(PHASE_TAG), []).append(run)
    chosen = study["export"]["trial_number"]
    assert [r.data.tags.get(SEARCH_TRIAL_TAG) for r in by_phase["verify"]] == [str(chosen)]
    assert all(SEARCH_TRIAL_TAG not in r.data.tags for r in by_phase["search"])
    (baseline,) = by_phase["baseline"]  # the report's config: the search trial with its params, if any
    same = [
        r.info.run_name.removeprefix("trial-").lstrip("0")
        for r in by_phase["search"]
        if r.data.params == baseline.data.params
    ]
    assert baseline.data.tags.get(SEARCH_TRIAL_TAG) == (same[0] if same else None)
    marked = [r.info.run_id for r in runs if r.data.tags.get(CHOSEN_TAG) == "true"]
    assert marked == [mlflow["child_run_id"]]


@pytest.mark.slow
def test_the_mlflow_ui_in_a_fresh_browser(study, tmp_path):
    if find_chromium() is None:
        pytest.skip("no Chromium on PATH (chromium, chromium-browser, google-chrome): apt-get install chromium")
    port = _free_port()
    ui = start_cli(
        "ui", SPACE, "--results-dir", str(study["results"]), "--port", str(port), cwd=study["scratch"], capture=True
    )
    lines = _lines_of(ui)
    try:
        printed = _wait_for_line(lines, "MLflow UI: ", timeout=180)
        found = ADDRESS.search(printed)
        assert found and int(found.group(1)) == port, printed
        header = ADDRESS.search(study["stdout"])  # the run header printed the same address (default port)
        assert header and header.group(2) == found.group(2)
        shots = _look_at_the_ui(found.group(0), study, tmp_path / "shots")
        print("screenshots:", *shots, sep="\n  ")
    finally:
        os.killpg(ui.pid, signal.SIGINT)  # Ctrl-C in its terminal
        status = ui.wait(timeout=60)
    assert status == 0
    assert "MLflow UI stopped" in _drain(lines)
    assert sorted(p.name for p in study["scratch"].iterdir()) == []


def _look_at_the_ui(address: str, study: dict, shots: Path) -> list[Path]:
    shots.mkdir()
    export, run_name = study["export"], RUN
    mlflow = export["mlflow"]
    base = address.split("/#/")[0]
    with Browser(shots / "profile", width=1600, height=1000) as browser:
        browser.open(address)
        parent = f"!!document.querySelector('[role=row][row-id=\"{mlflow['parent_run_id']}\"]')"
        browser.wait_for(parent, timeout=120, what=f"the runs table lists run {run_name}")
        assert "workflowType=machine_learning" in browser.evaluate("location.href")
        page = browser.text()
        assert "matching runs" in page and "Run Name" in page and "Token Usage" not in page
        models = browser.evaluate(_cell(mlflow["parent_run_id"], "attributes.`Models`") + ".innerText")
        assert models.strip() == "model", models  # the Models column names the logged model
        # The screenshots show the runs, not MLflow's chat panel (a user closes it the same way, once).
        browser.evaluate("document.querySelector('[data-component-id=\"mlflow.assistant.chat_panel.close\"]')?.click()")
        expand = _cell(mlflow["parent_run_id"], "attributes.`Run Name`") + ".querySelector('button')"
        browser.evaluate(f"{expand}.click()")  # the parent's expand button
        children = ("trial-001", "trial-002", "trial-003", "verify-001", "baseline-001")
        rows = " && ".join(f"document.body.innerText.includes({name!r})" for name in children)
        browser.wait_for(rows, timeout=60, what="the parent expands to its trials")
        taken = [browser.screenshot(shots / "mlflow-runs.png")]

        browser.open(f"{base}/{run_link(mlflow['experiment_id'], mlflow['child_run_id'])}")  # as the parent links it
        browser.wait_for("document.body.innerText.includes('tuner.chosen')", timeout=60, what="the chosen run's tags")
        browser.wait_for(
            f"document.body.innerText.includes('Parent run\\n{run_name}')",
            timeout=60,
            what="the chosen run names its parent",
        )
        page = browser.text()
        assert "Model training" in page and "Evaluation runs" not in page  # the model-training pages, not GenAI
        assert re.search(r"tuner\.chosen\s*:\s*true", page), page[-2000:]
        assert "Chosen: this trial's config is the choice of study" in page
        taken.append(browser.screenshot(shots / "mlflow-chosen-run.png"))

        browser.open(f"{base}/{run_link(mlflow['experiment_id'], mlflow['parent_run_id'])}")
        browser.wait_for(
            "document.body.innerText.includes('Logged models (1)')",
            timeout=60,
            what="the parent run lists its logged model",
        )
        assert f"Chosen: trial {export['trial_number']}" in browser.text()
        taken.append(browser.screenshot(shots / "mlflow-parent-run.png"))
    keep = os.environ.get("TUNER_UI_SCREENSHOTS")
    if keep:
        for shot in taken:
            shutil.copyfile(shot, Path(keep) / shot.name)
    return taken


def _cell(run_id: str, column: str) -> str:
    """The runs table's cell of a run's column (JavaScript). The table is three grids side by side (pinned left,
    centre, pinned right), each with its own row element of the run: they share the run's id as ``row-id``."""
    return f'document.querySelector(\'[role=row][row-id="{run_id}"] [col-id="{column}"]\')'


def _lines_of(process) -> queue.Queue:
    """The process's output lines as they come (a thread reads the pipe: no read blocks the test past a deadline)."""
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _wait_for_line(lines: queue.Queue, start: str, timeout: float) -> str:
    deadline, seen = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if line.startswith(start):
            return line
    raise AssertionError(f"no line starting {start!r} within {timeout:g}s; output: {''.join(seen)[-2000:]}")


def _drain(lines: queue.Queue) -> str:
    out = []
    while (line := lines.get(timeout=30)) is not None:
        out.append(line)
    return "".join(out)

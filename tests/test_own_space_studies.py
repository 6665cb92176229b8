"""Studies of spaces of the user's own, from project folders outside the repository, with the real parts: the CLI
and the Python API in fresh processes, each with its own local Ray, a real SQLite MLflow store, real files.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.cli import PROJECT_ROOT, cli_env, run_cli, start_cli
from tests.helpers.outside_project import write_distribution, write_project
from tests.helpers.progress import ended_trials

QUIET = ("--no-dashboard", "--progress-every", "0")


def _export(run_dir: Path) -> dict:
    return json.loads((run_dir / "best_config.json").read_text())


def _only_run(results: Path, space: str) -> Path:
    [run_dir] = [p.parent for p in (results / space).glob("*/run.json")]
    return run_dir


def _test_split(space_file: Path, results: Path) -> tuple[np.ndarray, np.ndarray]:
    """The study's test rows, read by the project's own loader in a fresh process (as the study read them)."""
    code = (
        "import sys, numpy as np; from tuner import spaces; from tuner.datasets import load_dataset; "
        "spec = spaces.load(sys.argv[1]).spec; "
        "d = load_dataset(spec.dataset, None, spec.data_options, __import__('pathlib').Path(sys.argv[2])); "
        "t = d.split('test'); np.save(sys.argv[3], t['x']); np.save(sys.argv[4], t['y'])"
    )
    x_file, y_file = results.parent / "test_x.npy", results.parent / "test_y.npy"
    subprocess.run(
        [sys.executable, "-c", code, str(space_file), str(results / ".data"), str(x_file), str(y_file)],
        check=True,
        env=cli_env(),
        cwd=results.parent,
    )
    return np.load(x_file), np.load(y_file)


def _predict_elsewhere(tracking_uri: str, model_uri: str, x: np.ndarray, where: Path) -> tuple[np.ndarray, dict]:
    """The model loaded and predicting in a fresh process whose path holds neither the project's folder nor this
    repository's checkout; where its family and tuner's code were imported from."""
    where.mkdir(exist_ok=True)
    np.save(where / "x.npy", x)
    code = (
        "import json, sys, numpy as np, mlflow; mlflow.set_tracking_uri(sys.argv[1]); "
        "model = mlflow.pyfunc.load_model(sys.argv[2]); np.save('pred.npy', model.predict(np.load('x.npy'))); "
        "import family, tuner; print(json.dumps({'family': family.__file__, 'tuner': tuner.__file__}))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLFLOW_TRACKING_URI")}
    proc = subprocess.run(
        [sys.executable, "-c", code, tracking_uri, model_uri],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(where / "pred.npy"), json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_new_project_runs_as_generated_and_its_model_predicts_where_neither_it_nor_tuner_is(tmp_path):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    elsewhere.mkdir()
    made = run_cli("new", "demo", "--dir", str(work), cwd=tmp_path)
    assert made.returncode == 0 and f"tuner run {work / 'demo' / 'space.py'} --trials 4" in made.stdout, made.stderr
    started = time.monotonic()
    study = run_cli("run", "demo/space.py", "--trials", "4", cwd=work)  # as its README says, from its parent
    wall = time.monotonic() - started
    assert study.returncode == 0, study.stdout[-3000:] + study.stderr[-3000:]
    assert "SYNTHETIC" in study.stdout and "Traceback" not in study.stderr
    print(f"tuner new project: `tuner run demo/space.py --trials 4` took {wall:.1f} s")
    checked = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "demo"],
        cwd=work,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.returncode == 0 and "1 passed" in checked.stdout, checked.stdout[-3000:]

    results = work / "results"
    run_dir = _only_run(results, "demo")
    export = _export(run_dir)
    assert export["space"] == "demo" and export["model"]["uri"].startswith("models:/")
    record = json.loads((run_dir / "run.json").read_text())
    assert record["space_source"]["ref"] == f"{work / 'demo' / 'space.py'}:SPEC"
    x, y = _test_split(work / "demo" / "space.py", results)
    (work / "demo").rename(tmp_path / "moved-away")  # the model must not need the project's folder
    predicted, imported = _predict_elsewhere(export["mlflow"]["tracking_uri"], export["model"]["uri"], x, elsewhere)
    assert float(np.mean(predicted == y)) == pytest.approx(export["test"]["test_accuracy"], abs=1e-12)
    for code in imported.values():  # both came with the model, neither from the project nor from this checkout
        assert not code.startswith((str(PROJECT_ROOT), str(tmp_path / "moved-away"))), imported
    (tmp_path / "moved-away").rename(work / "demo")

    # From another working directory, by name: analyze, extend, a warm start, a comparison with a report space.
    where = ("--results-dir", str(results))
    analyzed = run_cli("analyze", "demo", *where, cwd=elsewhere)
    assert analyzed.returncode == 0 and "analysis written to" in analyzed.stdout, analyzed.stderr[-2000:]
    extended = run_cli("extend", "demo", "--trials", "1", *where, cwd=elsewhere)
    assert extended.returncode == 0, extended.stdout[-2000:] + extended.stderr[-2000:]
    assert _export(run_dir)["search"]["trials"] == 5
    warm = run_cli(
        "run",
        str(work / "demo" / "space.py"),
        "--trials",
        "2",
        "--warm-start",
        f"demo:{run_dir.name}",
        "--name",
        "warm",
        "--verify-top",
        "0",
        *QUIET,
        *where,
        cwd=elsewhere,
    )
    assert warm.returncode == 0 and "warm start: 5 earlier trial(s) from demo:" in warm.stdout, warm.stderr[-2000:]
    report = run_cli(
        "run",
        "steel_binary",
        "--trials",
        "2",
        "--max-epochs",
        "2",
        "--verify-top",
        "0",
        "--no-report-baseline",
        *QUIET,
        *where,
        cwd=elsewhere,
    )
    assert report.returncode == 0, report.stderr[-2000:]
    compared = run_cli("compare", f"{work / 'demo' / 'space.py'}:warm", "steel_binary", *where, cwd=elsewhere)
    assert compared.returncode == 0, compared.stderr[-2000:]
    table = compared.stdout.splitlines()
    assert any(line.strip().startswith("demo:warm ") for line in table), compared.stdout
    assert any(line.strip().startswith("steel_binary:") for line in table), compared.stdout


@pytest.mark.slow
def test_an_outside_study_killed_mid_study_resumes_from_another_directory_to_exactly_its_trials(tmp_path):
    work, elsewhere, trials = tmp_path / "work", tmp_path / "elsewhere", 8
    elsewhere.mkdir()
    space_file = write_project(work / "proj")
    driver = start_cli(
        "run",
        "proj/space.py",
        "--trials",
        str(trials),
        "--set",
        "sleep_s=0.4",
        "--max-epochs",
        "3",
        "--num-cpus",
        "2",
        "--verify-top",
        "0",
        "--name",
        "killed",
        *QUIET,
        cwd=work,
    )
    run_dir = work / "results" / "outside" / "killed"
    deadline = time.monotonic() + 180
    while ended_trials(run_dir) < 2 and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert driver.poll() is None, "the study ended before it could be killed"
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait(timeout=30)
    assert ended_trials(run_dir) < trials

    where = ("--results-dir", str(work / "results"))
    original = space_file.read_text()
    space_file.write_text(original.replace('mode="max"', 'mode="min"'))
    refused = run_cli("resume", "outside", *where, cwd=elsewhere)
    assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1, refused.stderr
    assert (
        "error: space outside is not the one run killed started with: its mode changed (max -> min)" in refused.stderr
    )
    space_file.write_text(original + "\n# a comment added since the study started\n")
    resumed = run_cli("resume", "outside", *where, cwd=elsewhere, timeout=300)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"warning: {space_file} changed since run killed started; continuing with it as it is now" in resumed.stdout
    export = _export(run_dir)
    assert export["search"]["trials"] == trials and sum(export["search"]["statuses"].values()) == trials
    assert "failed" not in export["search"]["statuses"], export["search"]["statuses"]


@pytest.mark.slow
def test_an_installed_package_space_runs_by_its_registered_name(tmp_path):
    site = tmp_path / "site"
    write_project(site, name="pkg_space", package="userpkg")
    write_distribution(site, "userpkg", {"pkg_space": "userpkg.space:SPEC"})
    study = run_cli(
        "run", "pkg_space", "--trials", "2", "--verify-top", "0", *QUIET, cwd=tmp_path, env={"PYTHONPATH": str(site)}
    )
    assert study.returncode == 0, study.stdout[-2000:] + study.stderr[-2000:]
    run_dir = _only_run(tmp_path / "results", "pkg_space")
    assert _export(run_dir)["search"]["statuses"] == {"completed": 2}
    assert json.loads((run_dir / "run.json").read_text())["space_source"]["origin"] == "registered by userpkg 1.0"


API_SCRIPT = """
import json, os, sys
import mlflow, ray, tuner

env, uri = dict(os.environ), mlflow.get_tracking_uri()
options = json.loads(sys.argv[3])
first = tuner.run(sys.argv[1], name="api", **options)
second = tuner.run(sys.argv[2], name="api", **options)  # another project, with the same module names
loaded = tuner.load("demo", name="api", results_dir=options["results_dir"])
print(json.dumps({"first": first.best_config, "second": second.space, "second_status": second.status,
                  "test": first.test, "trials": len(first.trials), "loaded": loaded.best_config,
                  "mlflow": first.mlflow, "ray_running": ray.is_initialized(),
                  "env_changed": sorted(k for k in set(env) | set(os.environ) if env.get(k) != os.environ.get(k)),
                  "uri_same": mlflow.get_tracking_uri() == uri}))
"""


@pytest.mark.slow
def test_the_python_api_runs_two_studies_in_one_process_and_chooses_what_the_cli_chooses(tmp_path):
    work = tmp_path / "work"
    assert run_cli("new", "demo", "--dir", str(work), cwd=tmp_path).returncode == 0
    other = write_project(tmp_path / "other")
    results = str(tmp_path / "results")
    # One trial at a time, random search, no pruning: the same seed gives the same trials, the same choice.
    options = {"trials": 3, "searcher": "random", "scheduler": "fifo", "max_concurrent": 1, "verify_top": 2,
               "verify_seeds": 1, "dashboard": False, "progress_every": 0, "results_dir": results}  # fmt: skip
    api = subprocess.run(
        [sys.executable, "-c", API_SCRIPT, str(work / "demo" / "space.py"), str(other), json.dumps(options)],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert api.returncode == 0, api.stdout[-3000:] + api.stderr[-3000:]
    got = json.loads(api.stdout.strip().splitlines()[-1])
    assert got["second"] == "outside" and got["second_status"] == "finished"
    assert got["ray_running"] is False and got["env_changed"] == [] and got["uri_same"] is True
    assert got["trials"] == 3 and got["loaded"] == got["first"]
    assert got["mlflow"]["parent_run_id"] and got["mlflow"]["tracking_uri"].endswith("results/mlflow.db")
    accuracy = got["test"]["test_accuracy"]
    assert accuracy["split"] == "test" and accuracy["low"] <= accuracy["value"] <= accuracy["high"]

    cli = run_cli(
        "run",
        "demo/space.py",
        "--trials",
        "3",
        "--searcher",
        "random",
        "--scheduler",
        "fifo",
        "--max-concurrent",
        "1",
        "--verify-top",
        "2",
        "--verify-seeds",
        "1",
        "--name",
        "cli",
        "--results-dir",
        results,
        *QUIET,
        cwd=work,
    )
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert _export(Path(results) / "demo" / "cli")["config"] == got["first"]

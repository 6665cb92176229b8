"""Shared fixtures: one real local Ray instance for the whole session, generated data files on disk."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tuner.datasets import steel

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _temporary_files_under_pytest(tmp_path_factory):
    """Checkpoint folders that tests' own report functions receive (and keep, to evaluate from them) live under
    pytest's temporary root, which pytest prunes, instead of piling up in the system's temporary folder."""
    import tempfile

    before = tempfile.tempdir
    tempfile.tempdir = str(tmp_path_factory.mktemp("tmp"))
    yield
    tempfile.tempdir = before


@pytest.fixture(scope="session", autouse=True)
def _user_cache_under_pytest(tmp_path_factory):
    """tuner's per-user cache (the empty MLflow store it copies) is made fresh for the session, not in ~/.cache:
    the tests then also exercise making it. Subprocesses inherit the variable."""
    before = os.environ.get("TUNER_CACHE_DIR")
    os.environ["TUNER_CACHE_DIR"] = str(tmp_path_factory.mktemp("user-cache"))
    yield
    if before is None:
        os.environ.pop("TUNER_CACHE_DIR", None)
    else:
        os.environ["TUNER_CACHE_DIR"] = before


@pytest.fixture(scope="session")
def ray_instance():
    """A real local Ray (2 CPUs, no dashboard), started once: Ray start-up costs seconds."""
    import ray

    from tuner.cluster import connect

    info = connect(None, dashboard=False, num_cpus=2)
    yield info
    ray.shutdown()


@pytest.fixture
def one_torch_thread():
    """One torch thread, as a trial with one CPU has: on a busy 2-core machine more threads only contend."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def steel_openml_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("steel") / "steel_openml.csv"
    path.write_text(steel.generate_openml_csv())
    return path


def run_cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m tuner ...`` in a fresh process, as a user would run it."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run(
        [sys.executable, "-m", "tuner", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )

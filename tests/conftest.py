"""Shared fixtures: one real local Ray instance for the whole session, generated data files on disk.

Only fixtures live here; code the tests share is in ``tests/helpers``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.cli import PROJECT_ROOT
from tuner.datasets import steel


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
    """A real local Ray (2 CPUs, no dashboard), started once: Ray start-up costs seconds.

    Its worker processes inherit PYTHONPATH with the project root, so they can import test code by name (the
    model family ``benchmarks.sleep_family``) whatever directory pytest was started from."""
    import ray

    from tuner.cluster import connect

    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), before) if p)
    info = connect(None, dashboard=False, num_cpus=2)
    yield info
    ray.shutdown()
    if before is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = before


@pytest.fixture
def one_torch_thread():
    """One torch thread, as a trial with one CPU has: on a busy 2-core machine more threads only contend."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory, worker_id) -> Path:
    """The generated datasets' cache (``load_dataset``'s ``cache_dir``), one for the whole test run: with
    pytest-xdist, its processes share it (``tests.helpers.smoke.load_shared`` lets one generate a dataset while the
    others wait), as a user's studies share ``results/.data``. Generating the HMS folder takes ~40 s of CPU."""
    if worker_id == "master":  # one process: its own temporary folder
        return tmp_path_factory.mktemp("data_cache")
    shared = tmp_path_factory.getbasetemp().parent / "data_cache"  # the run's root, above each process's folder
    shared.mkdir(exist_ok=True)
    return shared


@pytest.fixture(scope="session")
def trained_one_epoch(data_cache):
    """``trained_one_epoch(name)``: space ``name`` after one epoch (tests.helpers.smoke.train_one_epoch), trained
    once for the session: the tests that need it only read the rows, predict and evaluate from the weights."""
    from tests.helpers.smoke import train_one_epoch

    done = {}

    def get(name: str):
        if name not in done:
            done[name] = train_one_epoch(name, data_cache)
        return done[name]

    return get


@pytest.fixture(scope="session")
def steel_openml_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("steel") / "steel_openml.csv"
    path.write_text(steel.generate_openml_csv())
    return path

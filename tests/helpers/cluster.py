"""A real local cluster for tests: cluster/local_cluster.sh, free ports for it, and the processes it started."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import PROJECT_ROOT

LOCAL_SCRIPT = PROJECT_ROOT / "cluster" / "local_cluster.sh"


def run_local_script(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("RAY_ADDRESS", None)
    return subprocess.run(
        ["bash", str(LOCAL_SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=PROJECT_ROOT
    )


def free_base_port() -> int:
    """A base port whose whole block (GCS, dashboard, client, two nodes) is unused, below the ephemeral range."""
    candidates = list(range(27000, 32000, 200))
    random.shuffle(candidates)
    for base in candidates:
        ports = [base, base + 1, base + 2, *range(base + 10, base + 16), *range(base + 20, base + 26)]
        if all(port_free(p) for p in ports):
            return base
    pytest.fail("no free block of ports between 27000 and 32000")


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def process_trees(state: Path) -> list:
    """The processes of the nodes recorded under a state directory: each `ray start` and everything below it."""
    import psutil

    found = []
    for pidfile in state.glob("*.pid"):
        try:
            root = psutil.Process(int(pidfile.read_text()))
            found += [root, *root.children(recursive=True)]
        except (psutil.NoSuchProcess, ValueError):
            continue
    return found

"""Ray core's internals tuner uses (see ``tuner.internals``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

TOKEN_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"
"""The logger Ray writes its "Token authentication is enabled for this Ray cluster" notice to."""


def token_auth_logger() -> logging.Logger:
    """The logger of Ray's token-auth notice, printed at every ``ray.init`` of a local instance.

    Relies on: the notice being logged by the module ``ray._private.authentication.authentication_token_setup``
    through a logger named after the module. Why not public: Ray has no setting that silences this one notice
    without silencing its other start-up warnings. Checked against Ray 2.60.0."""
    return logging.getLogger(TOKEN_AUTH_LOGGER)


def preload_modules(modules: Iterable[str]) -> dict[str, Any]:
    """``ray.init`` keyword arguments that make a local instance's worker processes import ``modules`` as they
    start (during ``ray.init``), instead of when their first task runs.

    Relies on: ``ray.init``'s private ``_system_config`` argument and its ``preload_python_modules`` key. Why not
    public: a runtime env's ``worker_process_setup_hook`` runs when a job's task first reaches a worker, not in the
    workers Ray pre-starts. Checked against Ray 2.60.0."""
    return {"_system_config": {"preload_python_modules": list(dict.fromkeys(modules))}}


def dashboard_url() -> str | None:
    """The dashboard address of the Ray instance this process is connected to; None when it runs no dashboard.

    Relies on: ``ray._private.worker.global_worker.node.address_info["webui_url"]`` (the driver's node holds the
    addresses of the processes Ray started or joined). Why not public: ``ray.init`` returns the address only to
    the call that connected; a process already connected (a second study in one process) has no public way to ask.
    Checked against Ray 2.60.0."""
    from ray._private.worker import global_worker

    return global_worker.node.address_info["webui_url"] or None


def local_start_timed_out(exc: BaseException) -> bool:
    """Whether ``ray.init`` failed because a local instance's raylet did not register in time: on a busy machine
    the raylet can take longer than Ray's fixed wait, and a second start usually succeeds.

    Relies on: ``ray._private.node.Node.__init__`` raising a plain ``Exception`` whose message says "timed out
    during startup" once ``raylet_start_wait_time_s`` (30 s, not configurable) has passed. Why not public: Ray
    raises no exception class of its own for it. Checked against Ray 2.60.0."""
    return type(exc) is Exception and "timed out during startup" in str(exc)


__all__ = ["TOKEN_AUTH_LOGGER", "dashboard_url", "local_start_timed_out", "preload_modules", "token_auth_logger"]

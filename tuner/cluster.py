"""Connecting to Ray: a local instance, or an existing cluster (``--address``), and what the user needs to watch it."""

from __future__ import annotations

import importlib
import logging
import os
import socket
import threading
from dataclasses import dataclass

from tuner import PROJECT_ROOT
from tuner.errors import TunerError, first_line
from tuner.internals.ray_core import TOKEN_AUTH_LOGGER as TOKEN_AUTH_LOGGER  # the notice's logger, named here too
from tuner.internals.ray_core import dashboard_url, local_start_timed_out, preload_modules, token_auth_logger
from tuner.session import RAY_START_SETTINGS, environment

REACH_TIMEOUT_S = 5.0


JOB_RUNTIME_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"
"""Set by Ray's job supervisor for a driver started by ``ray job submit`` (holds the job's runtime env)."""


def check_reachable(address: str) -> None:
    """Fail in seconds when nothing listens at a host:port address: Ray itself retries for minutes."""
    target = address.removeprefix("ray://")
    if target == "auto" or ":" not in target:
        return
    host, _, port = target.rpartition(":")
    if not port.isdigit():
        raise TunerError(f"--address {address!r}: expected auto, host:port or ray://host:port")
    try:
        socket.create_connection((host, int(port)), timeout=REACH_TIMEOUT_S).close()
    except OSError as exc:
        raise TunerError(f"cannot reach a Ray cluster at --address {address}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class ClusterInfo:
    address: str
    remote: bool
    cpus: float
    gpus: float
    nodes: int
    dashboard_url: str | None
    gpus_per_trial: float = 0.0
    """The GPU share each trial gets here (set by the driver once it knows what the cluster has)."""

    def describe(self) -> str:
        where = f"cluster at {self.address}" if self.remote else "local instance"
        return f"{where}: {self.nodes} node(s), {self.cpus:g} CPUs, {self.gpus:g} GPUs"

    def dashboard_help(self) -> str:
        if not self.dashboard_url:
            return "dashboard off (start without --no-dashboard, needs ray[default])"
        url = self.dashboard_url if self.dashboard_url.startswith("http") else f"http://{self.dashboard_url}"
        return (
            f"{url}  (token auth: run `ray get-auth-token` on the head node and paste the token at the login "
            f"prompt; HTTP clients send 'Authorization: Bearer <token>')"
        )


TOKEN_AUTH_NOTICE = "Token authentication is enabled for this Ray cluster"
"""Ray's warning at every ``ray.init`` of a local instance; tuner's header says how to log in instead."""


class _HideTokenAuthNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(TOKEN_AUTH_NOTICE)


_TOKEN_AUTH_FILTER = _HideTokenAuthNotice()


def _quiet_start(verbose: bool) -> None:
    """Ray's start-up messages only with ``--verbose``: the token-auth notice is filtered at the logger that writes
    it (Ray's other warnings, e.g. that token auth is off, still show)."""
    logger = token_auth_logger()
    if verbose:
        logger.removeFilter(_TOKEN_AUTH_FILTER)
    else:
        logger.addFilter(_TOKEN_AUTH_FILTER)  # once: a logger keeps a filter it already has only once


TRIAL_MODULES = ("ray.tune.trainable.function_trainable", "tuner.trial")
"""What every trial actor imports before its first epoch (Ray Tune's function trainable takes ~1.5 s here)."""
DRIVER_MODULES = ("starlette.datastructures", "tuner.monitor", "tuner.model_searchers")
"""Imported while ``ray.init`` waits for Ray's processes instead of afterwards: what the driver's first ``ray.put``
imports (Ray's serializer hooks for starlette, installed with mlflow: ~1 s here), the study's Tune callback with
Ray Tune (~1-2 s here) and the model-based searchers with optuna and hyperopt (the spaces' default searchers)."""


def _import_in_background(modules: tuple[str, ...]) -> None:
    def load() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except ImportError:  # not installed: Ray skips its hook too
                pass

    threading.Thread(target=load, name="tuner-imports", daemon=True).start()


def _init_arguments(
    address: str | None,
    dashboard: bool,
    num_cpus: int | None,
    num_gpus: int | None,
    preload: tuple[str, ...],
    verbose: bool = False,
    code: tuple[str, ...] = (),
) -> dict:
    """``ray.init``'s arguments: joining a cluster at ``address``, or sizing and starting a local instance.
    ``code``: files and package folders of a space's own code that a joined cluster's workers import (a local
    instance's workers read them where they are)."""
    # Trial output stays in Ray's worker logs (dashboard, /tmp/ray/session_latest/logs): the driver's own
    # progress lines stay readable; a failing trial's error reaches MLflow and the summary.
    kwargs: dict = {"logging_level": logging.INFO if verbose else logging.WARNING, "log_to_driver": False}
    if address:
        kwargs["address"] = address
        # The code travels to the cluster's workers; results and MLflow stay with this driver. A driver that
        # `ray job submit` started already has the job's runtime env (its --working-dir): keep that one.
        if JOB_RUNTIME_ENV not in os.environ:
            kwargs["runtime_env"] = {
                "working_dir": str(PROJECT_ROOT),
                "excludes": ["results/", ".venv/", ".git/", "*.db", "__pycache__/"],
                "env_vars": {name: os.environ.get(name, value) for name, value in RAY_START_SETTINGS.items()},
            }
            if code:  # each file or package lands on the workers' import path, as in its folder here
                kwargs["runtime_env"]["py_modules"] = list(code)
        return kwargs
    if not os.environ.get("RAY_ADDRESS"):  # RAY_ADDRESS: a driver Ray started (ray job submit) joins its cluster
        # Without an address Ray joins the cluster the latest `ray start` on this machine recorded
        # (/tmp/ray/ray_current_cluster), someone else's study included: a local study gets its own instance.
        kwargs["address"] = "local"
    kwargs["include_dashboard"] = dashboard
    kwargs["dashboard_host"] = "127.0.0.1"
    if num_cpus is not None:
        kwargs["num_cpus"] = num_cpus
    if num_gpus is not None:
        kwargs["num_gpus"] = num_gpus
    kwargs.update(preload_modules(TRIAL_MODULES + preload))
    return kwargs


def connect(
    address: str | None,
    dashboard: bool = True,
    num_cpus: int | None = None,
    preload: tuple[str, ...] = (),
    num_gpus: int | None = None,
    verbose: bool = False,
    code: tuple[str, ...] = (),
) -> ClusterInfo:
    """Start or join Ray. An address that cannot be reached is a one-line error, not a hang or a traceback.

    ``num_cpus`` and ``num_gpus`` size a local instance (default: what Ray detects); a cluster at ``address``
    declares its own. Ray takes GPU counts on trust: on a machine without GPUs they only do the bookkeeping.

    A local instance's worker processes import ``TRIAL_MODULES`` and ``preload`` (e.g. the model family, with
    torch) as they start, during ``ray.init`` and while the driver prepares the study, instead of when the first
    trials start. A module that fails to import there is skipped; the trial that needs it reports the error.
    ``verbose``: Ray's start-up messages reach the terminal (``--verbose``). ``code``: a space's own code, shipped
    to a joined cluster's workers."""
    import ray

    if address and not ray.is_initialized():
        check_reachable(address)
    if not ray.is_initialized():
        _import_in_background(DRIVER_MODULES)
        try:
            _quiet_start(verbose)
            # A local instance's processes (and so its workers) inherit this environment as ray.init starts them.
            with environment(RAY_START_SETTINGS):
                ray.init(**_init_arguments(address, dashboard, num_cpus, num_gpus, preload, verbose, code))
        except Exception as exc:
            if not address and local_start_timed_out(exc):
                raise TunerError(
                    "Ray's local instance did not start within Ray's 30 s wait (is the machine overloaded?); "
                    "run the command again once it is less busy"
                ) from None
            if not isinstance(exc, (ConnectionError, TimeoutError, ValueError, RuntimeError)):
                raise
            first = first_line(exc)
            hint = ""
            if address and os.environ.get("RAY_AUTH_MODE") != "token":
                hint = (
                    "; if the cluster uses token authentication (Ray 2.60's default for clusters started with "
                    "`ray start`), set RAY_AUTH_MODE=token and make its token available (`ray get-auth-token`)"
                )
            raise TunerError(f"cannot connect to Ray at --address {address or '(local)'}: {first}{hint}") from None
    resources = ray.cluster_resources()
    context = ray.get_runtime_context()
    try:
        dashboard = dashboard_url()
    except Exception:  # the URL is informational; a Ray-internal change must not stop the study
        dashboard = None
    return ClusterInfo(
        address=address or context.gcs_address,
        remote=bool(address),
        cpus=float(resources.get("CPU", 0)),
        gpus=float(resources.get("GPU", 0)),
        nodes=len([n for n in ray.nodes() if n.get("Alive")]),
        dashboard_url=dashboard,
    )

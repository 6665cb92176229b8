"""Where trials run: start or join Ray, check that one trial's request fits the cluster, and turn
``--gpus-per-trial auto`` into a measured share (tuner.packing). Nothing is written here: a request that cannot
run is an error before the study has a folder or an MLflow run."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from tuner.cluster import ClusterInfo
from tuner.errors import TunerError
from tuner.packing import AUTO as AUTO_GPUS


def place(plan, data: Callable[[], Any], echo: Callable[[str], None]) -> tuple[ClusterInfo, dict[str, Any]]:
    """The cluster, its ``gpus_per_trial`` the share every trial gets, and the GPU probe's figures (if any).
    ``data()``: the study's data, waited for only when a probe trial needs it."""
    cluster = _connect_checked(plan, echo)
    if cluster.nodes > 1 and plan.options.storage is None:
        echo(
            f"note: the cluster has {cluster.nodes} nodes and checkpoints go to {plan.run_dir}, a folder on this "
            f"machine: trials on other nodes can only save them there if it is on a filesystem they mount at "
            f"the same path; otherwise pass --storage with a shared folder (NFS) or a URI (s3://...)"
        )
    if plan.options.gpus_per_trial != AUTO_GPUS:
        return cluster, {}
    from tuner.packing import auto_gpu_share

    opts = plan.options
    from tuner.spaces.code import with_code

    loaded = with_code(data(), plan.space.source.folder)
    share, probe = auto_gpu_share(plan.spec, plan.fixed_config, loaded, opts.seed, opts.cpus_per_trial, echo)
    return dataclasses.replace(cluster, gpus_per_trial=share), probe


def _connect_checked(plan, echo: Callable[[str], None]) -> ClusterInfo:
    """Start or join Ray and check the per-trial request fits it. GPUs asked for on the command line but absent
    are an error; a space's default GPU share falls back to CPUs with a note."""
    from tuner.cluster import connect
    from tuner.spaces.code import shipped_code

    opts, space = plan.options, plan.space
    # A space's own family is imported by the trials themselves, once its folder is on their path.
    preload = () if space.source.folder else (plan.spec.trainable,)
    code = tuple(str(path) for path in shipped_code(space)) if opts.address else ()
    cluster = connect(
        opts.address,
        dashboard=opts.dashboard,
        num_cpus=opts.num_cpus,
        preload=preload,
        num_gpus=opts.num_gpus,
        verbose=opts.verbose,
        code=code,
    )
    gpus = opts.gpus_per_trial
    if gpus == AUTO_GPUS:
        if cluster.gpus == 0:
            raise TunerError(
                f"--gpus-per-trial auto needs GPUs; the Ray cluster has none ({cluster.describe()}); "
                f"give a number instead (0 trains on CPUs)"
            )
        gpus = 1.0  # until the probe trial chooses the share
    elif gpus > 0 and cluster.gpus == 0:
        if plan.gpus_asked:
            raise TunerError(
                f"--gpus-per-trial {gpus:g} asked for GPUs but the Ray cluster has none ({cluster.describe()}); "
                f"use --gpus-per-trial 0 to train on CPUs"
            )
        echo(f"note: space {plan.spec.name} asks for {gpus:g} GPU per trial but the cluster has none; training on CPUs")
        gpus = 0.0
    if opts.cpus_per_trial > cluster.cpus:
        raise TunerError(
            f"--cpus-per-trial {opts.cpus_per_trial:g} is more than the cluster's {cluster.cpus:g} CPUs; "
            f"no trial could start"
        )
    return dataclasses.replace(cluster, gpus_per_trial=gpus)


def trial_slots(cluster: ClusterInfo, cpus_per_trial: float) -> int:
    """How many trials fit on the cluster at once."""
    slots = max(1, int(cluster.cpus // cpus_per_trial))
    if cluster.gpus_per_trial > 0:
        slots = min(slots, int(cluster.gpus / cluster.gpus_per_trial + 1e-9))
    return slots


__all__ = ["place", "trial_slots"]

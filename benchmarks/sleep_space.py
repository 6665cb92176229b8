"""A model-free space over ``benchmarks.sleep_family``, for measuring the service and testing its trial statuses.

Not registered (it describes no report); benchmarks and tests build it with the knobs they need.
"""

from __future__ import annotations

from tuner.spec import Choice, EarlyStopping, Param, SpaceSpec, Uniform

FAMILY = "benchmarks.sleep_family"


def sleep_spec(
    sleep_s: float = 0.0,
    max_epochs: int = 1,
    grid: tuple[float, ...] | None = None,
    fail_above: float = 2.0,
    diverge_above: float = 2.0,
    checkpoint: bool = False,
    grace_period: int = 1,
    lucky_x: float | None = None,
) -> SpaceSpec:
    domain = Choice(grid) if grid else Uniform(0.0, 1.0)
    return SpaceSpec(
        name="sleep",
        report="none (service benchmark)",
        summary="sleeps each epoch and reports a known score peaking at x = 0.7",
        dataset="",
        data_options={},
        trainable=FAMILY,
        model="none",
        metric="val_score",
        mode="max",
        metrics=("val_loss", "val_score", "started_at", "ended_at"),  # the times: which trials overlapped
        max_epochs=max_epochs,
        grace_period=grace_period,
        params=(Param("x", domain, "where the score peaks at 0.7"),),
        fixed={
            "sleep_s": sleep_s,
            "checkpoint": checkpoint,
            "fail_above": fail_above,
            "diverge_above": diverge_above,
            "lucky_x": lucky_x,
        },
        early_stopping=EarlyStopping("val_loss", "min", patience=1000),
        default_searcher="random",
        default_scheduler="fifo",
    )

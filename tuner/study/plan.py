"""The plan phase: the user's options, the space's defaults and a resumed study's record, resolved once into a
frozen ``StudyPlan`` that every later phase reads and none changes.

Everything the user can get wrong in the options or a ``--config`` file is found here, before anything is
written. What depends on the machine (the cluster's CPUs and GPUs, the GPU share ``auto`` measures) is the
prepare phase's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.errors import TunerError
from tuner.options import RunOptions, check
from tuner.run_files import config_from_file
from tuner.settings import apply_settings
from tuner.spaces import Space, SpaceSource, load
from tuner.spec import SpaceSpec
from tuner.storage import normalise, study_root

REPORT_CONFIG = "report"
"""``--config report`` trains the report's own best config once (no file needed); ``report:NAME`` one of the
space's ``report_variants`` (e.g. the report's baseline)."""
DEFAULT_SEED = 0


@dataclass(frozen=True)
class StudyPlan:
    """One study, fully resolved: the space with the run's overrides, and options with no ``None`` left where the
    space has a default (``gpus_per_trial`` may still be ``"auto"``: the prepare phase measures the share)."""

    spec: SpaceSpec
    options: RunOptions
    fixed_config: dict[str, Any] | None
    """The one config to train (``--config``), or None for a search."""
    gpus_asked: bool
    """The user asked for GPUs (an error when the cluster has none, where a space's default falls back to CPUs)."""
    tracking_uri: str
    resume: dict[str, Any] | None = None
    """The run record of the study this plan continues (``tuner resume``), or None for a new study."""
    source: SpaceSource | None = None
    """Where the space came from (``tuner.spaces``): its code's folder travels to every trial and the model."""

    @property
    def space(self) -> Space:
        """The space with this run's overrides, and where it came from."""
        return Space(self.spec, self.source or load(self.spec).source)

    @property
    def name(self) -> str:
        return str(self.options.name)

    @property
    def run_dir(self) -> Path:
        return self.options.results_dir / self.spec.name / self.name

    @property
    def study_root(self) -> str:
        """Where Ray Tune keeps this study's checkpoints and state (``<root>/ray``)."""
        return study_root(self.options.storage, self.options.results_dir, self.spec.name, self.name)

    @property
    def default_store(self) -> bool:
        from tuner.tracking import default_tracking_uri

        return self.tracking_uri == default_tracking_uri(self.options.results_dir)

    def reference(self) -> dict[str, Any]:
        """The report's config and figures this run is compared with: a variant's for ``--config report:NAME``."""
        spec, variant = self.spec, _report_variant(self.options.config_file)
        if variant:
            return {"name": variant, "config": spec.active_config(spec.report_variants[variant]),
                    "results": spec.report_variant_results.get(variant, {})}  # fmt: skip
        return {"name": "best", "config": spec.active_config(spec.report_config), "results": spec.report_results}


def resolve(space: str | SpaceSpec | Space, options: RunOptions, resume: dict[str, Any] | None = None) -> StudyPlan:
    """Check the space's code and every option, and resolve the options against the space; nothing is written."""
    from tuner.spaces.code import check_code

    space = load(space)
    check_code(space)
    spec = space.spec
    check(options)
    if options.address:
        from tuner.cluster import check_reachable

        check_reachable(options.address)
    fixed, file_seed = _fixed_config(spec, options)
    gpus_asked = options.gpus_per_trial is not None
    results_dir = options.results_dir.resolve()
    options = dataclasses.replace(
        options,
        searcher=options.searcher or spec.default_searcher,
        scheduler=options.scheduler or spec.default_scheduler,
        cpus_per_trial=spec.resources.cpus if options.cpus_per_trial is None else options.cpus_per_trial,
        gpus_per_trial=spec.resources.gpus if options.gpus_per_trial is None else options.gpus_per_trial,
        seed=next(s for s in (options.seed, file_seed, DEFAULT_SEED) if s is not None),
        name=options.name or dt.datetime.now().strftime("%Y%m%d-%H%M%S"),
        results_dir=results_dir,
        storage=normalise(options.storage),
    )
    from tuner.tracking import default_tracking_uri
    from tuner.tracking.check import check_store

    tracking_uri = options.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(results_dir)
    check_store(tracking_uri)
    return StudyPlan(_with_overrides(spec, options), options, fixed, gpus_asked, tracking_uri, resume, space.source)


def _with_overrides(spec: SpaceSpec, options: RunOptions) -> SpaceSpec:
    if str(options.config_file or "").split(":")[0] == REPORT_CONFIG:  # the report's config, the report's way
        spec = dataclasses.replace(spec, fixed={**spec.fixed, **spec.report_fixed})
    if options.max_epochs is not None:
        spec = dataclasses.replace(
            spec, max_epochs=options.max_epochs, grace_period=min(spec.grace_period, options.max_epochs)
        )
    return apply_settings(spec, options.settings)


def _report_variant(choice: Any) -> str:
    text = str(choice or "")
    return text.partition(":")[2] if text.startswith(f"{REPORT_CONFIG}:") else ""


def report_config(spec: SpaceSpec, choice: str) -> dict[str, Any]:
    """The config ``--config report`` or ``--config report:NAME`` names."""
    _, _, variant = choice.partition(":")
    if not variant:
        if not spec.report_config:
            raise TunerError(
                f"--config {choice}: space {spec.name} declares no report_config; give a JSON file of "
                f"parameters (e.g. a tuner export)"
            )
        return spec.active_config(spec.report_config)
    if variant not in spec.report_variants:
        accepted = ", ".join(["report", *(f"report:{v}" for v in spec.report_variants)])
        raise TunerError(f"--config {choice}: space {spec.name} has no report config {variant!r}; accepted: {accepted}")
    return spec.active_config(spec.report_variants[variant])


def _fixed_config(spec: SpaceSpec, options: RunOptions) -> tuple[dict[str, Any] | None, int | None]:
    """The config ``--config`` names, checked against the space, and the seed its export file recorded."""
    choice = options.config_file
    if choice is None:
        return None, None
    if str(choice).split(":")[0] == REPORT_CONFIG:
        return spec.validate_config(report_config(spec, str(choice)), source=str(choice)), None
    config, payload = config_from_file(Path(choice))
    if payload.get("space") not in (None, spec.name):
        raise TunerError(f"{choice}: exported for space {payload['space']!r}, not {spec.name!r}")
    seed = payload.get("seed") if isinstance(payload.get("seed"), int) else None
    return spec.validate_config(config, source=str(choice)), seed


__all__ = ["REPORT_CONFIG", "StudyPlan", "report_config", "resolve"]

"""The typed, frozen description of one search space: what is searched, what trains it, how it is scored.

A space is declared with literals only (see ``search_spaces/``); nothing here imports Ray, torch or the
data, so a space can be listed, shown, validated and exported without training anything.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from trainables.metrics import VAL_LOSS
from tuner.errors import TunerError

SEARCHERS = ("grid", "random", "hyperopt", "optuna", "optuna_grouped", "optuna_gp", "optuna_cmaes")
SCHEDULERS = ("asha", "median", "fifo", "hyperband")
Mode = Literal["min", "max"]
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
"""A space's or a run's name: a folder under the results folder, an MLflow experiment or run name."""


@dataclass(frozen=True)
class LogUniform:
    """A float sampled uniformly in log space between ``low`` and ``high``."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not 0 < self.low < self.high:
            raise ValueError(f"LogUniform needs 0 < low < high, got {self.low}, {self.high}")

    def contains(self, value: Any) -> bool:
        return _is_number(value) and self.low <= value <= self.high

    def default_grid(self) -> tuple[float, ...]:
        return (self.low, math.sqrt(self.low * self.high), self.high)

    def describe(self) -> str:
        return f"loguniform[{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class Uniform:
    """A float sampled uniformly between ``low`` and ``high``."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise ValueError(f"Uniform needs low < high, got {self.low}, {self.high}")

    def contains(self, value: Any) -> bool:
        return _is_number(value) and self.low <= value <= self.high

    def default_grid(self) -> tuple[float, ...]:
        return (self.low, (self.low + self.high) / 2, self.high)

    def describe(self) -> str:
        return f"uniform[{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class IntUniform:
    """An integer between ``low`` and ``high``, both included."""

    low: int
    high: int

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise ValueError(f"IntUniform needs low < high, got {self.low}, {self.high}")

    def contains(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high

    def default_grid(self) -> tuple[int, ...]:
        return tuple(sorted({self.low, (self.low + self.high) // 2, self.high}))

    def describe(self) -> str:
        return f"int[{self.low}, {self.high}]"


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of values (numbers, strings or booleans)."""

    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        if len(self.values) < 1 or len(set(self.values)) != len(self.values):
            raise ValueError(f"Choice needs distinct values, got {self.values}")

    def contains(self, value: Any) -> bool:
        return any(value == v and type(value) is type(v) for v in self.values) or (
            _is_number(value) and any(_is_number(v) and value == v for v in self.values)
        )

    def default_grid(self) -> tuple[Any, ...]:
        return self.values

    def describe(self) -> str:
        return "{" + ", ".join(str(v) for v in self.values) + "}"


Domain = LogUniform | Uniform | IntUniform | Choice


@dataclass(frozen=True)
class Param:
    """One hyperparameter.

    ``active_if`` makes it conditional: ``("lr_schedule", ("plateau",))`` means the parameter only exists when
    ``lr_schedule`` is ``plateau``. Searchers sample every parameter (a flat space works with all of them);
    inactive ones are dropped before training and logging, so they never influence a trial.
    """

    name: str
    domain: Domain
    doc: str
    grid: tuple[Any, ...] | None = None
    active_if: tuple[str, tuple[Any, ...]] | None = None

    def grid_points(self) -> tuple[Any, ...]:
        return self.grid if self.grid is not None else self.domain.default_grid()


@dataclass(frozen=True)
class EarlyStopping:
    """In-trial early stopping: stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    monitor: str
    mode: Mode
    patience: int
    min_delta: float = 0.0


@dataclass(frozen=True)
class Resources:
    """Default resources of one trial. GPUs may be fractional (0.25 = four trials share a GPU)."""

    cpus: float = 1.0
    gpus: float = 0.0


@dataclass(frozen=True)
class Reference:
    """An untuned standard model the study trains on the same non-test rows and scores on the same test split as
    the chosen config (``tuner.study.references``): what the search's answer is worth beside it.

    ``estimator`` is the dotted path of a scikit-learn estimator class (imported only when the phase runs);
    ``params`` its constructor arguments, literals only (a fixed ``random_state``); ``scaled`` puts a
    ``StandardScaler``, fitted on the same rows, before it (linear models and SVMs). Inputs are the data's ``x``
    rows, flattened (images become pixel vectors)."""

    name: str
    estimator: str
    params: dict[str, Any] = field(default_factory=dict)
    scaled: bool = False


@dataclass(frozen=True)
class SpaceSpec:
    """Everything the service needs to search one report system."""

    name: str
    report: str
    """Which report the system comes from, e.g. ``002 Steel Plates Faults``."""
    summary: str
    dataset: str
    """Key of the dataset loader in ``tuner.datasets``."""
    data_options: dict[str, Any]
    """Literal options handed to the dataset loader (task, split fractions)."""
    trainable: str
    """Module of the model family: it exposes ``train(config, data, ctx)`` and ``evaluate(...)``."""
    model: str
    metric: str
    """The validation metric searched on; the trial reports it every epoch."""
    mode: Mode
    metrics: tuple[str, ...]
    """Every metric the trainable reports per epoch (``metric`` among them)."""
    max_epochs: int
    params: tuple[Param, ...]
    fixed: dict[str, Any] = field(default_factory=dict)
    """Settings of the report that are not searched (scheduler patience, ...); handed to the trainable."""
    early_stopping: EarlyStopping | None = None
    grace_period: int = 1
    """Epochs a trial runs before ASHA or median stopping may prune it."""
    score: Literal["best_epoch", "last_epoch"] = "best_epoch"
    """A trial's score: its best epoch's ``metric`` (the usual case), or its latest one when the trainable's metric
    is already an aggregate that only the last report completes (K-fold cross-validation inside one trial)."""
    default_searcher: str = "optuna"
    default_scheduler: str = "asha"
    resources: Resources = Resources()
    report_config: dict[str, Any] = field(default_factory=dict)
    """The report's own best configuration: a point of the space."""
    report_variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Other configurations the report published (name -> config, e.g. its baseline); points of the space too."""
    report_results: dict[str, float] = field(default_factory=dict)
    """Figures the report published for ``report_config`` (test split unless the key says otherwise)."""
    report_variant_results: dict[str, dict[str, float]] = field(default_factory=dict)
    """Figures the report published for each of ``report_variants`` (same naming as ``report_results``)."""
    report_fixed: dict[str, Any] = field(default_factory=dict)
    """Fixed settings the report's own configs train with where the space's default differs (its protocol, e.g.
    ``cv_folds=1``, the report's single split): ``--config report`` and the baseline phase use them."""
    references: tuple[Reference, ...] = ()
    """Untuned standard models scored beside the chosen config on the same test split, each difference with a
    paired bootstrap interval (``tuner.study.references``); none: the study says so and skips the phase."""
    smoke: dict[str, Any] = field(default_factory=dict)
    """``--set``-style overrides of ``fixed``/``data_options`` that make a smoke test of the space fast (a smaller
    image, say); tests apply them, studies never do."""
    notes: str = ""

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ValueError(f"space {self.name!r} is invalid: " + "; ".join(problems))

    def _problems(self):
        if not NAME.match(str(self.name)):
            yield f"name {self.name!r}: use letters, digits, '_', '.', '-' (it names the results folder)"
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            yield f"duplicate parameter names in {names}"
        if self.mode not in ("min", "max"):
            yield f"mode must be 'min' or 'max', got {self.mode!r}"
        if self.metric not in self.metrics:
            yield f"metric {self.metric!r} is not among the reported metrics {self.metrics}"
        if self.default_searcher not in SEARCHERS:
            yield f"default_searcher {self.default_searcher!r} not in {SEARCHERS}"
        if self.default_scheduler not in SCHEDULERS:
            yield f"default_scheduler {self.default_scheduler!r} not in {SCHEDULERS}"
        if self.score not in ("best_epoch", "last_epoch"):
            yield f"score must be 'best_epoch' or 'last_epoch', got {self.score!r}"
        if self.max_epochs < 1 or not 1 <= self.grace_period <= self.max_epochs:
            yield f"need 1 <= grace_period ({self.grace_period}) <= max_epochs ({self.max_epochs})"
        if self.resources.cpus <= 0 or self.resources.gpus < 0:
            yield f"resources must be positive, got {self.resources}"
        if self.early_stopping and self.early_stopping.monitor not in (*self.metrics, VAL_LOSS):
            yield f"early stopping monitors unknown metric {self.early_stopping.monitor!r}"
        for p in self.params:
            if p.active_if and p.active_if[0] not in names:
                yield f"{p.name} depends on unknown parameter {p.active_if[0]!r}"
            for point in p.grid or ():
                if not p.domain.contains(point):
                    yield f"grid point {point!r} of {p.name} is outside {p.domain.describe()}"
        for variant in self.report_variant_results:
            if variant not in self.report_variants:
                yield f"report_variant_results names {variant!r}, which is not among report_variants"
        for key in self.smoke:
            if key not in self.fixed and key not in self.data_options:
                yield f"smoke setting {key!r} is neither a fixed setting nor a data option"
        for key in self.report_fixed:
            if key not in self.fixed:
                yield f"report_fixed setting {key!r} is not a fixed setting"
        yield from _reference_problems(self.references)
        configs = {"report_config": self.report_config} if self.report_config else {}
        configs.update({f"report_variants[{k!r}]": v for k, v in self.report_variants.items()})
        for source, config in configs.items():
            try:
                self.validate_config(config, source=source)
            except TunerError as exc:
                yield str(exc)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def active_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """The parameters that matter for this config: conditional ones whose condition fails are dropped."""
        active = {}
        for p in self.params:
            if p.name not in config:
                continue
            if p.active_if is not None:
                parent, allowed = p.active_if
                if config.get(parent) not in allowed:
                    continue
            active[p.name] = config[p.name]
        return active

    def validate_config(self, config: dict[str, Any], source: str = "config") -> dict[str, Any]:
        """Check a user-given config against the space; return it with only its active parameters.

        Unknown keys, missing active parameters and values outside their domain are errors: a typo must fail.
        """
        if not isinstance(config, dict):
            raise TunerError(f"{source}: expected a JSON object of parameters, got {type(config).__name__}")
        unknown = sorted(set(config) - set(self.param_names))
        if unknown:
            raise TunerError(
                f"{source}: unknown parameter(s) {', '.join(unknown)} for space {self.name}; "
                f"accepted: {', '.join(self.param_names)}"
            )
        active = self.active_config(config)
        for p in self.params:
            condition_met = p.active_if is None or config.get(p.active_if[0]) in p.active_if[1]
            if condition_met and p.name not in config:
                raise TunerError(f"{source}: parameter {p.name} is missing (domain {p.domain.describe()})")
        for name, value in active.items():
            domain = self.param(name).domain
            if not domain.contains(value):
                raise TunerError(f"{source}: {name}={value!r} is outside its domain {domain.describe()}")
        return active

    def complete_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """Fill inactive conditional parameters with a valid placeholder so a searcher can take the point."""
        full = dict(config)
        for p in self.params:
            if p.name not in full:
                full[p.name] = p.grid_points()[0]
        return full


REFERENCE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
"""A reference's name: part of MLflow metric names (``reference_<name>_<metric>``) and a column header."""


def _reference_problems(references: tuple[Reference, ...]):
    names = [r.name for r in references]
    if len(set(names)) != len(names):
        yield f"duplicate reference names in {names}"
    for r in references:
        if not REFERENCE_NAME.match(str(r.name)):
            yield f"reference name {r.name!r}: use lower-case letters, digits and '_' (at most 40)"
        if not re.match(r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$", str(r.estimator)):
            yield f"reference {r.name!r}: estimator {r.estimator!r} is not a dotted class path (module.Class)"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)

"""The options of ``tuner run``, each declared once: its flag, type, default, help and check.

The command-line parser (``add_run_arguments``), the run record a resumed study restarts from
(``RunOptions.to_record`` / ``from_record``) and the checks (``check``) are all derived from the fields below; a
new option is one field here. What the options mean for a study once the space's defaults, the ``--config`` file
and the cluster are known is ``tuner.study.plan``'s job.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuner.errors import TunerError
from tuner.packing import AUTO as AUTO_GPUS
from tuner.spec import NAME, SCHEDULERS, SEARCHERS

RUN_NAME = NAME
REGISTERED_MODEL_NAME = NAME
"""Names ``models:/NAME/VERSION`` URIs carry unquoted (MLflow itself refuses '/' and ':')."""


# --- checks: each returns the error text for a bad value, or None ---
def _at_least(low: int) -> Callable[[str, Any], str | None]:
    return lambda flag, v: None if v is None or v >= low else f"{flag} must be {_least(low)}, got {v}"


def _one_of(accepted: tuple[str, ...]) -> Callable[[str, Any], str | None]:
    return lambda flag, v: None if v is None or v in accepted else f"{flag} {v!r} is not one of: {', '.join(accepted)}"


def _least(low: int) -> str:
    return "0 or more" if low == 0 else f"at least {low}"


def _seconds(zero_means: str) -> Callable[[str, Any], str | None]:
    def check(flag: str, v: float) -> str | None:
        if math.isfinite(v) and v >= 0:
            return None
        return f"{flag} must be 0 ({zero_means}) or a positive number of seconds, got {v:g}"

    return check


def _positive_seconds(flag: str, v: float | None) -> str | None:
    ok = v is None or v > 0
    return None if ok else f"{flag} must be a positive number of seconds, got {v:g}"


def _cpus(flag: str, v: float | None) -> str | None:
    ok = v is None or (math.isfinite(v) and v > 0)
    return None if ok else f"{flag} must be a positive number, got {v:g}"


def _gpus(flag: str, v: float | str | None) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return None if v == AUTO_GPUS else f"{flag} {v!r}: give a number (0, 0.25, 1, ...) or {AUTO_GPUS!r}"
    if not (math.isfinite(v) and v >= 0):
        return f"{flag} must be 0 or positive (fractions like 0.25 allowed), got {v:g}"
    if v > 1 and v != int(v):
        return f"{flag} above 1 must be a whole number, got {v:g}"
    return None


def _run_name(flag: str, v: str | None) -> str | None:
    ok = v is None or RUN_NAME.match(v)
    return None if ok else f"{flag} {v!r}: use letters, digits, '_', '.', '-' (at most 100, no '/')"


def _model_name(flag: str, v: str | None) -> str | None:
    ok = v is None or REGISTERED_MODEL_NAME.match(v)
    return None if ok else f"{flag} {v!r}: use letters, digits, '_', '.', '-' (at most 100, no '/' or ':')"


def _existing_path(flag: str, v: Path | None) -> str | None:
    return None if v is None or Path(v).exists() else f"{flag} {v}: no such file or folder"


def _parse_gpus(text: str) -> float | str:
    if text.strip().lower() == AUTO_GPUS:
        return AUTO_GPUS
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or {AUTO_GPUS!r} (e.g. 0, 0.25, 1, auto)") from None


def option(default: Any, help: str, *, flag: str = "", parse: Any = None, check=None, cli: dict | None = None) -> Any:
    """A run option: a dataclass field whose metadata says how the command line spells it and checks it.
    ``flag`` defaults to the field's name as ``--kebab-case``; ``parse`` is argparse's ``type``; ``cli`` more
    argparse keywords."""
    meta = {"help": help, "flag": flag, "parse": parse, "check": check, "cli": cli or {}}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class RunOptions:
    """Everything ``tuner run`` takes besides the space, as the user gave it (None: the space's default)."""

    trials: int = option(20, "number of trials (default 20)", parse=int, check=_at_least(1))
    searcher: str | None = option(
        None,
        "default: the space's. optuna: TPE; optuna_grouped: multivariate TPE grouped by conditional parameters; "
        "optuna_gp: Gaussian process; optuna_cmaes: CMA-ES on the numeric parameters, categorical ones sampled by "
        "TPE (CMA-ES's independent sampler)",
        check=_one_of(SEARCHERS),
        cli={"choices": SEARCHERS},
    )
    scheduler: str | None = option(
        None,
        "default: the space's. hyperband: asynchronous Hyperband (ASHA with 3 brackets)",
        check=_one_of(SCHEDULERS),
        cli={"choices": SCHEDULERS},
    )
    max_epochs: int | None = option(
        None, "epoch budget per trial (default: the space's)", parse=int, check=_at_least(1)
    )
    cpus_per_trial: float | None = option(None, "CPUs per trial (default: the space's)", parse=float, check=_cpus)
    gpus_per_trial: float | str | None = option(
        None,
        "GPUs per trial, fractions allowed: 0.25 = 4 per GPU; auto = measure one probe trial's GPU memory and pack "
        "as many trials per GPU as fit with a 15%% margin (tuner.packing)",
        parse=_parse_gpus,
        check=_gpus,
    )
    max_concurrent: int | None = option(
        None, "most trials at once (default: as many as fit)", parse=int, check=_at_least(1)
    )
    time_budget: float | None = option(
        None, "stop the study after this many seconds", parse=float, check=_positive_seconds
    )
    seed: int | None = option(None, "seeds the searcher and the trials (default 0, or the --config file's)", parse=int)
    data: Path | None = option(
        None, "the real dataset (default: generated synthetic data)", parse=Path, check=_existing_path
    )
    address: str | None = option(None, "an existing Ray cluster: auto, ray://host:10001 or host:port")
    tracking_uri: str | None = option(None, "MLflow store (default: $MLFLOW_TRACKING_URI or results/mlflow.db)")
    name: str | None = option(None, "run name (default: date-time)", check=_run_name)
    config_file: Path | str | None = option(
        None,
        "train and test exactly this config once: a JSON file (e.g. an export), 'report' for the report's own "
        "config, or 'report:NAME' for another config the report published",
        flag="--config",
        parse=Path,
    )
    results_dir: Path = option(Path("results"), "default: ./results", parse=Path)
    dashboard: bool = option(True, "start local Ray without its dashboard", flag="--no-dashboard")
    report_start: bool = option(True, "do not evaluate the report's config first", flag="--no-report-start")
    num_cpus: int | None = option(
        None, "CPUs of the local Ray instance (default: all; not with --address)", parse=int, check=_at_least(1)
    )
    num_gpus: int | None = option(
        None,
        "GPUs the local Ray instance declares (default: those Ray detects; not with --address). On a machine "
        "without GPUs they are bookkeeping only: trials share them as --gpus-per-trial says and train on the CPU",
        parse=int,
        check=_at_least(0),
    )
    settings: tuple[str, ...] = option(
        (),
        "override a fixed setting or data option of the space (see `show`), e.g. --set image_scale=1.0",
        flag="--set",
        cli={"action": "append", "metavar": "KEY=VALUE"},
    )
    max_retries: int = option(
        2,
        "retries of a trial whose worker or node was lost (default 2; a trial that raises is not retried)",
        parse=int,
        check=_at_least(0),
    )
    progress_every: float = option(
        30.0,
        "print a table of the running trials this often (default 30; 0: never)",
        parse=float,
        check=_seconds("no table"),
        cli={"metavar": "SECONDS"},
    )
    storage: str | None = option(
        None,
        "where Ray Tune keeps checkpoints and its state: a folder every node mounts at the same path (NFS) or a "
        "URI such as s3://bucket/prefix; needed on multi-node clusters (default: the run's folder in --results-dir)",
        cli={"metavar": "DIR|URI"},
    )
    checkpoint_every: float = option(
        60.0,
        "save a trial's training state at least this often, besides at every new best epoch, so a retried or "
        "resumed trial continues from there (default 60; 0: every epoch)",
        parse=float,
        check=_seconds("every epoch"),
        cli={"metavar": "SECONDS"},
    )

    warm_start: tuple[str, ...] = option(
        (),
        "earlier studies whose finished trials the searcher learns from before it proposes: RUN (of this space) or "
        "SPACE:RUN, one or more (tuner.warmstart)",
        cli={"nargs": "+", "metavar": "REF"},
    )

    report_baseline: bool = option(
        True,
        "do not train and test the report's config on this study's split beside the chosen one",
        flag="--no-report-baseline",
    )
    references: bool = option(
        True,
        "do not train the space's untuned reference models nor compare the chosen config with them on the test split",
        flag="--no-references",
    )
    verify_top: int = option(
        3,
        "after the search, train the top K configs again with fresh seeds and choose the best mean (default 3; 0: off)",
        parse=int,
        check=_at_least(0),
        cli={"metavar": "K"},
    )
    verify_seeds: int = option(
        3, "fresh seeds per verified config (default 3)", parse=int, check=_at_least(1), cli={"metavar": "S"}
    )
    register: str | None = option(
        None,
        "register the chosen model in the MLflow Model Registry under this name (a new version each study)",
        check=_model_name,
        cli={"metavar": "NAME"},
    )
    keep_checkpoints: bool = option(
        False,
        "keep every trial's checkpoints after the study (default: only the "
        "weights later commands read: the chosen trial's, the top --verify-top (at "
        "least 3), the ensemble's)",
    )
    verbose: bool = option(False, "show Ray's start-up messages (hidden by default)")

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> RunOptions:
        values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)}
        return cls(
            **{**values, "settings": tuple(values["settings"] or ()), "warm_start": tuple(values["warm_start"] or ())}
        )

    @classmethod
    def from_kwargs(cls, **values: Any) -> RunOptions:
        """Options given as Python keyword arguments named like the fields (``tuner.run(space, trials=4)``): a
        string is read as its flag reads it, ``settings`` may be a dict, and every option's check runs as on the
        command line (a bad value is a ``TunerError`` with the command line's message)."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise TunerError(f"unknown option(s) {', '.join(unknown)}; accepted: {', '.join(fields)}")
        parsed = {name: _from_python(fields[name], value) for name, value in values.items()}
        options = cls(**parsed)
        check(options)
        return options

    def to_record(self) -> dict[str, Any]:
        """The options as JSON values, for the run record ``tuner resume`` restarts from."""
        return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_record(cls, record: dict[str, Any], run: str) -> RunOptions:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(record) - set(fields))
        if unknown:
            raise TunerError(f"run {run} was started with options this tuner does not know: {unknown}")
        values = dict(record)
        for key in ("data", "config_file", "results_dir"):
            if values.get(key) is not None:
                values[key] = Path(values[key])
        values["settings"] = tuple(values.get("settings") or ())
        values["warm_start"] = tuple(values.get("warm_start") or ())
        return cls(**values)


def _from_python(f: dataclasses.Field, value: Any) -> Any:
    """One keyword argument as the option's type: what a flag would make of it."""
    flag, parse = flag_of(f.name), f.metadata["parse"]
    if f.name == "settings" and isinstance(value, dict):
        return tuple(f"{key}={json.dumps(v) if not isinstance(v, str) else v}" for key, v in value.items())
    if f.name in ("settings", "warm_start"):
        return (value,) if isinstance(value, str) else tuple(value)
    if value is None or f.type == "bool" or parse is None:
        if f.type == "bool" and not isinstance(value, bool):
            raise TunerError(f"{f.name}={value!r}: expected True or False ({flag})")
        return value
    if parse is Path or isinstance(value, str):
        try:
            return parse(str(value)) if isinstance(value, str) else Path(value)
        except (ValueError, TypeError, argparse.ArgumentTypeError) as exc:
            raise TunerError(f"{f.name}={value!r}: {exc}") from None
    if parse in (int, float) and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise TunerError(f"{f.name}={value!r}: expected a number ({flag})")
    if parse is int and value != int(value):
        raise TunerError(f"{f.name}={value!r}: expected a whole number ({flag})")
    return parse(value) if parse in (int, float) else value


def flag_of(name: str) -> str:
    """The command-line flag of option ``name``."""
    meta = RunOptions.__dataclass_fields__[name].metadata
    return meta["flag"] or f"--{name.replace('_', '-')}"


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """One argument per option."""
    for name in RunOptions.__dataclass_fields__:
        add_option(parser, name)


def add_option(parser: argparse.ArgumentParser, name: str, flag: str | None = None) -> None:
    """Option ``name`` as an argument of ``parser`` (under another ``flag`` for commands other than ``run``); a
    flag starting with ``--no-`` turns a True default off."""
    f = RunOptions.__dataclass_fields__[name]
    meta, flag = f.metadata, flag or flag_of(name)
    kwargs = {"dest": name, "help": meta["help"], **meta["cli"]}
    if f.type == "bool":
        parser.add_argument(flag, action="store_false" if flag.startswith("--no-") else "store_true", **kwargs)
        return
    if meta["parse"] is not None:
        kwargs["type"] = meta["parse"]
    parser.add_argument(flag, default=[] if kwargs.get("action") == "append" else f.default, **kwargs)


def check(opts: RunOptions) -> None:
    """Every option's own check, then the checks between options; the first failure is a ``TunerError``."""
    for f in dataclasses.fields(RunOptions):
        problem = f.metadata["check"] and f.metadata["check"](flag_of(f.name), getattr(opts, f.name))
        if problem:
            raise TunerError(problem)
    for local_only in ("num_cpus", "num_gpus"):
        if getattr(opts, local_only) is not None and opts.address:
            what = "CPUs" if local_only == "num_cpus" else "GPUs"
            raise TunerError(
                f"{flag_of(local_only)} sizes a local Ray instance; a cluster at --address declares its own {what}"
            )


__all__ = ["RUN_NAME", "RunOptions", "add_option", "add_run_arguments", "check", "flag_of"]

"""``run --set KEY=VALUE``: override a space's fixed settings or data options for one run.

The value is read as JSON when it parses (``0.5``, ``true``, ``[1, 2]``) and as a string otherwise; it must have
the type of the value it replaces. Keys ending in ``_file`` name files that must exist (an empty string means
none). A space with ``folds`` trains folds x epochs-per-fold steps, so its epoch budget must be a multiple.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from trainables.cv import CV_FOLDS
from tuner.errors import TunerError
from tuner.spec import SpaceSpec


def parse_assignment(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise TunerError(f"--set {text!r}: expected KEY=VALUE, e.g. --set image_scale=0.5")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def _coerce(key: str, value: Any, current: Any) -> Any:
    def wrong(kind: str) -> TunerError:
        return TunerError(f"--set {key}={json.dumps(value)}: expected {kind} (the space's value is {current!r})")

    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if isinstance(current, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong("an integer")
        return value
    if isinstance(current, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong("a number")
        return float(value)
    if isinstance(current, str):
        return value if isinstance(value, str) else json.dumps(value)
    if isinstance(current, list | tuple):
        if not isinstance(value, list) or len(value) != len(current):
            raise wrong(f"a list of {len(current)} values")
        return type(current)(value)
    raise wrong(type(current).__name__)


def apply_settings(spec: SpaceSpec, assignments: tuple[str, ...]) -> SpaceSpec:
    """The spec with ``--set`` overrides applied to ``fixed`` and ``data_options`` (checked), then the checks
    every space's settings must pass."""
    return _override(spec, [parse_assignment(text) for text in assignments])


def _override(spec: SpaceSpec, pairs) -> SpaceSpec:
    fixed, data_options = dict(spec.fixed), dict(spec.data_options)
    for key, value in pairs:
        if key in fixed:
            fixed[key] = _coerce(key, value, fixed[key])
        elif key in data_options:
            data_options[key] = _coerce(key, value, data_options[key])
        else:
            accepted = ", ".join(sorted({*fixed, *data_options})) or "none"
            raise TunerError(f"--set {key}: space {spec.name} has no such setting; accepted: {accepted}")
    spec = dataclasses.replace(spec, fixed=fixed, data_options=data_options)
    check_settings(spec)
    return spec


def check_settings(spec: SpaceSpec) -> None:
    for key, value in spec.fixed.items():
        if key.endswith("_file") and value and not Path(value).is_file():
            raise TunerError(f"{key}={value}: no such file")
    cv_folds = spec.fixed.get(CV_FOLDS)
    if cv_folds is not None and (not isinstance(cv_folds, int) or isinstance(cv_folds, bool) or cv_folds < 1):
        raise TunerError(f"{CV_FOLDS}={cv_folds!r}: expected 1 (the single split) or more folds")
    folds = spec.fixed.get("folds")
    if folds is not None:
        if not isinstance(folds, int) or folds < 2:
            raise TunerError(f"folds={folds!r}: expected an integer >= 2")
        if spec.max_epochs % folds:
            raise TunerError(
                f"--max-epochs {spec.max_epochs} is not a multiple of folds={folds}: a trial trains every fold "
                f"for the same number of epochs (e.g. --max-epochs {folds * max(1, spec.max_epochs // folds)})"
            )

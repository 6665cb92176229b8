"""The registry of search spaces: one module per report system, named after the space.

Modules are imported lazily (``get``), so listing names costs nothing and a space's mistakes surface only
when that space is asked for. A new space is one new module here exposing ``SPEC`` plus its name below.
"""

from __future__ import annotations

import importlib

from tuner.errors import TunerError
from tuner.spec import SpaceSpec

SPACES = (
    "steel_binary",
    "steel_multiclass",
    "hms_b1",
    "hms_b0",
    "hms_resnet34d",
    "ecg_cnngru",
    "ecg_cnn2d",
    "usps_cnn",
    "pain_rnn",
    "house_mlp",
)

__all__ = ["SPACES", "get", "names"]


def names() -> tuple[str, ...]:
    return SPACES


def get(name: str) -> SpaceSpec:
    """The spec of space ``name``; an unknown name is an error listing the valid ones."""
    if name not in SPACES:
        raise TunerError(f"unknown space {name!r}; valid spaces: {', '.join(SPACES)}")
    spec = importlib.import_module(f"search_spaces.{name}").SPEC
    if not isinstance(spec, SpaceSpec) or spec.name != name:
        raise TypeError(f"search_spaces/{name}.py must define SPEC = SpaceSpec(name={name!r}, ...)")
    return spec

"""A space made fast to exercise: its ``SpaceSpec.smoke`` overrides applied as ``--set`` would apply them."""

from __future__ import annotations

import json

from tuner.settings import apply_settings
from tuner.spec import SpaceSpec


def smoke_spec(spec: SpaceSpec) -> SpaceSpec:
    """The spec with its ``smoke`` overrides applied (checked like ``--set``): what tests run of a space."""
    return apply_settings(spec, tuple(f"{key}={json.dumps(value)}" for key, value in spec.smoke.items()))

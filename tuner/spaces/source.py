"""What a resolved space is: its spec and where it came from."""

from __future__ import annotations

from dataclasses import dataclass

from tuner.spec import SpaceSpec

OWN_PACKAGES = ("tuner", "trainables", "search_spaces")
"""tuner's own code: it travels with every study and model already (Ray's working dir, the model's code)."""


@dataclass(frozen=True)
class SpaceSource:
    """Where a space came from: enough to find it again from any working directory."""

    ref: str | None
    """The reference that resolves it again: a registered name, ``module:ATTR`` or an absolute ``file.py:ATTR``;
    None for a spec object handed to the Python API (it can only be handed in again)."""
    origin: str
    """Where it came from, in words (shown by ``tuner list`` and in the run record)."""
    module: str | None = None
    """The module holding the spec."""
    folder: str | None = None
    """A file reference's folder: first on the import path wherever the space's code runs."""


@dataclass(frozen=True)
class Space:
    """A resolved space reference."""

    spec: SpaceSpec
    source: SpaceSource


__all__ = ["OWN_PACKAGES", "Space", "SpaceSource"]

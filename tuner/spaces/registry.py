"""The registered spaces: entry points of the group ``tuner.spaces`` (``name = "module:ATTR"``), tuner's own report
spaces among them (its ``pyproject.toml``). An installed package adds spaces by declaring them there; a name two
distributions register is an error naming both, when that name is used or listed."""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass

from tuner.errors import TunerError

ENTRY_POINT_GROUP = "tuner.spaces"


@dataclass(frozen=True)
class Registration:
    name: str
    value: str
    """``module:ATTR``."""
    distribution: str
    """The installed distribution that declares it (``tuner 0.1.0``)."""

    def describe(self) -> str:
        return f"{self.distribution} ({self.value})"


def registrations() -> dict[str, list[Registration]]:
    found: dict[str, list[Registration]] = {}
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(entry, "dist", None)
        by = f"{dist.name} {dist.version}" if dist is not None else "an unnamed distribution"
        found.setdefault(entry.name, []).append(Registration(entry.name, entry.value, by))
    return found


def single(name: str, registrations: list[Registration]) -> Registration:
    if len(registrations) > 1:
        sources = " and ".join(r.describe() for r in registrations)
        raise TunerError(f"space {name!r} is registered twice: by {sources}; uninstall one of them")
    return registrations[0]


def registered() -> dict[str, Registration]:
    """Every registered space by name (a name two distributions register is an error naming both)."""
    return {name: single(name, regs) for name, regs in registrations().items()}


def names() -> tuple[str, ...]:
    """The registered spaces' names, as their distributions declare them."""
    return tuple(registrations())


__all__ = ["ENTRY_POINT_GROUP", "Registration", "names", "registered"]

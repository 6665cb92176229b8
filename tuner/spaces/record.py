"""What a run record keeps of its space (``space_source``), and whether the space changed since the run started:
other parameters, metric or mode refuse the study; changed code is a warning."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
from pathlib import Path
from typing import Any

from tuner.errors import TunerError
from tuner.spaces.code import module_file
from tuner.spaces.source import Space
from tuner.spec import SpaceSpec


def module_files(space: Space) -> dict[str, str]:
    """sha256 (first 16 hex digits) of the files of the space's module, family and loader."""
    spec = space.spec
    modules = [space.source.module, spec.trainable, spec.dataset.partition(":")[0] if ":" in spec.dataset else None]
    digests = {}
    for name in dict.fromkeys(m for m in modules if m):
        file = module_file(name) or _find_origin(name)
        if file and Path(file).is_file():
            digests[file] = hashlib.sha256(Path(file).read_bytes()).hexdigest()[:16]
    return digests


def _find_origin(name: str) -> str | None:
    try:
        found = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return found.origin if found is not None else None


def signature(spec: SpaceSpec) -> dict[str, Any]:
    """What a study's trials mean: a study cannot continue once any of it changed."""
    params = [
        f"{p.name} {p.domain.describe()}" + (f" if {p.active_if[0]} in {list(p.active_if[1])}" if p.active_if else "")
        for p in spec.params
    ]
    return {"metric": spec.metric, "mode": spec.mode, "params": params}


def record(space: Space) -> dict[str, Any]:
    """The run record's ``space_source``."""
    return {**dataclasses.asdict(space.source), "files": module_files(space), "signature": signature(space.spec)}


def check_unchanged(space: Space, recorded: dict[str, Any] | None, run: str) -> list[str]:
    """Refuse a space whose parameters, metric or mode differ from those run ``run`` started with; the warnings
    (one line each) for code that changed since."""
    if not recorded:
        return []
    then, now = recorded.get("signature") or {}, signature(space.spec)
    changed = [key for key in ("metric", "mode", "params") if key in then and then[key] != now[key]]
    if changed:
        raise TunerError(
            f"space {space.spec.name} is not the one run {run} started with: its "
            f"{' and '.join(changed)} changed ({_difference(then, now, changed[0])}); a study cannot "
            f"continue on another space: start a new run"
        )
    warnings = []
    if recorded.get("ref") and space.source.ref and recorded["ref"] != space.source.ref:
        warnings.append(f"warning: run {run} was started from {recorded['ref']}; continuing with {space.source.ref}")
    files = module_files(space)
    for file, digest in (recorded.get("files") or {}).items():
        if file in files and files[file] != digest:
            warnings.append(f"warning: {file} changed since run {run} started; continuing with it as it is now")
    return warnings


def _difference(then: dict[str, Any], now: dict[str, Any], key: str) -> str:
    if key != "params":
        return f"{then[key]} -> {now[key]}"
    gone = [p for p in then[key] if p not in now[key]]
    new = [p for p in now[key] if p not in then[key]]
    return "; ".join(
        part for part in (f"was {', '.join(gone)}" if gone else "", f"now {', '.join(new)}" if new else "") if part
    )


__all__ = ["check_unchanged", "record", "signature"]

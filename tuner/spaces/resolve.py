"""A space reference resolved to a ``Space``: a registered name, ``module[:ATTR]`` or ``file.py[:ATTR]``."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import sysconfig
from pathlib import Path
from typing import Any

from tuner.errors import TunerError
from tuner.spaces.code import error_line, forget_modules_under, import_module, module_file, on_import_path
from tuner.spaces.registry import Registration, registrations, single
from tuner.spaces.source import Space, SpaceSource
from tuner.spec import NAME, SpaceSpec

DEFAULT_ATTR = "SPEC"
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
MODULE_PATH = re.compile(rf"^{_IDENTIFIER}(\.{_IDENTIFIER})*$")
ATTR = re.compile(rf"^{_IDENTIFIER}$")


def get(name: str) -> SpaceSpec:
    """The spec of the registered space ``name`` (or of any reference)."""
    return load(name).spec


def load(ref: str | SpaceSpec | Space) -> Space:
    """The space a reference names (see the module's docstring); a spec object is taken as it is."""
    if isinstance(ref, Space):
        return ref
    if isinstance(ref, SpaceSpec):
        return Space(ref, SpaceSource(None, "a SpaceSpec object given in Python"))
    text = str(ref).strip()
    regs = registrations()
    if text in regs:
        return _from_registration(single(text, regs[text]))
    target, attr = _split_attr(text)
    if target.endswith(".py") or "/" in target or "\\" in target:
        return _checked_name(_from_file(Path(target), attr, text), regs)
    if MODULE_PATH.match(target):
        return _checked_name(_from_module(target, attr, text, regs), regs)
    raise TunerError(_unknown(text, regs))


def _unknown(text: str, regs: dict[str, Any]) -> str:
    return (
        f"unknown space {text!r}; valid spaces: {', '.join(regs) or 'none registered (is tuner installed?)'}; "
        f"or a module path (my_pkg.space[:ATTR]) or a file (./space.py[:ATTR])"
    )


def _split_attr(text: str) -> tuple[str, str | None]:
    """``target[:ATTR]``: the attribute only when what follows the last ':' is an identifier."""
    target, sep, attr = text.rpartition(":")
    if sep and target and ATTR.match(attr):
        return target, attr
    return text, None


def _from_registration(reg: Registration) -> Space:
    module_name, _, attr = reg.value.partition(":")
    where = f"registered space {reg.name!r} ({reg.describe()})"
    module = import_module(module_name, where)
    spec = _spec_of(module, attr or DEFAULT_ATTR, where)
    if spec.name != reg.name:
        raise TunerError(
            f"{where} is a SpaceSpec named {spec.name!r}; the registered name and the spec's name must be the same"
        )
    return Space(spec, SpaceSource(reg.name, f"registered by {reg.distribution}", module_name))


def _from_module(module_name: str, attr: str | None, text: str, regs: dict[str, Any]) -> Space:
    top = module_name.partition(".")[0]
    if importlib.util.find_spec(top) is None:
        raise TunerError(_unknown(text, regs))
    module = import_module(module_name, f"space module {module_name}")
    spec = _spec_of(module, attr or DEFAULT_ATTR, text)
    ref = f"{module_name}:{attr or DEFAULT_ATTR}"
    return Space(spec, SpaceSource(ref, f"module {ref}", module_name, _import_root(top)))


def _import_root(top: str) -> str | None:
    """The folder a top-level module was found in, unless it is an installed one (site-packages, the standard
    library): the working directory a module reference was resolved from, say, which a later command may lack."""
    found = importlib.util.find_spec(top)
    location = found.origin if found and found.origin not in (None, "namespace") else None
    if location is None and found and found.submodule_search_locations:
        location = str(Path(list(found.submodule_search_locations)[0]) / "__init__.py")
    if location is None:
        return None
    root = Path(location).resolve().parent
    root = root.parent if found.submodule_search_locations else root
    installed = {
        Path(p).resolve()
        for key, p in sysconfig.get_paths().items()
        if key in ("purelib", "platlib", "stdlib", "platstdlib")
    }
    return None if root in installed else str(root)


def load_recorded(source: dict[str, Any], run: str) -> Space:
    """The space a run record's ``space_source`` names, from any working directory."""
    if not source.get("ref"):
        raise TunerError(
            f"run {run} was started from {source.get('origin', 'a SpaceSpec object')}; continue it from "
            f"Python with the same spec (tuner.resume(spec, name={run!r}))"
        )
    on_import_path(source.get("folder"))
    return load(source["ref"])


def _from_file(path: Path, attr: str | None, text: str) -> Space:
    path = path.expanduser().resolve()
    if not path.is_file():
        raise TunerError(f"space file {text.rpartition(':')[0] if attr else text}: no such file")
    if path.suffix != ".py":
        raise TunerError(f"space file {path}: expected a Python file (.py) holding SPEC = SpaceSpec(...)")
    folder = path.parent
    forget_modules_under(folder)  # edited since the last study of this process: imported afresh
    on_import_path(str(folder))
    module = _import_file(path)
    spec = _spec_of(module, attr or DEFAULT_ATTR, text)
    ref = f"{path}:{attr or DEFAULT_ATTR}"
    return Space(spec, SpaceSource(ref, f"file {ref}", module.__name__, str(folder)))


def _import_file(path: Path):
    module_spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[path.stem] = module  # as its folder on the path would name it: the same module in every process
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(path.stem, None)
        raise TunerError(f"space file {path} does not import: {error_line(exc)}") from None
    return module


def _spec_of(module, attr: str, where: str) -> SpaceSpec:
    if not hasattr(module, attr):
        specs = [name for name, value in vars(module).items() if isinstance(value, SpaceSpec)]
        hint = f"; SpaceSpec objects in it: {', '.join(specs)} (name one as {where}:NAME)" if specs else ""
        raise TunerError(f"{where} defines no {attr}{hint}")
    spec = getattr(module, attr)
    if not isinstance(spec, SpaceSpec):
        raise TunerError(f"{where}: {attr} is a {type(spec).__name__}, not a tuner.SpaceSpec")
    return spec


def _checked_name(space: Space, regs: dict[str, list[Registration]]) -> Space:
    """An outside space may not take a registered space's name (they would share a results folder and an MLflow
    experiment), unless it is that registered space."""
    name = space.spec.name
    if name not in regs:
        return space
    registered_space = _from_registration(single(name, regs[name]))
    if module_file(registered_space.source.module) == module_file(space.source.module):
        return registered_space
    raise TunerError(
        f"space {space.source.ref} is named {name!r}, which is registered by "
        f"{single(name, regs[name]).describe()}; give its SpaceSpec another name"
    )


def space_name(ref: str, results_dir: Path) -> str:
    """The name (and results folder) of the space ``ref`` names; a name with runs under ``results_dir`` is taken
    as it is, so reading a study's folder needs no import of its code."""
    text = str(ref).strip()
    if NAME.match(text) and (results_dir / text).is_dir():
        return text
    return load(text).spec.name


def study_space(ref: str, results_dir: Path, run: str | None) -> tuple[Space, Path]:
    """The space of a study and its run folder (``run``, or the latest). A name that no longer resolves here (a
    file reference made in another working directory) is found again through the run's record."""
    from tuner.run_files import RUN_FILE, read_json
    from tuner.status import find_run

    try:
        space = load(ref)
    except TunerError:
        text = str(ref).strip()
        if not (NAME.match(text) and (results_dir / text).is_dir()):
            raise
        run_dir = find_run(results_dir, text, run)
        source = read_json(run_dir / RUN_FILE, "run record").get("space_source")
        if not source:
            raise
        return load_recorded(source, run_dir.name), run_dir
    return space, find_run(results_dir, space.spec.name, run)


__all__ = ["DEFAULT_ATTR", "get", "load", "load_recorded", "space_name", "study_space"]

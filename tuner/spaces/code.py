"""Where a space's code is found and shipped: first on the import path (here and in every trial process), pickled by
value with the study's data, copied to a joined cluster's workers and into the published model."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from tuner.errors import TunerError, first_line
from tuner.spaces.source import OWN_PACKAGES, Space


def import_module(module_name: str, where: str):
    """The module, or a one-line error saying ``where`` it was named and what its import raised."""
    try:
        return importlib.import_module(module_name)
    except Exception as exc:  # the user's code: any error it raises is named in one line
        raise TunerError(f"{where} does not import: {error_line(exc)}") from None


def error_line(exc: BaseException) -> str:
    """An exception in one line; a syntax error with its file and line."""
    if isinstance(exc, SyntaxError) and exc.lineno:
        return f"{type(exc).__name__}: {exc.msg} ({exc.filename}, line {exc.lineno})"
    return f"{type(exc).__name__}: {first_line(exc, default='')[:300]}"


def module_file(module_name: str | None) -> str | None:
    """The file an imported module came from."""
    module = sys.modules.get(module_name or "")
    return str(Path(module.__file__).resolve()) if module is not None and getattr(module, "__file__", None) else None


_FOLDERS: list[str] = []
"""The space folders this process put on its import path."""


def on_import_path(folder: str | None) -> None:
    """Put a space's folder first on the import path (once). A module another space folder gave the same top-level
    name (two projects' ``family.py``) is forgotten first, so this folder's own is imported."""
    if not folder:
        return
    names = top_level_names(Path(folder))
    for other in _FOLDERS:
        if other != folder:
            forget_modules_under(Path(other), names)
    if folder in sys.path:
        sys.path.remove(folder)
    sys.path.insert(0, folder)
    if folder not in _FOLDERS:
        _FOLDERS.append(folder)


def with_code(value, folder: str | None):
    """``value`` (a study's data) as Ray sends it to a trial process: unpickling it there first puts the space's
    ``folder`` on that process's import path, so that objects of the space's own classes in it, pickled by
    reference, find their modules; and so does the family the trial then imports. Pickle loads a tuple's items in
    order: the path is set before anything of the value is looked up."""
    return value if not folder else _WithCode(value, folder)


class _WithCode:
    def __init__(self, value, folder: str):
        self.value, self.folder = value, folder

    def __reduce__(self):
        return _unwrap, (_OnImportPath(self.folder), self.value)


class _OnImportPath:
    def __init__(self, folder: str):
        self.folder = folder

    def __reduce__(self):
        return on_import_path, (self.folder,)


def _unwrap(_path_set, value):
    return value


def _under(file: str | None, root: str) -> bool:
    return bool(file) and str(Path(file).resolve()).startswith(root + "/")


def forget_modules_under(folder: Path, only: set[str] | None = None) -> None:
    """Drop the modules imported from ``folder`` (those named ``only``, and their submodules) from this process."""
    root = str(folder.resolve())
    for name, module in list(sys.modules.items()):
        if (only is None or name.partition(".")[0] in only) and _under(getattr(module, "__file__", None), root):
            del sys.modules[name]


def top_level_names(folder: Path) -> set[str]:
    return {path.stem if path.suffix == ".py" else path.name for path in code_entries(folder)}


def code_entries(folder: Path) -> list[Path]:
    """What a space folder holds that code can import: its top-level ``.py`` files and packages."""
    if not folder.is_dir():
        return []
    files = sorted(p for p in folder.glob("*.py") if p.is_file())
    packages = sorted(p for p in folder.iterdir() if p.is_dir() and (p / "__init__.py").is_file())
    return files + packages


def shipped_code(space: Space) -> list[Path]:
    """The code a space needs beyond tuner's own, as files and package folders to copy where it runs (a joined
    cluster's workers, the published model): a file space's folder, or the top-level packages of the space's,
    family's and loader's modules."""
    if space.source.folder:
        return code_entries(Path(space.source.folder))
    spec = space.spec
    modules = [space.source.module, spec.trainable, spec.dataset.partition(":")[0] if ":" in spec.dataset else None]
    paths: list[Path] = []
    for top in dict.fromkeys(m.partition(".")[0] for m in modules if m):
        if top in OWN_PACKAGES:
            continue
        found = importlib.util.find_spec(top)
        if found is None:
            continue
        locations = list(found.submodule_search_locations or []) or [found.origin]
        paths += [Path(p) for p in locations if p and Path(p).exists()]
    return list(dict.fromkeys(paths))


def check_code(space: Space) -> None:
    """Import an outside space's family and find its loader now, so that their mistakes are one line before the
    study writes anything (tuner's own spaces are held to the family contract by its tests, and their heavy imports
    are left to the trial processes)."""
    spec = space.spec
    if space.source.module and space.source.module.partition(".")[0] in OWN_PACKAGES:
        return
    from tuner.datasets import loader

    family = import_module(spec.trainable, f"space {spec.name}: its family module {spec.trainable}")
    missing = [name for name in ("train", "evaluate") if not callable(getattr(family, name, None))]
    if missing:
        raise TunerError(
            f"space {spec.name}: its family module {spec.trainable} defines no "
            f"{' and no '.join(f'{m}()' for m in missing)} (see tuner.ModelFamily)"
        )
    if spec.dataset:
        loader(spec.dataset)


__all__ = ["check_code", "code_entries", "error_line", "forget_modules_under", "import_module", "module_file",
           "on_import_path", "with_code", "shipped_code"]  # fmt: skip

"""Dataset loaders: the built-in ones by name, imported lazily so one dataset's dependencies never load for another,
and a space's own as ``module:function``.

A loader is ``load(path, options, cache_dir) -> LoadedData``: it reads the real file layout from ``path``, or, when
``path`` is None, writes (once, cached under ``cache_dir``) a synthetic dataset in that same layout and reads it back
through the same parser. ``options`` are the space's ``data_options`` (with the run's ``--set`` overrides).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tuner.datasets.base import LoadedData
from tuner.errors import TunerError, first_line

_LOADERS = {
    "steel": "tuner.datasets.steel",
    "mitbih": "tuner.datasets.mitbih",
    "usps": "tuner.datasets.usps",
    "hms": "tuner.datasets.hms",
    "pirate_pain": "tuner.datasets.pirate_pain",
    "house_prices": "tuner.datasets.house_prices",
}

__all__ = ["LoadedData", "dataset_names", "load_dataset", "loader"]


def dataset_names() -> tuple[str, ...]:
    return tuple(sorted(_LOADERS))


def loader(name: str) -> Callable[[Path | None, dict[str, Any], Path], LoadedData]:
    """The loader a space's ``dataset`` names: a built-in name or ``module:function``; a name that names nothing
    callable is a one-line error."""
    if name in _LOADERS:
        return importlib.import_module(_LOADERS[name]).load
    module_name, sep, attr = name.partition(":")
    if not sep or not module_name or not attr:
        raise TunerError(
            f"unknown dataset {name!r}; built-in: {', '.join(dataset_names())}; or a loader of your "
            f"own as module:function"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's code: whatever it raises is named in one line
        raise TunerError(
            f"dataset {name}: module {module_name} does not import: {type(exc).__name__}: "
            f"{first_line(exc, default='')[:300]}"
        ) from None
    function = getattr(module, attr, None)
    if function is None:
        raise TunerError(f"dataset {name}: module {module_name} has no {attr}")
    if not callable(function):
        raise TunerError(
            f"dataset {name}: {attr} is a {type(function).__name__}, not a function "
            f"load(path, options, cache_dir) -> LoadedData"
        )
    return function


def load_dataset(name: str, path: Path | None, options: dict[str, Any], cache_dir: Path) -> LoadedData:
    data = loader(name)(path, options, cache_dir)
    if not isinstance(data, LoadedData):
        raise TunerError(f"dataset {name} returned a {type(data).__name__}, not a tuner.LoadedData")
    return data

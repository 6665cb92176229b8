"""Dataset loaders by name, imported lazily so one dataset's dependencies never load for another.

Each loader module exposes ``load(path, options, cache_dir) -> LoadedData``: it reads the real file layout
from ``path``, or, when ``path`` is None, writes (once, cached) a synthetic dataset in that same layout and
reads it back through the same parser.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from tuner.datasets.base import LoadedData

_LOADERS = {
    "steel": "tuner.datasets.steel",
    "mitbih": "tuner.datasets.mitbih",
    "usps": "tuner.datasets.usps",
    "hms": "tuner.datasets.hms",
    "pirate_pain": "tuner.datasets.pirate_pain",
    "house_prices": "tuner.datasets.house_prices",
}

__all__ = ["LoadedData", "dataset_names", "load_dataset"]


def dataset_names() -> tuple[str, ...]:
    return tuple(sorted(_LOADERS))


def load_dataset(name: str, path: Path | None, options: dict[str, Any], cache_dir: Path) -> LoadedData:
    if name not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(dataset_names())}")
    module = importlib.import_module(_LOADERS[name])
    return module.load(path, options, cache_dir)

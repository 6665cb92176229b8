"""tuner: hyperparameter search on Ray Tune, tracked in MLflow, for the report models and your own.

From Python (``tuner.api``)::

    import tuner

    study = tuner.run("./my_project/space.py", trials=20)
    study.best_config, study.test, study.trials

The public contract, documented in ``docs/contract.md`` and kept stable: a space is a ``SpaceSpec`` of parameters
(``LogUniform``, ``Uniform``, ``IntUniform``, ``Choice`` in ``Param``), trained by a model family
(``ModelFamily``: ``train`` reporting each epoch through an ``EpochReporter`` with its ``TrialContext``,
``evaluate``; ``ServingFamily`` to publish the chosen model) on the ``LoadedData`` its loader returns.
Names are imported on first use, so ``import tuner`` costs nothing until one is.
"""

import importlib as _importlib
import time as _time
from pathlib import Path as _Path

__version__ = "0.1.0"

PROCESS_START = _time.monotonic()
"""When the tuner package was first imported: the start of a ``tuner`` command, for start-up timings."""
PROJECT_ROOT = _Path(__file__).resolve().parent.parent
"""The folder holding the ``tuner``, ``trainables`` and ``search_spaces`` packages (a checkout of the project)."""

_EXPORTS = {
    "run": "tuner.api",
    "resume": "tuner.api",
    "load": "tuner.api",
    "Study": "tuner.api",
    "TunerError": "tuner.errors",
    "SpaceSpec": "tuner.spec",
    "Param": "tuner.spec",
    "LogUniform": "tuner.spec",
    "Uniform": "tuner.spec",
    "IntUniform": "tuner.spec",
    "Choice": "tuner.spec",
    "EarlyStopping": "tuner.spec",
    "Resources": "tuner.spec",
    "Reference": "tuner.spec",
    "LoadedData": "tuner.datasets.base",
    "TrialContext": "trainables.reporting",
    "EpochReporter": "trainables.reporting",
    "ModelFamily": "trainables.family",
    "ServingFamily": "trainables.family",
    "EnsemblingFamily": "trainables.family",
    "ScoringFamily": "trainables.family",
    "ResamplingFamily": "trainables.family",
}

__all__ = ["PROCESS_START", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(_importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tuner' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

"""The searcher state Ray Tune saved in a study's experiment folder."""

from __future__ import annotations

import pickle
from pathlib import Path

import optuna


def saved_optuna_study(run_dir: Path) -> optuna.Study:
    """The Optuna study inside the newest ``searcher-state-*.pkl`` of the study's ``ray`` experiment."""
    state = pickle.loads(sorted((run_dir / "ray").glob("searcher-state-*.pkl"))[-1].read_bytes())
    return next(v for v in _walk(state) if isinstance(v, optuna.Study))


def _walk(value):
    """Every object inside nested dicts, lists and object attributes."""
    yield value
    if isinstance(value, optuna.Study):
        return
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list | tuple) else ()
    if hasattr(value, "__dict__"):
        children = vars(value).values()
    for child in children:
        yield from _walk(child)

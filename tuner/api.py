"""The Python API: a study from a notebook or a script, as ``tuner run`` runs it.

    import tuner

    study = tuner.run("./my_project/space.py", trials=20, max_epochs=10)
    study.best_config, study.test, study.trials          # the chosen config, its test figures, every trial
    study = tuner.resume("my_space")                      # a study whose process stopped
    study = tuner.load("my_space", name="20261204-101500") # a finished study, from its results folder

``space`` is any space reference (a registered name, a module path, a file path; ``tuner.spaces``) or a
``SpaceSpec`` object. Options are keyword arguments named like ``tuner run``'s options (``trials``,
``max_epochs``, ``results_dir``, ``verify_top``, ...: ``tuner.options.RunOptions``), checked as the command line
checks its flags; a bad value raises ``TunerError`` with the command line's one-line message. A study leaves the
process as it found it: no Ray instance it started keeps running, no environment variable or MLflow setting stays
changed (``tuner.session``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.errors import TunerError
from tuner.options import RunOptions
from tuner.run_files import BEST_CONFIG_FILE, PROGRESS_FILE, RUN_FILE, read_json
from tuner.spaces import Space
from tuner.spec import SpaceSpec

DEFAULT_RESULTS = Path("results")


@dataclass(frozen=True)
class Study:
    """A study, read from its run folder (``results/<space>/<run>``): what ``tuner status`` and ``tuner export``
    read, as Python values."""

    run_dir: Path

    @property
    def space(self) -> str:
        return self.run_dir.parent.name

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def record(self) -> dict[str, Any]:
        """``run.json``: status, options, where the space came from, MLflow ids."""
        return read_json(self.run_dir / RUN_FILE, "run record")

    @property
    def status(self) -> str:
        from tuner.status import run_state

        return run_state(self.record)

    @property
    def export(self) -> dict[str, Any]:
        """``best_config.json`` (``tuner export``): the chosen config and everything needed to trust and reuse it."""
        if not (self.run_dir / BEST_CONFIG_FILE).is_file():
            raise TunerError(f"run {self.name} of {self.space} is {self.status}: it has no {BEST_CONFIG_FILE} yet")
        return read_json(self.run_dir / BEST_CONFIG_FILE, "best config")

    @property
    def best_config(self) -> dict[str, Any]:
        """The chosen config (its active parameters), as ``tuner run --config`` takes it back."""
        return self.export["config"]

    @property
    def metric(self) -> dict[str, Any]:
        """The searched metric's name, mode and the chosen config's validation value."""
        return self.export["metric"]

    @property
    def test(self) -> dict[str, dict[str, Any]]:
        """Each test figure of the chosen config with its interval: ``{name: {"value", "low", "high", "level",
        "split", "split_size"}}`` (empty when the space has no test split)."""
        export = self.export
        uncertainty = export.get("test_uncertainty") or {}
        intervals = uncertainty.get("interval") or {}
        figures = {}
        for key, value in (export.get("test") or {}).items():
            low, high = intervals.get(key, (None, None))
            figures[key] = {"value": value, "low": low, "high": high, "level": uncertainty.get("level"),
                            "split": uncertainty.get("split"), "split_size": uncertainty.get("split_size")}  # fmt: skip
        return figures

    @property
    def trials(self):
        """Every trial of the search as a pandas DataFrame: number, id, status, score, epochs, config, message."""
        import pandas as pd

        progress = read_json(self.run_dir / PROGRESS_FILE, "progress file") if self._has(PROGRESS_FILE) else {}
        rows = [
            {**{k: v for k, v in t.items() if k != "config"}, **(t.get("config") or {})}
            for t in progress.get("trials", [])
        ]
        return pd.DataFrame(rows)

    @property
    def mlflow(self) -> dict[str, Any]:
        """Where the study is in MLflow: tracking URI, experiment id, parent run id, the chosen trial's run id."""
        if self._has(BEST_CONFIG_FILE):
            return dict(self.export.get("mlflow") or {})
        record = self.record
        return {"tracking_uri": record.get("tracking_uri"), **(record.get("mlflow") or {})}

    @property
    def model_uri(self) -> str | None:
        """The chosen model's ``models:/`` URI (``mlflow.pyfunc.load_model``), or None when none was logged."""
        return (self.export.get("model") or {}).get("uri")

    def _has(self, name: str) -> bool:
        return (self.run_dir / name).is_file()

    def __repr__(self) -> str:
        return f"tuner.Study({self.space}/{self.name}, {self.status})"


def run(space: str | SpaceSpec | Space, **options: Any) -> Study:
    """Run a study of ``space`` (see the module's docstring); it returns once the study finished."""
    from tuner.study import run_study

    return _study(run_study(space, RunOptions.from_kwargs(**options)))


def resume(space: str | SpaceSpec | Space, name: str | None = None, results_dir: str | Path = DEFAULT_RESULTS) -> Study:
    """Continue the study ``name`` (default: the latest) of ``space`` whose process stopped."""
    from tuner.study import resume_study

    return _study(resume_study(space, name, Path(results_dir)))


def load(space: str | SpaceSpec | Space, name: str | None = None, results_dir: str | Path = DEFAULT_RESULTS) -> Study:
    """The study ``name`` (default: the latest) of ``space``, read from its results folder."""
    from tuner.study import find_study

    return Study(find_study(space, name, Path(results_dir)))


def _study(result) -> Study:
    return Study(result.run_dir)


__all__ = ["Study", "load", "resume", "run"]

"""The one place tuner relies on what Ray Tune, Ray core and MLflow do not promise: their private names and the
files Tune writes. Each use sits behind a named function whose docstring says what it relies on, why no public
API does the job, and the versions it was checked against; ``tests/test_internals.py`` exercises every one of
them against the installed versions (the first thing an upgrade runs), and ``tests/test_internals_scan.py`` fails
when a module outside this package reaches into those libraries.

- ``ray_core``: Ray core (the dashboard's address, the worker preload setting, the token-auth notice's logger);
- ``ray_tune``: Ray Tune's objects (actor env defaults, callback telemetry, a restored Tuner's run config, the
  schedulers' and HyperOpt's state);
- ``tune_files``: the files Tune writes in an experiment folder (snapshots, trial data, checkpoint folders, the
  saved search state);
- ``mlflow_store``: MLflow's process-wide tracking store setting.

``SUPPORTED`` is the range of each library these were checked against (pyproject.toml requires the same);
``check_versions`` refuses any other in one line before a study starts.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from packaging.specifiers import SpecifierSet

SUPPORTED = {"ray": "==2.60.0", "mlflow": ">=3.17,<3.18"}
"""Distribution -> the versions tuner runs with: those the adapter tests passed on (see the contributors' page
"Ray and MLflow internals" for how to widen a range)."""


def unsupported_versions() -> list[str]:
    """One phrase per installed library outside ``SUPPORTED`` (none when all are in range)."""
    problems = []
    for name, accepted in SUPPORTED.items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            problems.append(f"{name} is not installed (tuner needs {name}{accepted})")
            continue
        if installed not in SpecifierSet(accepted):
            problems.append(f"{name} {installed} is installed, tuner supports {name}{accepted}")
    return problems


def check_versions() -> None:
    """Refuse, in one line, a Ray or MLflow version tuner was not checked against: it would otherwise fail later,
    mid-study, where one of their internals moved."""
    from tuner.errors import TunerError

    problems = unsupported_versions()
    if problems:
        raise TunerError(f"{'; '.join(problems)}: install a supported version (pip install -e .)")


__all__ = ["SUPPORTED", "check_versions", "unsupported_versions"]

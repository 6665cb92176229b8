"""Why a finished study found what it found, written to ``<run folder>/analysis/``.

``trials``: the study's trials read back from its results folder (learning curves from MLflow); ``importance``:
fANOVA and PED-ANOVA over them with Optuna's evaluators; ``plots``: the figures; ``page``: one HTML page with all
of them; ``summary``: the few lines printed at the end of ``tuner run`` and by ``tuner analyze``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.analysis.importance import ranking
from tuner.analysis.trials import StudyTrials, load_trials
from tuner.run_files import write_json
from tuner.spec import SpaceSpec

ANALYSIS_FOLDER = "analysis"
IMPORTANCE_FILE = "importance.json"
SUMMARY_FILE = "summary.txt"
PAGE_FILE = "report.html"
SLICE_PARAMS = 3


@dataclass(frozen=True)
class Analysis:
    folder: Path
    summary: str
    importance: dict[str, Any]

    def metrics(self) -> dict[str, float]:
        """The parent run's metrics: ``importance.<param>`` (fANOVA), and the conditional parameters' own."""
        found = {f"importance.{p}": v for p, v in ranking(self.importance)}
        for name, entry in (self.importance.get("conditional") or {}).items():
            if "fanova" in entry:
                found[f"importance_conditional.{name}"] = entry["fanova"]
        return found


def write_analysis(
    spec: SpaceSpec,
    run_dir: Path,
    study_root: str | None = None,
    tracking_uri: str | None = None,
    parent_id: str | None = None,
    chosen: dict[str, Any] | None = None,
) -> Analysis:
    """(Re)write the analysis folder of the study in ``run_dir`` (the arguments: see ``load_trials``; ``chosen``:
    the study's choice as its export records it, ``trial_number``, ``test`` and ``test_uncertainty``, marked in
    the figures and shown on the page). It is built beside the folder and moved in at the end: a failure leaves
    no half-written analysis (and no stale one)."""
    from tuner.analysis.importance import compared_trials, param_importance

    folder, building = run_dir / ANALYSIS_FOLDER, run_dir / f".{ANALYSIS_FOLDER}-building"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(building, ignore_errors=True)
    trials = load_trials(run_dir, study_root, tracking_uri, parent_id)
    building.mkdir()
    importance = param_importance(spec, trials)
    importance["notes"] = trials.notes
    write_json(building / IMPORTANCE_FILE, importance)
    compared = compared_trials(spec, trials, (chosen or {}).get("trial_number"))
    figures, skipped = _figures(spec, trials, compared, importance, building)
    from tuner.analysis.page import write_page
    from tuner.analysis.summary import summary_text

    summary = summary_text(trials, importance, skipped)
    (building / SUMMARY_FILE).write_text(summary + "\n")
    write_page(building / PAGE_FILE, f"{spec.name} run {run_dir.name}", summary, importance, figures, skipped, chosen)
    building.rename(folder)
    return Analysis(folder, summary, importance)


def _figures(spec: SpaceSpec, trials: StudyTrials, compared, importance: dict[str, Any], folder: Path):
    """(title -> PNG written, title -> why it was not drawn)."""
    from tuner.analysis import plots

    ranked = [name for name, _ in ranking(importance)]
    varied = ranked or [p.name for p in spec.params if all(p.name in t.config for t in compared.trials)]
    drawn = {
        "best so far": plots.best_so_far(trials, folder / "best_so_far.png"),
        "parallel coordinates": plots.parallel_coordinates(spec, compared, varied, folder / "parallel_coordinates.png"),
        "learning curves": plots.learning_curves(trials, folder / "learning_curves.png"),
        f"slices of the {SLICE_PARAMS} most important parameters": plots.slices(
            spec, compared, ranked[:SLICE_PARAMS], folder / "slices.png"),
        "GPU memory per trial": plots.gpu_memory(trials, folder / "gpu_memory.png"),
    }  # fmt: skip
    if not trials.timed:
        drawn["best so far over wall time"] = "; ".join(n for n in trials.notes if n.startswith("wall")) or "no times"
    figures = {k: v for k, v in drawn.items() if isinstance(v, Path)}
    return figures, {k: v for k, v in drawn.items() if isinstance(v, str)}


def read_summary(run_dir: Path) -> str | None:
    """The analysis summary of the study in ``run_dir``, when it has one."""
    try:
        return (run_dir / ANALYSIS_FOLDER / SUMMARY_FILE).read_text().rstrip("\n")
    except OSError:
        return None


__all__ = ["ANALYSIS_FOLDER", "Analysis", "IMPORTANCE_FILE", "PAGE_FILE", "read_summary", "write_analysis"]

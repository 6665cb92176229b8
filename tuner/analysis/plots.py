"""The analysis figures, one PNG each (matplotlib, Agg backend: no display needed). Each function writes its
file and returns its path, or returns the reason it drew nothing (a ``str``), which the page and summary show."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend is chosen first

from tuner.analysis.importance import optuna_study  # noqa: E402
from tuner.analysis.trials import StudyTrials  # noqa: E402
from tuner.schema import TrialStatus  # noqa: E402
from tuner.spec import SpaceSpec  # noqa: E402

TOP_TRIALS = 10
"""Trials drawn in the parallel coordinates: the best ones."""
END_MARKERS = {TrialStatus.PRUNED: ("x", "pruned"), TrialStatus.STOPPED: ("s", "stopped"),
               TrialStatus.EARLY_STOPPED: ("v", "early stopped")}  # fmt: skip
"""How a learning curve's last point shows the trial was cut short (completed trials end unmarked)."""


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def best_so_far(trials: StudyTrials, path: Path) -> Path | str:
    """The best score so far against wall time (when the trials' times are known) and against trials ended."""
    rows = trials.best_so_far()
    if not rows:
        return "no trial has a score"
    panels = 2 if trials.timed else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4), squeeze=False)
    counts = list(range(1, len(rows) + 1))
    if trials.timed:
        ax = axes[0][0]
        ax.step([t.end_s for t, _ in rows], [b for _, b in rows], where="post")
        ax.scatter([t.end_s for t, _ in rows], [t.score for t, _ in rows], s=12, alpha=0.5)
        ax.set(xlabel="wall time since the study started (s)", ylabel=trials.metric, title="best so far over time")
    ax = axes[0][-1]
    ax.step(counts, [b for _, b in rows], where="post")
    ax.scatter(counts, [t.score for t, _ in rows], s=12, alpha=0.5)
    ax.set(xlabel="trials ended", ylabel=trials.metric, title="best so far over trials")
    return _save(fig, path)


def learning_curves(trials: StudyTrials, path: Path) -> Path | str:
    """Every trial's metric per epoch; the last point of a trial cut short is marked by how it ended."""
    drawn = [t for t in trials.trials if t.history]
    if not drawn:
        return "no per-epoch history (" + "; ".join(n for n in trials.notes if n.startswith("learning")) + ")"
    fig, ax = plt.subplots(figsize=(8, 5))
    labelled: set[str] = set()
    for trial in drawn:
        epochs = sorted(trial.history)
        ax.plot(epochs, [trial.history[e] for e in epochs], lw=1, alpha=0.6)
        if trial.status in END_MARKERS:
            marker, label = END_MARKERS[trial.status]
            ax.scatter([epochs[-1]], [trial.history[epochs[-1]]], marker=marker, color="black", zorder=3,
                       label=None if label in labelled else label)  # fmt: skip
            labelled.add(label)
    ax.set(xlabel="epoch", ylabel=trials.metric, title=f"learning curves of {len(drawn)} trials")
    if labelled:
        ax.legend()
    return _save(fig, path)


def parallel_coordinates(spec: SpaceSpec, trials: StudyTrials, params: list[str], path: Path) -> Path | str:
    """The best ``TOP_TRIALS`` trials with a final score over the ranked parameters (Optuna's plot)."""
    from optuna.visualization.matplotlib import plot_parallel_coordinate

    final = trials.final()
    if len(final) < 2 or not params:
        return "fewer than 2 trials with a final score, or no parameter that varied"
    top = sorted(final, key=lambda t: t.score, reverse=trials.mode == "max")[:TOP_TRIALS]
    study = optuna_study(spec, trials.mode, top, params)
    with warnings.catch_warnings():  # Optuna marks its matplotlib plots experimental
        warnings.simplefilter("ignore")
        ax = plot_parallel_coordinate(study, params=params, target_name=trials.metric)
    ax.set_title(f"top {len(top)} trials by {trials.metric}")
    fig = ax.figure
    fig.set_size_inches(max(8, 1.3 * len(params)), 5)
    return _save(fig, path)


def slices(spec: SpaceSpec, trials: StudyTrials, params: list[str], path: Path) -> Path | str:
    """The metric against each of ``params`` (the most important ones), over the trials with a final score."""
    from optuna.visualization.matplotlib import plot_slice

    final = trials.final()
    if len(final) < 2 or not params:
        return "fewer than 2 trials with a final score, or no ranked parameter"
    study = optuna_study(spec, trials.mode, final)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        axes = plot_slice(study, params=params, target_name=trials.metric)
    first = axes if not hasattr(axes, "flat") else axes.flat[0]
    fig = first.figure
    fig.set_size_inches(5 * len(params), 4)
    return _save(fig, path)


def gpu_memory(trials: StudyTrials, path: Path) -> Path | str:
    """Each trial's peak GPU memory, where its family measured one (it trained on a GPU)."""
    measured = [t for t in trials.trials if t.gpu_peak_mb is not None]
    if not measured:
        return "no trial reported GPU memory (no GPU ran, or its model family does not measure it)"
    fig, ax = plt.subplots(figsize=(max(6, 0.25 * len(measured)), 4))
    ax.bar([str(t.number) for t in measured], [t.gpu_peak_mb for t in measured])
    ax.set(xlabel="trial", ylabel="peak allocated GPU memory (MiB)", title="GPU memory per trial")
    return _save(fig, path)

"""The analysis figures, one PNG each (matplotlib, Agg backend: no display needed). Each function writes its
file and returns its path, or returns the reason it drew nothing (a ``str``), which the page and summary show."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend is chosen first

from tuner.analysis.importance import Compared, optuna_study  # noqa: E402
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
            ax.scatter(
                [epochs[-1]],
                [trial.history[epochs[-1]]],
                marker=marker,
                color="black",
                zorder=3,
                label=None if label in labelled else label,
            )
            labelled.add(label)
    ax.set(xlabel="epoch", ylabel=trials.metric, title=f"learning curves of {len(drawn)} trials")
    if labelled:
        ax.legend()
    return _save(fig, path)


def parallel_coordinates(spec: SpaceSpec, compared: Compared, params: list[str], path: Path) -> Path | str:
    """The best ``TOP_TRIALS`` compared trials over the ranked parameters (Optuna's plot), the chosen one in bold."""
    from optuna.visualization.matplotlib import plot_parallel_coordinate

    if len(compared.trials) < 2 or not params:
        return "fewer than 2 trials to compare, or no parameter that varied"
    ranked = sorted(compared.trials, key=lambda t: t.score, reverse=compared.mode == "max")
    top = ranked[:TOP_TRIALS]
    chosen = next((t for t in ranked if t.number == compared.chosen), None)
    title = f"the best {len(top)} of {len(ranked)} trials by {compared.metric}{compared.at}"
    if chosen is not None and chosen not in top:
        top, title = [*top, chosen], f"{title}, and the chosen one"
    study = optuna_study(spec, compared.mode, top, params)
    with warnings.catch_warnings():  # Optuna marks its matplotlib plots experimental
        warnings.simplefilter("ignore")
        ax = plot_parallel_coordinate(study, params=params, target_name=compared.metric)
    ax.set_title(title, y=1.03)
    fig = ax.figure
    fig.set_size_inches(max(8, 1.8 * len(params)), 5)
    _short_tick_labels(fig)
    if chosen is not None:
        _mark_line(ax, chosen.score, f"chosen: trial {chosen.number}")
    return _save(fig, path)


def _mark_line(ax, score: float, label: str) -> None:
    """Draw again, in black, the line of Optuna's parallel coordinates that starts at ``score`` (its first axis is
    the objective)."""
    from matplotlib.collections import LineCollection

    for collection in (c for c in ax.collections if isinstance(c, LineCollection)):
        for segment in collection.get_segments():
            if len(segment) and abs(segment[0][1] - score) <= 1e-12 * max(1.0, abs(score)):
                ax.plot(segment[:, 0], segment[:, 1], color="black", linewidth=2.5, zorder=5, label=label)
                ax.legend(loc="lower left", fontsize="small")
                return


def slices(spec: SpaceSpec, compared: Compared, params: list[str], path: Path) -> Path | str:
    """The metric against each of ``params`` (the most important ones), over the compared trials; the colour is
    the trial's number, the chosen trial is ringed."""
    from optuna.visualization.matplotlib import plot_slice

    if len(compared.trials) < 2 or not params:
        return "fewer than 2 trials to compare, or no ranked parameter"
    study = optuna_study(spec, compared.mode, compared.trials)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        axes = plot_slice(study, params=params, target_name=f"{compared.metric}{compared.at}")
    panels = list(axes.flat) if hasattr(axes, "flat") else [axes]
    fig = panels[0].figure
    fig.set_size_inches(5 * len(params), 4)
    numbers = [t.user_attrs["number"] for t in study.trials]
    _number_colour_bar(fig, panels, numbers)
    chosen = next((t for t in study.trials if t.user_attrs["number"] == compared.chosen), None)
    for ax in panels:  # Optuna orders the panels by name: each says its parameter in its x label
        name = ax.get_xlabel()
        x = _slice_x(ax, spec, name, chosen.params.get(name)) if chosen is not None and name in params else None
        if x is not None:
            ring = ax.scatter(
                [x],
                [chosen.value],
                s=160,
                facecolors="none",
                edgecolors="black",
                linewidths=1.5,
                zorder=5,
                label=f"chosen: trial {compared.chosen}",
            )
            ax.legend(handles=[ring], loc="best", fontsize="small")  # not Optuna's empty "Infeasible Trial"
    return _save(fig, path)


def _slice_x(ax, spec: SpaceSpec, name: str, value) -> float | None:
    """Where a value of ``name`` sits on its slice: Optuna places a categorical parameter's values at the ticks
    labelled with their repr."""
    from tuner.spec import Choice

    if value is None:
        return None
    if not isinstance(spec.param(name).domain, Choice):
        return value
    ticks = ax.get_xticks()
    labels = list(ax.xaxis.get_major_formatter().format_ticks(ticks))  # the text objects are filled when drawn
    for shown in (repr(value), str(value)):
        if shown in labels:
            return ticks[labels.index(shown)]
    return None


def _number_colour_bar(fig, panels: list, numbers: list[int]) -> None:
    """Optuna colours the slices by its own trial index (0..n-1): the colour bar shows the study's trial numbers."""
    from matplotlib.ticker import FuncFormatter

    def number(value: float, _position) -> str:
        index = round(value)
        return str(numbers[index]) if 0 <= index < len(numbers) and abs(value - index) < 1e-6 else ""

    for bar_ax in (ax for ax in fig.axes if ax not in panels):
        bar_ax.yaxis.set_major_formatter(FuncFormatter(number))
        bar_ax.set_ylabel("trial")


def _short_tick_labels(fig) -> None:
    """Optuna writes a log axis's ticks in full (0.000123456): 3 significant digits keep them off the next axis."""
    for ax in fig.axes:
        labels = [label.get_text() for label in ax.get_yticklabels()]
        shortened = [_short(text) for text in labels]
        if shortened != labels:
            ax.set_yticks(ax.get_yticks(), shortened)


MINUS_SIGN = "\u2212"
"""What matplotlib writes for a negative tick."""


def _short(text: str) -> str:
    try:
        value = float(text.replace(MINUS_SIGN, "-"))
        return f"{value:.3g}"
    except ValueError:
        return text


def gpu_memory(trials: StudyTrials, path: Path) -> Path | str:
    """Each trial's peak GPU memory, where its family measured one (it trained on a GPU)."""
    measured = [t for t in trials.trials if t.gpu_peak_mb is not None]
    if not measured:
        return "no trial reported GPU memory (no GPU ran, or its model family does not measure it)"
    fig, ax = plt.subplots(figsize=(max(6, 0.25 * len(measured)), 4))
    ax.bar([str(t.number) for t in measured], [t.gpu_peak_mb for t in measured])
    ax.set(xlabel="trial", ylabel="peak allocated GPU memory (MiB)", title="GPU memory per trial")
    return _save(fig, path)

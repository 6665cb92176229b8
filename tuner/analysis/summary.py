"""The analysis in a few lines: the three most important parameters and which of their values won."""

from __future__ import annotations

from typing import Any

from tuner.analysis.importance import ranking
from tuner.analysis.trials import StudyTrials

TOP_PARAMS = 3
WINNERS = 3
"""The values of this many best trials are shown beside each parameter."""


def summary_text(trials: StudyTrials, importance: dict[str, Any], skipped: dict[str, str]) -> str:
    """``skipped``: figure name -> why it was not drawn."""
    epoch = importance.get("scored_at_epoch")
    over = f"each scored at epoch {epoch}" if epoch is not None else f"with a final {trials.metric}"
    lines = [
        f"analysis of {trials.space} run {trials.run}: {len(trials.trials)} search trials, "
        f"importance over {importance.get('trials_used', 0)} {over}"
    ]
    ranked = ranking(importance)
    if not ranked:
        lines.append(f"  importance: {importance.get('note') or 'no parameter varied across the trials'}")
    peds = (importance.get("importance") or {}).get("ped_anova", {})
    best = sorted(trials.final(), key=lambda t: t.score, reverse=trials.mode == "max")[:WINNERS]
    if ranked:
        lines.append(f"  most important (fANOVA | PED-ANOVA), and the values of the best {len(best)} trials:")
    for i, (name, value) in enumerate(ranked[:TOP_PARAMS], 1):
        won = ", ".join(_shown(t.config.get(name, "-")) for t in best)
        lines.append(f"    {i}. {name:<22} {value:.2f} | {peds.get(name, 0.0):.2f}   best: {won}")
    for name, entry in (importance.get("conditional") or {}).items():
        if "fanova" in entry:
            lines.append(
                f"  conditional {name}: {entry['fanova']:.2f} | {entry['ped_anova']:.2f} on the "
                f"{entry['trials']} trials where {entry['condition']} "
                f"(not comparable with the above)"
            )
        else:
            lines.append(f"  conditional {name}: left out ({entry['excluded']})")
    lines += [f"  not drawn: {figure}: {why}" for figure, why in skipped.items()]
    return "\n".join(lines)


def _shown(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)

"""The baseline phase: the report's own config on this study's split, so the chosen config's test figure has a
baseline measured on the same test rows (the figure the report published was measured on another split).

The search's own trial of the report's config is used when it ran to its end (``--no-report-start`` and ASHA
can leave none) with the report's protocol (``report_fixed``: a search with ``cv_folds=3`` trained it as three
fold models, the report trained one on its single split); otherwise the config is trained once more, to its
end, with the study's seed and the report's protocol, as a child run tagged
``tuner.phase=baseline``. ``--no-report-baseline`` skips the phase.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tuner.schema import BASELINE_PHASE, ENDED_ON_ITS_OWN
from tuner.study.prepare import Study
from tuner.study.search import SearchResult, train_to_end

BASELINE_EXPERIMENT = BASELINE_PHASE
"""The baseline's Ray Tune experiment in the study's storage, named after its phase."""


@dataclass(frozen=True)
class Baseline:
    trial: Any | None
    """The report config's trial (``tuner.monitor.TrialOutcome``) whose weights the test split scores; None when
    the phase was skipped."""
    note: str
    """Where the trial came from, or why there is none."""


def baseline(study: Study, search: SearchResult) -> Baseline:
    plan = study.plan
    skipped = _why_skipped(study)
    if skipped:
        return Baseline(None, skipped)
    config = plan.spec.active_config(plan.spec.report_config)
    protocol = report_protocol(plan.spec)
    searched = [o for o in search.ledger.outcomes.values() if o.config == config]
    done = next((o for o in searched if o.status in ENDED_ON_ITS_OWN and o.checkpoint_path), None)
    if done is not None and not protocol:
        return Baseline(done, f"the search's trial {done.number} (the report's config, run to its end)")
    how = "".join(f", {key}={value}" for key, value in protocol.items())
    study.echo(f"baseline: training the report's config on this split to its end, with the study's seed{how}")
    from tuner.monitor.ledger import config_key  # with Ray Tune: imported as Ray starts (tuner.cluster)

    reruns = {config_key(config): searched[0].number} if searched else None
    ledger = train_to_end(
        study, [(config, plan.options.seed)], BASELINE_EXPERIMENT, keep=True, fixed=protocol, reruns=reruns
    )
    trial = next(iter(ledger.outcomes.values()), None)
    if trial is None or trial.checkpoint_path is None:
        return Baseline(None, f"the report's config left no checkpoint ({trial.status if trial else 'no run'})")
    return Baseline(trial, f"the report's config trained on this split with the study's seed{how}")


def report_protocol(spec) -> dict[str, Any]:
    """The report's fixed settings (``report_fixed``) where this study's differ: the search trained the report's
    config some other way (K folds, say), so the baseline trains it again the report's way."""
    return {key: value for key, value in spec.report_fixed.items() if spec.fixed.get(key) != value}


def _why_skipped(study: Study) -> str:
    plan, data = study.plan, study.data
    if not plan.options.report_baseline:
        return "skipped (--no-report-baseline)"
    if plan.fixed_config is not None:
        return "skipped: one config was trained (--config)"
    if not plan.spec.report_config:
        return "skipped: the space has no report config"
    if data is None or "test" not in data.splits:
        return "skipped: the data has no test split"
    return ""


__all__ = ["BASELINE_EXPERIMENT", "Baseline", "baseline", "report_protocol"]

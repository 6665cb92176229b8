"""The export phase: ``best_config.json`` and ``trials.csv`` in the run's folder, the MLflow parent run closed with
the study's figures and those files, ``run.json`` marked finished, and the summary printed."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.run_files import BEST_CONFIG_FILE, library_versions, read_json, write_json
from tuner.schema import (
    CHOSEN_PARAM_PREFIX,
    CHOSEN_RUN_TAG,
    CHOSEN_TAG,
    CHOSEN_TRIAL_TAG,
    MLFLOW_FINISHED,
    NOTE_TAG,
)
from tuner.study.evaluate import LEVEL, Evaluation
from tuner.study.prepare import Study
from tuner.study.references import reference_metrics
from tuner.study.search import SearchResult
from tuner.study.verify import Verification
from tuner.ui import run_link

TRIALS_FILE = "trials.csv"


@dataclass(frozen=True)
class StudyResult:
    run_dir: Path
    export: dict[str, Any]
    counts: dict[str, int]
    parent_run_id: str
    first_trial_after_s: float | None
    wall_s: float


def export(
    study: Study, search: SearchResult, checked: Verification, figures: Evaluation, model: dict[str, Any] | None = None
) -> StudyResult:
    from tuner.study_text import print_summary, trials_csv

    plan, tracker, ledger = study.plan, study.tracker, search.ledger
    payload = best_config(study, search, checked, figures, model)
    tracker.flush()
    payload["mlflow"].update(
        experiment_id=tracker.experiment_id,
        parent_run_id=tracker.parent_id,
        child_run_id=tracker.child_run_id(figures.best.trial_id),
    )
    _mark_chosen(study, payload["mlflow"]["child_run_id"])
    write_json(plan.run_dir / BEST_CONFIG_FILE, payload)
    trials = trials_csv(plan.spec, ledger)
    (plan.run_dir / TRIALS_FILE).write_text(trials)
    counts = dict(ledger.counts())
    tracker.end_parent(
        MLFLOW_FINISHED,
        _parent_metrics(study, search, checked, figures, counts),
        _chosen_tags(study, figures, payload),
        {BEST_CONFIG_FILE: payload, TRIALS_FILE: trials},
    )
    tracker.close()
    wall = time.monotonic() - study.started
    mlflow_ids = {"experiment_id": tracker.experiment_id, "parent_run_id": tracker.parent_id,
                  "records_waiting": tracker.guard.spool.pending}  # fmt: skip
    study.record.finished(
        mlflow=mlflow_ids, counts=counts, wall_s=round(wall, 2), first_trial_after_s=ledger.first_trial_after
    )
    print_summary(study.echo, plan.spec, ledger, payload, plan.run_dir, wall)
    waiting = tracker.guard.spool
    if waiting.pending:
        study.echo(
            f"MLflow: {waiting.pending} record(s) could not be written to {plan.tracking_uri} "
            f"({tracker.guard.reason}); they wait in {waiting.path}. When the store answers: tuner sync "
            f"{plan.spec.name} --name {plan.name}"
        )
    return StudyResult(plan.run_dir, payload, counts, tracker.parent_id, ledger.first_trial_after, wall)


def best_config(
    study: Study, search: SearchResult, checked: Verification, figures: Evaluation, model: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The export: the best config with everything needed to trust it and to train it again (``run --config``);
    ``model``: the MLflow model the publish phase logged (URI, registered name and version) or why there is none."""
    plan, data, best = study.plan, study.data, figures.best
    spec, opts = plan.spec, plan.options
    return {
        "space": spec.name,
        "run": plan.name,
        "config": best.config,
        "metric": {"name": spec.metric, "mode": spec.mode, "value": best.score},
        "best_epoch": best.best_epoch,
        "trial_id": best.trial_id,
        "seed": opts.seed,
        "git_commit": study.commit,
        "data": {
            "fingerprint": data.fingerprint if data else None,
            "synthetic": data.synthetic if data else None,
            "source": data.source if data else None,
        },
        "library_versions": library_versions(),
        "verification": checked.record(),
        **chosen_record(figures, data),
        "report_baseline": _baseline_record(figures, data),
        "references": figures.references,
        "ensemble": figures.ensemble,
        "settings": {"fixed": spec.fixed, "data_options": spec.data_options, "max_epochs": spec.max_epochs},
        "report": plan.reference(),
        "mlflow": {"tracking_uri": plan.tracking_uri},
        "model": model,
        "search": {
            "searcher": opts.searcher,
            "scheduler": opts.scheduler,
            "note": search.note,
            "trials": len(search.ledger.outcomes),
            "statuses": dict(search.ledger.counts()),
            "verify_top": opts.verify_top,
            "verify_seeds": opts.verify_seeds,
        },
    }


def chosen_record(figures: Evaluation, data) -> dict[str, Any]:
    """The chosen trial's number and test figures with their intervals, as the export records them."""
    return {"trial_number": figures.best.number, "test": figures.test.values if figures.test else None,
            "test_uncertainty": _uncertainty(figures.test, data)}  # fmt: skip


def _uncertainty(figures, data) -> dict[str, Any] | None:
    if figures is None:
        return None
    return {"interval": {k: list(v) for k, v in figures.interval.items()}, "level": LEVEL,
            "resamples": figures.resamples, "split": "test", "split_size": len(data.splits["test"])}  # fmt: skip


def _baseline_record(figures: Evaluation, data) -> dict[str, Any]:
    record: dict[str, Any] = {"note": figures.baseline_note}
    if figures.baseline is not None:
        record.update(test=figures.baseline.values, uncertainty=_uncertainty(figures.baseline, data))
    return record


def _mark_chosen(study: Study, child_run_id: str | None) -> None:
    """The chosen trial's child run marked; the run an earlier export of this study chose (before ``verify`` or
    ``extend`` chose again) unmarked."""
    earlier = study.plan.run_dir / BEST_CONFIG_FILE
    before = (read_json(earlier, "the study's export").get("mlflow") or {}) if earlier.exists() else {}
    previous = before.get("child_run_id")
    parent = f"[run {study.plan.name}]({run_link(study.tracker.experiment_id, study.tracker.parent_id)})"
    if previous and previous != child_run_id:
        note = f"Chosen by an earlier export of study {parent}; the study chose another trial since."
        study.tracker.tag_run(previous, {CHOSEN_TAG: "false", NOTE_TAG: note})
    if child_run_id:
        note = f"**Chosen**: this trial's config is the choice of study {parent} (its test figures, its model)."
        study.tracker.tag_run(child_run_id, {CHOSEN_TAG: "true", NOTE_TAG: note})


def _chosen_tags(study: Study, figures: Evaluation, payload: dict[str, Any]) -> dict[str, str]:
    """What the parent run says of the choice: the trial, its run, its config, and a description saying why."""
    child = payload["mlflow"]["child_run_id"] or ""
    config = {f"{CHOSEN_PARAM_PREFIX}{key}": value for key, value in payload["config"].items()}
    return {CHOSEN_TRIAL_TAG: str(figures.best.number), CHOSEN_RUN_TAG: child, **config,
            NOTE_TAG: _description(study, payload)}  # fmt: skip


def _description(study: Study, payload: dict[str, Any]) -> str:
    """The parent run's description (markdown): the chosen trial linked, how it was chosen, its config and test
    figures."""
    mlflow_ids, metric = payload["mlflow"], payload["metric"]
    link = (
        f"[trial {payload['trial_number']}]({run_link(mlflow_ids['experiment_id'], mlflow_ids['child_run_id'])})"
        if mlflow_ids.get("child_run_id")
        else f"trial {payload['trial_number']}"
    )
    verification = payload.get("verification") or {}
    how = (
        f"the best mean {metric['name']} over fresh seeds among the top {len(verification['candidates'])} search "
        f"trials (re-verification), not necessarily the highest single search score"
        if verification.get("candidates")
        else f"the highest {metric['name']} ({metric['mode']}) of the search"
    )
    lines = [
        f"**Chosen: {link}**, {metric['name']} {metric['value']:.4g} in the search; chosen as {how}.",
        "",
        "| parameter | value |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in payload["config"].items()),
    ]
    uncertainty = payload.get("test_uncertainty") or {}
    for key, value in (payload.get("test") or {}).items():
        low, high = (uncertainty.get("interval") or {}).get(key, (None, None))
        interval = f" [{low:.4g}, {high:.4g}]" if low is not None else ""
        lines.append(f"\n{key} = {value:.4g}{interval} on the test split ({uncertainty.get('split_size')} rows)")
    return "\n".join(lines)


def _parent_metrics(
    study: Study, search: SearchResult, checked: Verification, figures: Evaluation, counts: dict[str, int]
):
    """The parent's figures, each named for what it is: the chosen trial's search score, the highest search score
    (another trial's when re-verification chose otherwise), the test figures first among the rest."""
    spec = study.plan.spec
    metric = spec.metric
    scores = [o.score for o in search.ledger.outcomes.values() if o.score is not None]
    metrics = {f"chosen_{metric}": figures.best.score}
    if scores:
        metrics[f"search_best_{metric}"] = max(scores) if spec.mode == "max" else min(scores)
    if figures.test is not None:
        metrics.update(figures.test.values)
        for key, (low, high) in figures.test.interval.items():
            metrics.update({f"{key}_ci_low": low, f"{key}_ci_high": high})
    if figures.baseline is not None:
        metrics.update({f"baseline_{key}": value for key, value in figures.baseline.values.items()})
    metrics.update(reference_metrics(figures.references))
    chosen = checked.chosen_candidate
    if chosen is not None:
        metrics.update({f"verified_{metric}_mean": chosen.mean, f"verified_{metric}_sd": chosen.sd})
    metrics.update({k: v for k, v in (figures.ensemble or {}).items() if isinstance(v, float)})
    metrics.update({f"trials_{k}": v for k, v in counts.items()})
    return metrics


__all__ = ["StudyResult", "TRIALS_FILE", "export"]

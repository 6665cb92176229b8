"""Phase 5, export: ``best_config.json`` and ``trials.csv`` in the run's folder, the MLflow parent run closed with
the study's figures and those files, ``run.json`` marked finished, and the summary printed."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.export import BEST_CONFIG_FILE, library_versions, write_json
from tuner.schema import BEST_CHILD_RUN_TAG, BEST_TRIAL_TAG
from tuner.study.evaluate import LEVEL, Evaluation
from tuner.study.fit import SearchResult
from tuner.study.prepare import Study
from tuner.study.verify import Verification

TRIALS_FILE = "trials.csv"


@dataclass(frozen=True)
class StudyResult:
    run_dir: Path
    export: dict[str, Any]
    counts: dict[str, int]
    parent_run_id: str
    first_trial_after_s: float | None
    wall_s: float


def export(study: Study, search: SearchResult, checked: Verification, figures: Evaluation,
           model: dict[str, Any] | None = None) -> StudyResult:  # fmt: skip
    from tuner.summary import print_summary, trials_csv

    plan, tracker, ledger = study.plan, study.tracker, search.ledger
    payload = best_config(study, search, checked, figures, model)
    tracker.flush()
    payload["mlflow"].update(experiment_id=tracker.experiment_id, parent_run_id=tracker.parent_id,
                             child_run_id=tracker.child_run_id(figures.best.trial_id))  # fmt: skip
    write_json(plan.run_dir / BEST_CONFIG_FILE, payload)
    trials = trials_csv(plan.spec, ledger)
    (plan.run_dir / TRIALS_FILE).write_text(trials)
    counts = dict(ledger.counts())
    best_tags = {BEST_TRIAL_TAG: figures.best.trial_id, BEST_CHILD_RUN_TAG: payload["mlflow"]["child_run_id"] or ""}
    tracker.end_parent("FINISHED", _parent_metrics(study, checked, figures, counts), best_tags,
                       {BEST_CONFIG_FILE: payload, TRIALS_FILE: trials})  # fmt: skip
    tracker.close()
    wall = time.monotonic() - study.started
    mlflow_ids = {"experiment_id": tracker.experiment_id, "parent_run_id": tracker.parent_id,
                  "records_waiting": tracker.guard.spool.pending}  # fmt: skip
    study.record.finished(mlflow=mlflow_ids, counts=counts, wall_s=round(wall, 2),
                          first_trial_after_s=ledger.first_trial_after)  # fmt: skip
    print_summary(study.echo, plan.spec, ledger, payload, plan.run_dir, wall)
    waiting = tracker.guard.spool
    if waiting.pending:
        study.echo(f"MLflow: {waiting.pending} record(s) could not be written to {plan.tracking_uri} "
                   f"({tracker.guard.reason}); they wait in {waiting.path}. When the store answers: tuner sync "
                   f"{plan.spec.name} --name {plan.name}")  # fmt: skip
    return StudyResult(plan.run_dir, payload, counts, tracker.parent_id, ledger.first_trial_after, wall)


def best_config(study: Study, search: SearchResult, checked: Verification, figures: Evaluation,
                model: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
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
        "trial_number": best.number,
        "seed": opts.seed,
        "git_commit": study.commit,
        "data": {
            "fingerprint": data.fingerprint if data else None,
            "synthetic": data.synthetic if data else None,
            "source": data.source if data else None,
        },  # fmt: skip
        "library_versions": library_versions(),
        "verification": checked.record(),
        "test": figures.test.values if figures.test else None,
        "test_uncertainty": _uncertainty(figures.test, data),
        "report_baseline": _baseline_record(figures, data),
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
        },  # fmt: skip
    }


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


def _parent_metrics(study: Study, checked: Verification, figures: Evaluation, counts: dict[str, int]):
    metric = study.plan.spec.metric
    metrics = {f"best_{metric}": figures.best.score}
    if figures.test is not None:
        metrics.update(figures.test.values)
        for key, (low, high) in figures.test.interval.items():
            metrics.update({f"{key}_ci_low": low, f"{key}_ci_high": high})
    if figures.baseline is not None:
        metrics.update({f"baseline_{key}": value for key, value in figures.baseline.values.items()})
    chosen = checked.chosen_candidate
    if chosen is not None:
        metrics.update({f"verified_{metric}_mean": chosen.mean, f"verified_{metric}_sd": chosen.sd})
    metrics.update({k: v for k, v in (figures.ensemble or {}).items() if isinstance(v, float)})
    metrics.update({f"trials_{k}": v for k, v in counts.items()})
    return metrics


__all__ = ["StudyResult", "TRIALS_FILE", "export"]

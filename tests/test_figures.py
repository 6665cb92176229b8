"""Honest final figures: the chosen config and the report's config on the same test split, each with a bootstrap
interval, beside the report's published figure."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.helpers.mlflow_runs import mlflow_runs
from tuner import spaces
from tuner.options import RunOptions
from tuner.schema import PHASE_TAG
from tuner.study import run_study
from tuner.study.evaluate import RESAMPLES, bootstrap_interval


def test_the_bootstrap_interval_of_a_mean_matches_its_standard_error():
    outcomes = np.array([1] * 80 + [0] * 20)  # accuracy 0.8 on 100 rows: standard error 0.04
    interval, count = bootstrap_interval(lambda rows: {"acc": float(outcomes[rows].mean())}, np.arange(100), 0)
    low, high = interval["acc"]
    assert count == RESAMPLES
    assert low < 0.8 < high and high - low == pytest.approx(2 * 1.96 * 0.04, rel=0.25)
    assert bootstrap_interval(lambda rows: {"acc": float(outcomes[rows].mean())}, np.arange(100), 0)[0] == interval


def test_a_metric_that_is_not_finite_in_some_resample_gets_no_interval():
    def score(rows):
        return {"ok": float(len(rows)), "bad": float("nan") if rows[0] == 0 else 1.0}

    interval, _ = bootstrap_interval(score, np.arange(5), 0)
    assert set(interval) == {"ok"}


@pytest.mark.slow
def test_the_report_config_is_trained_and_tested_on_the_same_split_beside_the_chosen_one(ray_instance, tmp_path):
    spec = spaces.get("steel_binary")
    opts = RunOptions(
        trials=2,
        max_epochs=3,
        searcher="random",
        scheduler="fifo",
        seed=3,
        results_dir=tmp_path,
        name="figures",
        dashboard=False,
        report_start=False,
        verify_top=0,
    )
    export = run_study(spec, opts, echo=lambda line: None).export
    test, uncertainty = export["test"], export["test_uncertainty"]
    assert uncertainty["split"] == "test" and uncertainty["split_size"] == 98 and uncertainty["level"] == 0.95
    for key, (low, high) in uncertainty["interval"].items():
        assert low <= test[key] <= high, key
    baseline = export["report_baseline"]
    assert "trained on this split" in baseline["note"]
    assert set(baseline["test"]) == set(test) and baseline["uncertainty"]["split_size"] == 98
    # The search trained three fold models per trial (the space's default); the baseline is the report's way, one
    # model on the single split: exactly what `run --config report` trains with the same seed.
    assert export["settings"]["fixed"]["cv_folds"] == 3 and "cv_folds=1" in baseline["note"]
    report_run = dataclasses.replace(opts, trials=1, config_file="report", results_dir=tmp_path / "report")
    report_export = run_study(spec, report_run, echo=lambda line: None).export
    assert report_export["settings"]["fixed"]["cv_folds"] == 1
    assert baseline["test"] == pytest.approx(report_export["test"])

    client, parents, children = mlflow_runs(tmp_path, spec.name)
    phases = sorted(c.data.tags[PHASE_TAG] for c in children)
    assert phases == ["baseline", "search", "search"]
    metrics = client.get_run(parents[0].info.run_id).data.metrics
    assert metrics["baseline_test_accuracy"] == pytest.approx(baseline["test"]["test_accuracy"])
    low, high = uncertainty["interval"]["test_accuracy"]
    assert metrics["test_accuracy_ci_low"] == pytest.approx(low)
    assert metrics["test_accuracy_ci_high"] == pytest.approx(high)

"""hms_b1 end to end on a real local Ray and MLflow store: pruning after the first fold-epoch, test and ensemble."""

from __future__ import annotations

import pytest

from tests.helpers.mlflow_runs import mlflow_runs
from trainables import metrics as M
from tuner import spaces
from tuner.datasets.hms_synthetic import generate_competition
from tuner.errors import TunerError
from tuner.schema import TRIAL_STATUS_TAG
from tuner.study import RunOptions, run_study

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def competition(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hms_study") / "competition"
    generate_competition(folder, n_patients=10, recordings_per_patient=(1, 2), windows_per_recording=(2, 3), seed=3)
    return folder


def test_optuna_with_asha_prunes_after_the_first_fold_epoch(ray_instance, competition, tmp_path, capsys):
    results = tmp_path / "results"
    spec = spaces.get("hms_b1")
    # One trial at a time: asynchronous ASHA's decisions depend on the order results arrive, and with two
    # concurrent trials that order (and so whether any of six trials is pruned) varied between runs.
    opts = RunOptions(
        trials=6,
        max_epochs=2,
        data=competition,
        results_dir=results,
        name="study",
        dashboard=False,
        settings=("image_scale=0.125", "ensemble_top_k=2"),
        max_concurrent=1,
        verify_top=0,
        report_baseline=False,
    )
    study = run_study(spec, opts)
    out = capsys.readouterr().out
    assert study.counts.get("pruned", 0) >= 1, study.counts
    assert study.counts.get("completed", 0) >= 2, study.counts

    client, parents, children = mlflow_runs(results, spec.name)
    assert len(parents) == 1 and len(children) == 6
    statuses = [c.data.tags[TRIAL_STATUS_TAG] for c in children]
    pruned = [c for c in children if c.data.tags[TRIAL_STATUS_TAG] == "pruned"]
    assert pruned, statuses
    for child in pruned:  # stopped after its first fold-epoch: one reported step
        assert [m.step for m in client.get_metric_history(child.info.run_id, M.CV_KL)] == [1]
    for child in children:
        if child.data.tags[TRIAL_STATUS_TAG] == "completed":
            assert [m.step for m in client.get_metric_history(child.info.run_id, M.VAL_KL)] == [1, 2]

    export = study.export
    assert export["settings"]["fixed"]["image_scale"] == 0.125
    assert set(export["test"]) == {"test_kl", "test_kl_prior"}
    ensemble = export["ensemble"]
    assert ensemble["ensemble_members"] == 2.0 and len(ensemble["trial_numbers"]) == 2
    for key in ("single_val_kl", "ensemble_val_kl", "single_test_kl", "ensemble_test_kl"):
        assert ensemble[key] > 0
    assert parents[0].data.metrics["ensemble_test_kl"] == pytest.approx(ensemble["ensemble_test_kl"])
    # the best trial is one that ran every fold: a pruned trial's partial score never wins
    best = next(c for c in children if c.info.run_id == export["mlflow"]["child_run_id"])
    assert best.data.tags[TRIAL_STATUS_TAG] == "completed"
    assert "ensemble of the top 2 trials" in out and "test_kl" in out


def test_report_variant_and_settings_are_checked_before_anything_runs(competition, tmp_path):
    spec = spaces.get("hms_b1")
    base = {"data": competition, "results_dir": tmp_path / "r", "dashboard": False}
    cases = [
        (RunOptions(config_file="report:nope", **base), "no report config 'nope'; accepted: report, report:baseline"),
        (RunOptions(settings=("folds=1",), **base), "folds=1: expected an integer >= 2"),
        (RunOptions(settings=("folds=2",), max_epochs=3, **base), "--max-epochs 3 is not a multiple of folds=2"),
        (RunOptions(settings=("image_scale=big",), **base), 'image_scale="big": expected a number'),
        (RunOptions(settings=("colour=red",), **base), "space hms_b1 has no such setting; accepted: architecture"),
        (RunOptions(settings=("pretrained_file=/no/such.pth",), **base), "pretrained_file=/no/such.pth: no such file"),
    ]
    for opts, message in cases:
        with pytest.raises(TunerError, match=message.replace("(", r"\(").replace(")", r"\)")):
            run_study(spec, opts)
    assert not (tmp_path / "r").exists()

"""Cross-validated objectives (trainables.cv): folds over the non-test rows, a trial's epoch row is the folds'
mean, the test split is scored by the fold models' mean prediction."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from trainables import mlp
from trainables.cv import CV_FOLDS, fold_indices, mean_row
from trainables.reporting import CHECKPOINT_FILE, EPOCH
from tuner import spaces
from tuner.datasets import load_dataset
from tuner.errors import TunerError
from tuner.settings import apply_settings
from tuner.trial import make_context


@pytest.fixture(scope="module")
def steel(tmp_path_factory):
    spec = spaces.get("steel_multiclass")
    return spec, load_dataset(spec.dataset, None, spec.data_options, tmp_path_factory.mktemp("cache"))


def test_folds_cover_the_non_test_rows_once_each_stratified_and_seeded(steel):
    _, data = steel
    folds = fold_indices(data, 5, seed=0)
    non_test = np.sort(np.concatenate([data.splits["train"], data.splits["val"]]))
    validated = np.concatenate([val for _, val in folds])
    assert len(folds) == 5 and np.array_equal(np.sort(validated), non_test)  # every non-test row validates once
    assert not set(validated) & set(data.splits["test"])
    for train, val in folds:
        assert not set(train) & set(val) and len(train) + len(val) == len(non_test)
        share = np.bincount(data.arrays["y"][val], minlength=6) / len(val)
        overall = np.bincount(data.arrays["y"][non_test], minlength=6) / len(non_test)
        assert np.abs(share - overall).max() < 0.02  # stratified by class
    reshuffled = fold_indices(data, 5, seed=1)
    assert not np.array_equal(reshuffled[0][1], folds[0][1])
    single = fold_indices(data, 1, seed=0)
    assert np.array_equal(single[0][0], data.splits["train"]) and np.array_equal(single[0][1], data.splits["val"])


def test_the_mean_row_averages_every_key_and_a_diverged_fold_diverges_the_mean():
    assert mean_row([{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}]) == {"a": 2.0, "b": 3.0}
    assert math.isnan(mean_row([{"a": 1.0}, {"a": float("nan")}])["a"])


def test_the_learning_rate_reported_is_one_a_fold_model_used_not_a_mean_of_rates():
    rows = [{"val_loss": 1.0, "lr": 1e-3}, {"val_loss": 3.0, "lr": 5e-4}, {"val_loss": 2.0, "lr": 5e-4}]
    assert mean_row(rows) == {"val_loss": 2.0, "lr": 1e-3}  # fold 0's rate; the mean (6.7e-4) no model used


def test_a_cross_validated_trial_reports_the_folds_mean_and_tests_their_mean_prediction(steel, one_torch_thread):
    spec, data = steel
    spec = dataclasses.replace(apply_settings(spec, (f"{CV_FOLDS}=3",)), max_epochs=2, grace_period=1)
    config = spec.active_config(spec.report_config)
    rows = []
    ctx = make_context(spec, seed=0, device="cpu", report=lambda row, ckpt: rows.append((row, ckpt)))
    mlp.train(config, data, ctx)
    assert [row[EPOCH] for row, _ in rows] == [1, 2]
    row, checkpoint = rows[-1]
    # the reported row is the mean of the three fold models' own validation rows
    folds = mlp.make_folds(config, data, ctx)
    assert len(folds) == 3
    per_fold = [fold.epoch(int(config["batch_size"])) for fold in folds]
    first = rows[0][0]
    for key in ("val_macro_accuracy", "val_loss", "train_loss"):
        assert first[key] == pytest.approx(np.mean([r[key] for r in per_fold]))
    test = mlp.evaluate(config, data, ctx, checkpoint / CHECKPOINT_FILE, split="test")
    assert 0.0 <= test["test_macro_accuracy"] <= 1.0 and math.isfinite(test["test_loss"])


def test_cv_folds_below_one_is_refused_before_anything_runs(steel):
    spec, _ = steel
    with pytest.raises(TunerError, match="cv_folds=0: expected 1 \\(the single split\\) or more folds"):
        apply_settings(spec, (f"{CV_FOLDS}=0",))


def test_a_cross_validated_trial_continued_from_its_checkpoint_trains_as_if_never_interrupted(steel, one_torch_thread):
    from trainables.reporting import RESUMED_FROM, STATE_FILE

    spec, data = steel
    spec = dataclasses.replace(apply_settings(spec, (f"{CV_FOLDS}=3",)), max_epochs=3, grace_period=1)
    config = spec.active_config(spec.report_config)

    def run(restore=None):
        rows = []
        ctx = make_context(
            spec,
            seed=0,
            device="cpu",
            report=lambda row, ckpt: rows.append((row, ckpt)),
            checkpoint_every_s=0.0,
            restore=restore,
        )
        mlp.train(config, data, ctx)
        return rows

    straight = run()
    first = straight[0][1]
    assert (first / STATE_FILE).is_file()
    continued = run(restore=first)
    assert [row[EPOCH] for row, _ in continued] == [2, 3]
    for (expected, _), (got, _) in zip(straight[1:], continued, strict=True):
        assert got[RESUMED_FROM] == 1
        for key in ("train_loss", "val_loss", "val_macro_accuracy"):
            assert got[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-7), key


def test_the_report_config_trains_the_reports_way_unless_a_setting_says_otherwise(tmp_path):
    from tuner.options import RunOptions
    from tuner.study.baseline import report_protocol
    from tuner.study.plan import resolve

    spec = spaces.get("steel_multiclass")
    assert spec.fixed[CV_FOLDS] == 3 and spec.report_fixed == {CV_FOLDS: 1}

    def folds(**options):
        return resolve(spec, RunOptions(results_dir=tmp_path, **options)).spec.fixed[CV_FOLDS]

    assert folds() == 3  # a search: the space's default
    assert folds(config_file="report") == 1  # the report's config: its single split
    assert folds(config_file="report", settings=(f"{CV_FOLDS}=2",)) == 2  # the user's --set wins
    # the baseline phase of a 3-fold search retrains the report's config on the single split; of a 1-fold one not
    assert report_protocol(resolve(spec, RunOptions(results_dir=tmp_path)).spec) == {CV_FOLDS: 1}
    assert report_protocol(resolve(spec, RunOptions(results_dir=tmp_path, settings=(f"{CV_FOLDS}=1",))).spec) == {}
    with pytest.raises(ValueError, match="report_fixed setting 'colour' is not a fixed setting"):
        dataclasses.replace(spec, report_fixed={"colour": 1})


def test_a_trial_overrides_a_fixed_setting_for_itself_and_its_weights_say_how_many_folds_they_hold(steel):
    from tuner.trial import FIXED_PREFIX, fixed_overrides

    spec, data = steel
    spec = dataclasses.replace(spec, max_epochs=1, grace_period=1)
    config = spec.active_config(spec.report_config)
    assert fixed_overrides({**config, f"{FIXED_PREFIX}{CV_FOLDS}": 1}) == {CV_FOLDS: 1}
    rows = []
    ctx = make_context(spec, seed=0, device="cpu", report=lambda row, ckpt: rows.append(ckpt), overrides={CV_FOLDS: 1})
    assert ctx.fixed[CV_FOLDS] == 1 and spec.fixed[CV_FOLDS] == 3
    mlp.train(config, data, ctx)
    weights = rows[-1] / CHECKPOINT_FILE
    # scored under the study's 3-fold context, one model's weights are still one model's
    three = make_context(spec, seed=0, device="cpu", report=lambda row, ckpt: None)
    assert mlp.evaluate(config, data, three, weights) == mlp.evaluate(config, data, ctx, weights)


def test_the_run_header_says_what_a_trial_is_scored_on():
    from tuner.study_text import objective

    steel = spaces.get("steel_multiclass")
    assert objective(steel).startswith("highest val_macro_accuracy, mean over 3 folds of the non-test rows")
    single = apply_settings(steel, ["cv_folds=1"])
    assert objective(single) == "highest val_macro_accuracy on the validation split"
    hms = objective(spaces.get("hms_b0"))
    assert hms == "lowest cv_kl, mean over the space's own 2 folds of the non-test rows"

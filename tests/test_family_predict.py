"""A served model predicts what its study scored: for each family with ``predict`` (trainables.family.ServingFamily),
the predictions on the test split, scored with the family's metric, equal ``evaluate``'s test figures.

One epoch (of every fold) on generated data, on one thread; the inference state goes through pickle as the logged
model's does. HMS trains ImageNet backbones (10-45 s an epoch on 2 CPUs): slow tier, as in test_spaces_contract.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, recall_score

from tests.helpers.smoke import OneEpoch
from trainables.family import ScoringFamily, ServingFamily
from tuner import spaces
from tuner.study.publish import EXAMPLE_ROWS


def _trained(one: OneEpoch):
    """(family, config, data, ctx, best weights) of a space after one epoch of every fold of its report config."""
    return one.family, one.config, one.data, one.ctx, one.weights


def _served(family, config, data, ctx, weights, inputs):
    assert isinstance(family, ServingFamily)
    state = pickle.loads(pickle.dumps(family.inference_state(config, data, ctx)))
    return family.predict(config, state, weights, inputs), state


@pytest.mark.parametrize("name", ["ecg_cnngru", "ecg_cnn2d"])
def test_ecg_predictions_score_the_test_figures(name, trained_one_epoch, one_torch_thread):
    family, config, data, ctx, weights = _trained(trained_one_epoch(name))
    test = data.split("test")
    predicted, state = _served(family, config, data, ctx, weights, test["x"])
    assert predicted.shape == test["y"].shape
    figures = family.evaluate(config, data, ctx, weights, "test")
    assert accuracy_score(test["y"], predicted) == figures["test_accuracy"]
    labels = np.arange(int(data.meta["n_classes"]))
    recall = recall_score(test["y"], predicted, labels=labels, average="macro", zero_division=0)
    assert recall == figures["test_macro_recall"]
    # the published example: the first rows of x, predicted as in the whole split
    example = test["x"][:EXAMPLE_ROWS]
    np.testing.assert_array_equal(family.predict(config, state, weights, example), predicted[:EXAMPLE_ROWS])


def _spread_heads(weights, out):
    """The weights with random output layers: one epoch on the small generated set predicts one class for every
    subject, which would let a wrong preprocessing or vote go unseen."""
    import torch

    saved = torch.load(weights, weights_only=True)
    generator = torch.Generator().manual_seed(0)
    for fold in saved["folds"]:
        fold["head.weight"] = torch.randn(fold["head.weight"].shape, generator=generator) * 10
    torch.save(saved, out)
    return out


def test_pain_predicts_each_subject_by_the_vote_evaluate_scores(trained_one_epoch, one_torch_thread, tmp_path):
    family, config, data, ctx, trained = _trained(trained_one_epoch("pain_rnn"))
    weights = _spread_heads(trained, tmp_path / "weights.pt")
    subjects = data.splits["test"]
    inputs = family.example_inputs(data, len(subjects))
    assert inputs.shape[0] == len(subjects)  # every test subject's whole series
    predicted, state = _served(family, config, data, ctx, weights, inputs)
    assert len(np.unique(predicted)) > 1
    y = data.arrays["y"][subjects]
    figures = family.evaluate(config, data, ctx, weights, "test")
    assert accuracy_score(y, predicted) == figures["test_accuracy"]
    labels = list(range(len(data.meta["class_names"])))
    assert f1_score(y, predicted, labels=labels, average="macro", zero_division=0) == figures["test_macro_f1"]
    example = family.example_inputs(data, EXAMPLE_ROWS)
    np.testing.assert_array_equal(family.predict(config, state, weights, example), predicted[:EXAMPLE_ROWS])


@pytest.mark.slow
def test_hms_predicts_the_fold_models_mean_evaluate_scores(trained_one_epoch, one_torch_thread):
    from trainables.hms import kl_divergence

    family, config, data, ctx, weights = _trained(trained_one_epoch("hms_b0"))
    rows = data.splits["test"]
    inputs = family.example_inputs(data, len(rows))
    predicted, _ = _served(family, config, data, ctx, weights, inputs)
    assert predicted.shape == (len(rows), 6)
    np.testing.assert_allclose(predicted.sum(axis=1), 1.0, rtol=1e-5)
    figures = family.evaluate(config, data, ctx, weights, "test")
    assert kl_divergence(data.arrays["y"][rows], predicted) == pytest.approx(figures["test_kl"], rel=1e-9)


@pytest.mark.parametrize("name", [name for name in spaces.names() if spaces.get(name).references])
def test_predictions_scored_by_score_predictions_are_evaluates_figures(name, trained_one_epoch, one_torch_thread):
    """The reference phase scores the chosen model from its predictions: the figures must be ``evaluate``'s, every
    one that needs no more than a prediction."""
    family, config, data, ctx, weights = _trained(trained_one_epoch(name))
    assert isinstance(family, ScoringFamily)
    test = data.splits["test"]
    predicted, _ = _served(family, config, data, ctx, weights, data.arrays["x"][test])
    scored = family.score_predictions(data, test, predicted, "test")
    figures = family.evaluate(config, data, ctx, weights, "test")
    assert spaces.get(name).metric.replace("val_", "test_") in scored
    assert scored == pytest.approx({key: figures[key] for key in scored}, rel=1e-6)


@pytest.mark.parametrize(
    "name",
    [
        "steel_binary",
        "steel_multiclass",
        "ecg_cnngru",
        "ecg_cnn2d",
        "usps_cnn",
        "house_mlp",
        pytest.param("hms_b0", marks=pytest.mark.slow),
    ],
)
def test_split_scorer_scores_a_resample_as_evaluate_does(name, trained_one_epoch, one_torch_thread):
    """The bootstrap intervals score resamples from one inference pass (trainables.family.ResamplingFamily): each
    resample's figures, the loss included, must be ``evaluate``'s on that resample."""
    import dataclasses

    from trainables.family import ResamplingFamily

    family, config, data, ctx, weights = _trained(trained_one_epoch(name))
    assert isinstance(family, ResamplingFamily)
    score = family.split_scorer(config, data, ctx, weights, "test")
    assert score(None) == pytest.approx(family.evaluate(config, data, ctx, weights, "test"), rel=1e-6)
    rng = np.random.default_rng(3)
    for _ in range(3):
        rows = rng.choice(data.splits["test"], size=len(data.splits["test"]), replace=True)
        resampled = dataclasses.replace(data, splits={**data.splits, "test": rows})
        expected = family.evaluate(config, resampled, ctx, weights, "test")
        assert set(score(rows)) == set(expected)
        assert score(rows) == pytest.approx(expected, rel=1e-5, abs=1e-7)

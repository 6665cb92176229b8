"""Contract tests over every registered space (tuner's own and any installed package's, by entry point): a new space
is held to the same assertions as the old ones."""

from __future__ import annotations

import pytest

from tests.helpers.smoke import load_shared, smoke_spec
from trainables.family import ModelFamily, load_family
from trainables.reporting import END_REASON, EPOCH, SCORE
from tuner import spaces
from tuner.datasets import dataset_names
from tuner.errors import TunerError
from tuner.search import grid_configs, tune_param_space
from tuner.spec import SEARCHERS
from tuner.trial import make_context

SPACES = spaces.names()
IMAGE_BACKBONE_FAMILIES = ("trainables.hms",)
"""ImageNet backbones (EfficientNet, ResNet34d) on spectrogram images: 10-45 s an epoch on 2 CPUs even at the
smoke size, so their training runs belong to the slow tier."""


def _training_runs(names) -> list:
    """The spaces to train, those of an image-backbone family marked slow."""
    return [
        pytest.param(name, marks=pytest.mark.slow) if spaces.get(name).trainable in IMAGE_BACKBONE_FAMILIES else name
        for name in names
    ]


def test_unknown_space_lists_the_valid_names():
    with pytest.raises(TunerError, match="unknown space 'nope'; valid spaces: " + ", ".join(SPACES)):
        spaces.get("nope")


@pytest.mark.parametrize("name", SPACES)
def test_spec_is_valid_and_complete(name):
    spec = spaces.get(name)
    assert spec.name == name
    if spaces.registered()[name].distribution.startswith("tuner "):  # a report space: shipped family and loader
        assert spec.dataset in dataset_names() and spec.trainable.startswith("trainables.")
        assert spec.report_config and spec.report_results
    family = load_family(spec.trainable)
    assert isinstance(family, ModelFamily) and callable(family.train) and callable(family.evaluate)
    if spec.report_config:
        spec.validate_config(spec.report_config)  # the report's own config is a point of the space
    assert spec.metric in spec.metrics


def a_config(spec):
    """The report's config, or (a space without one) the first grid point of every parameter."""
    return spec.active_config(spec.report_config or spec.complete_config({}))


def _sample(spec, searcher: str, n: int):
    """Ask each searcher for ``n`` configs, as Ray Tune would during a study."""
    space = tune_param_space(spec)
    if searcher == "grid":
        return grid_configs(spec)[:n]
    if searcher == "random":
        return [{k: d.sample() for k, d in space.items()} for _ in range(n)]
    if searcher == "hyperopt":
        from ray.tune.search.hyperopt import HyperOptSearch

        alg = HyperOptSearch(space=space, metric=SCORE, mode=spec.mode, random_state_seed=0)
    else:
        from ray.tune.search.optuna import OptunaSearch

        alg = OptunaSearch(space=space, metric=SCORE, mode=spec.mode, seed=0)
    return [alg.suggest(f"t{i}") for i in range(n)]


@pytest.mark.parametrize("searcher", SEARCHERS)
@pytest.mark.parametrize("name", SPACES)
def test_every_parameter_can_be_sampled_by_every_searcher(name, searcher):
    spec = spaces.get(name)
    configs = _sample(spec, searcher, 8)
    assert len(configs) == 8
    for config in configs:
        assert set(config) == set(spec.param_names)
        spec.validate_config(spec.active_config(config), source=f"{searcher} sample")


@pytest.mark.parametrize("name", _training_runs(SPACES))
def test_trainable_runs_one_epoch_and_reports_the_declared_metric(name, trained_one_epoch, one_torch_thread):
    # One epoch (of every fold, for spaces that cross-validate inside a trial), on one thread like a 1-CPU trial;
    # the same training serves the prediction tests (test_family_predict), which only read it.
    one = trained_one_epoch(name)
    spec, rows = one.spec, one.rows
    assert one.data.synthetic
    assert one.config == a_config(spec)
    steps = int(spec.fixed.get("folds", 1))
    assert [row[EPOCH] for row, _ in rows] == list(range(1, steps + 1))
    row, checkpoint = rows[-1]
    for metric in spec.metrics:
        assert isinstance(row[metric], float), metric
    assert row[SCORE] == row[spec.metric] and row[END_REASON] == "completed"
    assert checkpoint is not None and any(checkpoint.iterdir())


def _one_space_per_family() -> list[str]:
    """Continuing from a checkpoint is the model family's code: the cheapest space of each family stands for it
    (hms_b1 and hms_resnet34d differ from hms_b0 only in the backbone, ecg_cnngru from ecg_cnn2d in the model)."""
    chosen: dict[str, str] = {}
    for name in ("hms_b0", "ecg_cnn2d", *SPACES):
        chosen.setdefault(spaces.get(name).trainable, name)
    return sorted(chosen.values())


@pytest.mark.parametrize("name", _training_runs(_one_space_per_family()))
def test_a_trial_continued_from_a_checkpoint_trains_as_if_never_interrupted(name, data_cache, one_torch_thread):
    """A retried or resumed trial restarts from its latest checkpoint: from there on it must report exactly what
    the uninterrupted trial reported (same weights, optimizer, schedules, shuffling and dropout draws). Continued
    from the last checkpoint with a state and, for spaces with folds, from the end of the first fold."""
    import torch

    from trainables.reporting import CHECKPOINT_FILE, RESUMED_FROM, STATE_FILE

    spec = smoke_spec(spaces.get(name))
    data = load_shared(spec, data_cache)
    steps = 2 * int(spec.fixed.get("folds", 1))  # two epochs of every fold

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
        ctx = type(ctx)(**{**ctx.__dict__, "max_epochs": steps})
        load_family(spec.trainable).train(a_config(spec), data, ctx)
        return rows

    straight = run()
    assert [row[EPOCH] for row, _ in straight] == list(range(1, steps + 1))
    resumable = [(row[EPOCH], ckpt) for row, ckpt in straight if ckpt is not None and (ckpt / STATE_FILE).is_file()]
    # every epoch but the last checkpoints its state (checkpoint_every_s=0); the last ends the trial
    assert [epoch for epoch, _ in resumable] == list(range(1, steps))
    final_weights = torch.load(_latest(straight) / CHECKPOINT_FILE, weights_only=True)
    for epoch, checkpoint in {e: c for e, c in resumable if e in (2, steps - 1) and e < steps}.items():
        continued = run(restore=checkpoint)
        assert [row[EPOCH] for row, _ in continued] == list(range(epoch + 1, steps + 1))
        for (expected, _), (got, _) in zip(straight[epoch:], continued, strict=True):
            assert got[RESUMED_FROM] == epoch
            assert got[END_REASON] == expected[END_REASON]
            for key in (*spec.metrics, SCORE, "best_epoch"):
                assert got[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-7), (epoch, key)
        # the best weights: from the continued run's latest checkpoint, or those it was restored with
        weights = torch.load((_latest(continued) or checkpoint) / CHECKPOINT_FILE, weights_only=True)
        _assert_same_weights(weights, final_weights)


def _latest(rows):
    return next((ckpt for _, ckpt in reversed(rows) if ckpt is not None), None)


def _assert_same_weights(got, expected) -> None:
    import torch

    if isinstance(expected, dict):
        assert set(got) == set(expected)
        for key in expected:
            _assert_same_weights(got[key], expected[key])
    elif isinstance(expected, list | tuple):
        assert len(got) == len(expected)
        for a, b in zip(got, expected, strict=True):
            _assert_same_weights(a, b)
    elif isinstance(expected, torch.Tensor):
        assert torch.allclose(got.float(), expected.float(), rtol=1e-5, atol=1e-7, equal_nan=True)
    else:
        assert got == pytest.approx(expected)

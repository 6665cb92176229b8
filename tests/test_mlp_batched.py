"""The fold models of a cross-validated MLP trial trained as one computation (trainables.mlp_batched) train
exactly as they do one after the other (``batched_folds=false``), fold by fold, on generated steel data with the
same seeds: the same epoch rows, weights, BatchNorm statistics and optimizer states, bit for bit on a CPU (one
torch thread, as a trial with one CPU has). Exact equality is what makes the two ways interchangeable (a study
resumed or verified with the other way chooses the same config); the cases cover folds of equal and unequal size,
a skipped batch of one, dropout, and the binary head.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from trainables import mlp
from trainables.cv import BATCHED_FOLDS, CV_FOLDS, fold_indices
from trainables.reporting import TIMERS
from tuner import spaces
from tuner.datasets import load_dataset
from tuner.settings import apply_settings
from tuner.trial import make_context

EPOCHS = 4


def _trained(space: str, folds: int, batch_size: int, batched: bool, tmp_path_factory):
    spec = spaces.get(space)
    data = load_dataset(spec.dataset, None, spec.data_options, tmp_path_factory.mktemp("cache"))
    spec = dataclasses.replace(apply_settings(spec, (f"{CV_FOLDS}={folds}",)), max_epochs=EPOCHS, grace_period=1)
    config = {**spec.active_config(spec.report_config), "batch_size": batch_size}
    rows = []
    # the rows as reported, less the trial's own timers (wall-clock seconds, never equal between two runs)
    ctx = make_context(
        spec,
        seed=3,
        device="cpu",
        report=lambda row, ckpt: rows.append(_untimed(row)),
        overrides={BATCHED_FOLDS: batched},
    )
    per_fold = []
    original = mlp.mean_row  # the folds' own rows, before they are averaged

    def keep(fold_rows):
        per_fold.append(fold_rows)
        return original(fold_rows)

    mlp.mean_row = keep
    try:
        models = _train_keeping_models(config, data, ctx)
    finally:
        mlp.mean_row = original
    return data, ctx, rows, per_fold, models


def _untimed(row: dict) -> dict:
    return {key: value for key, value in row.items() if key not in TIMERS}


def _train_keeping_models(config, data, ctx):
    """Train, and return each fold's model and optimizer state as the training state saves them."""
    kept = {}
    original = mlp.TrainingState

    class Keeping(original):
        def __init__(self, **objects):
            super().__init__(**objects)
            kept.update(objects)

    mlp.TrainingState = Keeping
    try:
        mlp.train(config, data, ctx)
    finally:
        mlp.TrainingState = original
    return {name: obj.state_dict() for name, obj in kept.items() if not isinstance(obj, torch.Generator)}


@pytest.mark.parametrize(
    ("space", "folds", "batch_size"),
    [
        ("steel_multiclass", 3, 16),  # folds of equal size
        ("steel_multiclass", 4, 16),  # 807 and 808 training rows: the last batches differ in size
        ("steel_multiclass", 4, 269),  # 808 = 3 x 269 + 1: one fold skips its batch of one, the others do not
        ("steel_binary", 4, 32),  # the binary head (pos_weight loss)
    ],
)
def test_batched_folds_train_each_fold_as_it_trains_alone(space, folds, batch_size, tmp_path_factory, one_torch_thread):
    data, ctx, rows, per_fold, batched = _trained(space, folds, batch_size, True, tmp_path_factory)
    _, _, rows_seq, per_fold_seq, sequential = _trained(space, folds, batch_size, False, tmp_path_factory)
    sizes = {len(train) for train, _ in fold_indices(data, folds, ctx.seed)}
    assert (len(sizes) > 1) == (folds == 4)  # the ragged cases are ragged
    assert len(rows) == len(rows_seq) == EPOCHS
    assert per_fold == per_fold_seq and rows == rows_seq  # every fold's epoch rows, and their means
    assert batched.keys() == sequential.keys()
    for name, state in batched.items():  # each fold's model, optimizer and LR schedule
        _assert_same(state, sequential[name], name)


def _assert_same(got, expected, where: str) -> None:
    if isinstance(got, torch.Tensor):
        assert got.dtype == expected.dtype and torch.equal(got, expected), where
    elif isinstance(got, dict):
        assert got.keys() == expected.keys(), where
        for key in got:
            _assert_same(got[key], expected[key], f"{where}.{key}")
    elif isinstance(got, list | tuple):
        assert len(got) == len(expected), where
        for i, (a, b) in enumerate(zip(got, expected, strict=True)):
            _assert_same(a, b, f"{where}[{i}]")
    else:
        assert got == expected, where

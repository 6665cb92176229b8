"""benchmarks/final_model.py: the ways of training one config's final model, on generated steel data."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest

from tuner import spaces
from tuner.datasets import load_dataset

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "final_model.py"
_SPEC = importlib.util.spec_from_file_location("final_model", _PATH)
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


@pytest.mark.slow
def test_every_way_scores_the_same_test_rows_and_the_refit_follows_the_cv_runs_epochs(tmp_path):
    spec = dataclasses.replace(spaces.get("steel_binary"), max_epochs=4, grace_period=1)
    data = load_dataset(spec.dataset, None, dict(spec.data_options), tmp_path)
    config = spec.active_config(spec.report_config)
    figures, folds = bench.one_seed(spec, config, data, seed=0, k=3, metric="test_accuracy", keep=tmp_path)
    assert set(figures) == set(bench.WAYS)
    assert all(0.0 <= value <= 1.0 for value in figures.values())
    assert len(folds) == 3 and all(p.shape == (len(data.splits["test"]), 1) for p in folds)
    rows, _, ctx = bench.trained(spec, config, data, 0, 3, tmp_path)
    assert 1 <= rows[-1]["best_epoch"] <= len(rows) <= 4
    # the refit model is trained, not a copy: another epoch count changes its predictions
    one, _ = bench.refit(config, data, ctx, 1, [config["lr"]] * 4)
    four, _ = bench.refit(config, data, ctx, 4, [config["lr"]] * 4)
    assert not (one == four).all()

"""Spec -> searcher: grids respect conditional parameters; seeded choices repeat; schedulers are known."""

from __future__ import annotations

import dataclasses

import pytest

from benchmarks.sleep_space import sleep_spec
from tuner import spaces
from tuner.search import PruneLog, build_scheduler, build_search, grid_configs
from tuner.spec import Choice, Param, Uniform


def test_grid_expands_conditional_parameters_only_where_active():
    base = sleep_spec(grid=(0.1, 0.5))
    spec = dataclasses.replace(
        base,
        params=base.params
        + (
            Param("sched", Choice(("plateau", "none")), "schedule"),
            Param("factor", Uniform(0.1, 0.9), "factor", grid=(0.2, 0.5, 0.8), active_if=("sched", ("plateau",))),
        ),
    )
    grid = grid_configs(spec)
    assert len(grid) == 2 * (3 + 1)  # factor's 3 points exist only with the plateau schedule
    assert len({tuple(sorted(spec.active_config(c).items())) for c in grid}) == len(grid)


def test_report_spaces_have_grids_of_workable_size():
    for name in spaces.names():
        assert 1 < len(grid_configs(spaces.get(name))) <= 5000


def test_seeded_grid_subset_repeats_and_differs_across_seeds():
    spec = spaces.get("steel_binary")
    a = build_search(spec, "grid", 5, seed=3, max_concurrent=2, start_points=[])
    b = build_search(spec, "grid", 5, seed=3, max_concurrent=2, start_points=[])
    c = build_search(spec, "grid", 5, seed=4, max_concurrent=2, start_points=[])
    assert a.num_samples == 5 and "seeded subset of 5" in a.note
    assert a.search_alg._points_to_evaluate == b.search_alg._points_to_evaluate
    assert a.search_alg._points_to_evaluate != c.search_alg._points_to_evaluate


def test_small_grid_runs_whole_and_says_so():
    plan = build_search(sleep_spec(grid=(0.1, 0.5)), "grid", 10, seed=0, max_concurrent=None, start_points=[])
    assert plan.num_samples == 2 and "running all 2" in plan.note


@pytest.mark.parametrize("name", ["bohb", ""])
def test_unknown_searcher_or_scheduler_fails_listing_choices(name):
    with pytest.raises(ValueError, match="accepted: grid, random, hyperopt, optuna"):
        build_search(sleep_spec(), name, 1, 0, None, [])
    with pytest.raises(ValueError, match="accepted: asha, median, fifo"):
        build_scheduler(sleep_spec(), name, PruneLog())

"""The figures of ``benchmarks/search_efficiency.py``: best so far, time to target, medians over runs, and the
seed-by-seed ratios that show the spread behind the speedup."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "search_efficiency.py"
_SPEC = importlib.util.spec_from_file_location("search_efficiency", _PATH)
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


def test_best_so_far_and_time_to_target_follow_the_trials_as_they_end():
    timeline = [(2.0, 0.5), (5.0, 0.8), (9.0, 0.7)]
    curve = bench.best_so_far(timeline, np.array([1.0, 2.0, 6.0, 10.0]), "max")
    assert np.isnan(curve[0]) and list(curve[1:]) == [0.5, 0.8, 0.8]
    assert bench.time_to_target(timeline, 0.75, "max", budget=10) == 5.0
    assert bench.time_to_target(timeline, 0.9, "max", budget=10) is None
    assert bench.time_to_target([(2.0, 0.3), (4.0, 0.1)], 0.2, "min", budget=10) == 4.0


def test_the_median_curve_is_one_runs_value_and_a_run_without_a_score_counts_as_the_worst():
    curves = np.array([[np.nan, 0.6], [0.5, 0.7], [0.4, 0.9], [0.6, 0.8]])
    assert list(bench.quantile(curves, 50, "max")) == [0.4, 0.7]  # the worse of the middle two, NaN the worst
    assert list(bench.quantile(-curves, 50, "min")) == [-0.4, -0.7]


def test_paired_ratios_are_bounds_where_a_run_never_reached_the_target():
    slow = [[(30.0, 0.9)], [], [(10.0, 0.9)], []]
    fast = [[(10.0, 0.9)], [(20.0, 0.9)], [], []]
    assert bench.paired_ratios(slow, fast, 0.85, "max", budget=60) == "3.00 >=3.00 <=0.17 ?"


@pytest.mark.parametrize(
    "name, expected",
    [
        ("random_fifo", ("random", "fifo")),
        ("optuna_grouped_asha", ("optuna_grouped", "asha")),
        ("optuna_hyperband", ("optuna", "hyperband")),
    ],
)
def test_strategy_names_split_into_searcher_and_scheduler(name, expected):
    assert bench.parse_strategy(name) == expected
    with pytest.raises(ValueError, match="strategy 'grid_asha': expected SEARCHER_SCHEDULER"):
        bench.parse_strategy("grid_asha")


def test_saved_timelines_are_whole_json_with_no_partial_file_left(tmp_path):
    import json

    from tuner import spaces

    spec = spaces.get("steel_multiclass")
    path = tmp_path / "runs.json"
    path.write_text("older")
    runs = {"random_fifo": [[(1.0, 0.5), (2.0, 0.7)]], "optuna_asha": [[]]}
    bench.save_timelines(path, spec, 60.0, True, runs)
    saved = json.loads(path.read_text())
    assert saved["runs"]["random_fifo"] == [[[1.0, 0.5], [2.0, 0.7]]]
    assert (saved["space"], saved["budget"], saved["synthetic"]) == ("steel_multiclass", 60.0, True)
    assert [p.name for p in tmp_path.iterdir()] == ["runs.json"]


def test_a_benchmark_study_is_the_search_alone_with_the_strategys_searcher_and_scheduler(tmp_path):
    from types import SimpleNamespace

    args = SimpleNamespace(data=None, report_start=False, set=["cv_folds=1"])
    opts = bench.study_options(args, tmp_path, "optuna_grouped_asha", 7, "run-7", trials=5, time_budget=30.0)
    assert (opts.searcher, opts.scheduler, opts.seed, opts.name, opts.trials) == (
        "optuna_grouped",
        "asha",
        7,
        "run-7",
        5,
    )
    assert (opts.verify_top, opts.report_baseline, opts.dashboard, opts.time_budget) == (0, False, False, 30.0)
    assert opts.settings == ("cv_folds=1",)


def test_a_pruned_trials_partial_fold_mean_is_not_a_score_the_study_could_choose_by():
    from types import SimpleNamespace

    from tuner import spaces

    def trial(end, total, epochs, score):
        return SimpleNamespace(last={"timestamp": end, "time_total_s": total}, epochs=epochs, score=score)

    hms = spaces.get("hms_b0")  # score = the last epoch's mean over folds
    trials = [trial(110.0, 10.0, 1, 0.30), trial(130.0, 20.0, hms.max_epochs, 0.60), trial(150.0, 5.0, 2, None)]
    # time zero is the first trial's start, pruned or not; the pruned one's fold-1 figure does not count
    assert bench.comparable_scores(trials, hms) == [(30.0, 0.60)]
    steel = spaces.get("steel_multiclass")  # score = the best epoch's validation figure, whole at any epoch
    assert bench.comparable_scores(trials, steel) == [(10.0, 0.30), (30.0, 0.60)]

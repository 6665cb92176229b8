"""The searchers and schedulers beyond the defaults: Optuna's grouped TPE, GP and CMA-ES samplers and the
asynchronous Hyperband scheduler. Each proposes valid points of a conditional space and runs a real study."""

from __future__ import annotations

import dataclasses

import pytest

from benchmarks.sleep_space import sleep_spec
from trainables.reporting import SCORE
from tuner import spaces
from tuner.options import RunOptions
from tuner.search import PruneLog, build_scheduler, build_search, tune_param_space
from tuner.study import run_study

SAMPLERS = {"optuna_grouped": "TPESampler", "optuna_gp": "GPSampler", "optuna_cmaes": "CmaEsSampler"}
NEW_SEARCHERS = tuple(SAMPLERS)


def _sampler(plan):
    return plan.search_alg.searcher._sampler


@pytest.mark.parametrize("space", spaces.names())
@pytest.mark.parametrize("name", NEW_SEARCHERS)
def test_new_searchers_propose_valid_points_of_every_space_after_start_up(name, space):
    spec = spaces.get(space)  # most are conditional, e.g. steel's third width and plateau factor
    plan = build_search(spec, name, trials=8, seed=0, max_concurrent=1, start_points=[])
    alg = plan.search_alg
    alg.set_search_properties(SCORE, spec.mode, tune_param_space(spec))
    for i in range(4):  # past the 2 start-up trials: the model proposes
        config = alg.suggest(f"t{i}")
        spec.validate_config(spec.active_config(config), source=f"{name} proposal {i}")
        alg.on_trial_complete(f"t{i}", {SCORE: float(i % 3)})
    study = alg.searcher._ot_study
    assert len([t for t in study.trials if t.value is not None]) == 4
    assert type(study.sampler).__name__ == SAMPLERS[name]


def test_grouped_tpe_is_multivariate_and_cmaes_falls_back_to_tpe_for_categories():
    spec = spaces.get("steel_multiclass")
    grouped = _sampler(build_search(spec, "optuna_grouped", 8, 0, 1, []))
    assert grouped._multivariate and grouped._group
    cmaes = _sampler(build_search(spec, "optuna_cmaes", 8, 0, 1, []))
    assert type(cmaes._independent_sampler).__name__ == "TPESampler"


def test_hyperband_has_three_brackets_and_asha_one():
    spec = sleep_spec(max_epochs=9)
    assert len(build_scheduler(spec, "hyperband", PruneLog())._brackets) == 3
    assert len(build_scheduler(spec, "asha", PruneLog())._brackets) == 1


def test_bad_searcher_or_scheduler_on_the_command_line_is_one_line_listing_the_values(tmp_path, capfd):
    from tests.helpers.cli import run_main

    for flag, value, listed in (("--searcher", "optuna_tpe", "optuna_cmaes"), ("--scheduler", "bohb", "hyperband")):
        done = run_main("run", "steel_binary", flag, value, "--results-dir", str(tmp_path), cwd=tmp_path, capfd=capfd)
        assert done.returncode == 2
        assert done.stderr.startswith("error:") and len(done.stderr.strip().splitlines()) == 1
        assert value in done.stderr and listed in done.stderr
    assert not (tmp_path / "steel_binary").exists()


@pytest.mark.slow
@pytest.mark.parametrize(("searcher", "scheduler"), [(s, "fifo") for s in NEW_SEARCHERS] + [("random", "hyperband")])
def test_a_study_runs_with_each_new_searcher_and_scheduler(ray_instance, tmp_path, searcher, scheduler):
    spec = sleep_spec(max_epochs=3)
    opts = RunOptions(
        trials=4,
        searcher=searcher,
        scheduler=scheduler,
        seed=0,
        results_dir=tmp_path,
        name=searcher,
        dashboard=False,
        progress_every=0,
        verify_top=0,
        report_baseline=False,
    )
    study = run_study(dataclasses.replace(spec), opts, echo=lambda line: None)
    export = study.export
    assert export["search"]["searcher"] == searcher and export["search"]["scheduler"] == scheduler
    assert export["search"]["trials"] == 4 and sum(study.counts.values()) == 4
    assert 0.0 <= export["config"]["x"] <= 1.0 and export["metric"]["value"] is not None

"""--warm-start: earlier studies' trials become points of this space that the searcher learns from first."""

from __future__ import annotations

import json
import math
import re

import optuna
import pytest

from benchmarks.sleep_space import sleep_spec
from tests.helpers.cli import run_main
from tests.helpers.searcher_state import saved_optuna_study
from trainables.reporting import SCORE
from tuner.errors import TunerError
from tuner.internals.ray_tune import hyperopt_trials
from tuner.options import RunOptions
from tuner.run_files import PROGRESS_FILE, RUN_FILE
from tuner.search import WARM_TOP, build_search, tune_param_space
from tuner.spec import Choice, Param
from tuner.study import run_study
from tuner.warmstart import warm_points


def _earlier_run(results, space: str, name: str, trials: list[tuple[dict, float | None]], metric="val_score"):
    """A run folder as a study leaves it: its run record and progress file."""
    run_dir = results / space / name
    run_dir.mkdir(parents=True)
    (run_dir / RUN_FILE).write_text(json.dumps({"space": space, "status": "finished", "started": name}))
    rows = [
        {
            "trial": i + 1,
            "trial_id": f"t{i}",
            "status": "completed" if score is not None else "failed",
            "score": score,
            "epochs": 1,
            "config": config,
        }
        for i, (config, score) in enumerate(trials)
    ]
    (run_dir / PROGRESS_FILE).write_text(json.dumps({"metric": metric, "mode": "max", "trials": rows}))


def _two_param_spec():
    base = sleep_spec()
    return base.__class__(**{**base.__dict__, "params": (*base.params, Param("k", Choice((1, 2, 3)), "a choice"))})


def test_trials_become_points_of_this_space_missing_ones_take_the_grid_default_and_outside_ones_drop(tmp_path):
    _earlier_run(
        tmp_path, "sleep", "old", [({"x": 0.3}, 0.5), ({"x": 0.7}, 0.9), ({"x": 1.5}, 0.1), ({"x": 0.2}, None)]
    )
    lines = []
    points = warm_points(_two_param_spec(), ("old",), tmp_path, "optuna", lines.append)
    assert points == [({"x": 0.3, "k": 1}, 0.5), ({"x": 0.7, "k": 1}, 0.9)]  # k: its grid's first point
    assert lines == ["warm start: 2 earlier trial(s) from old; 1 dropped (a value outside this space's domains)"]


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("nosuch", "no run named 'nosuch' for space sleep"),
        ("nospace:old", "unknown space 'nospace'; valid spaces: "),
        ("steel_binary:other", "that run searched val_accuracy (max); accepted: runs that searched val_score (max)"),
        ("steel_binary:unrelated", "its parameters (lr) share none with sleep (x)"),
    ],
)
def test_refusals_name_the_reference_and_what_is_accepted(tmp_path, ref, message):
    _earlier_run(tmp_path, "sleep", "old", [({"x": 0.3}, 0.5)])
    _earlier_run(tmp_path, "steel_binary", "other", [({"lr": 0.01}, 0.8)], metric="val_accuracy")
    _earlier_run(tmp_path, "steel_binary", "unrelated", [({"lr": 0.01}, 0.8)])
    with pytest.raises(TunerError, match="^" + re.escape(f"--warm-start {ref}: {message}")):
        warm_points(sleep_spec(), (ref,), tmp_path, "optuna", lambda line: None)


def test_a_grid_cannot_be_warm_started(tmp_path):
    _earlier_run(tmp_path, "sleep", "old", [({"x": 0.3}, 0.5)])
    with pytest.raises(TunerError, match="a grid does not learn from earlier trials"):
        warm_points(sleep_spec(), ("old",), tmp_path, "grid", lambda line: None)


WARM = [({"x": 0.1}, 0.2), ({"x": 0.65}, 0.95), ({"x": 0.4}, 0.6), ({"x": 0.9}, 0.7)]


@pytest.mark.parametrize("searcher", ["optuna", "optuna_grouped", "optuna_gp", "optuna_cmaes"])
def test_optuna_studies_hold_the_warm_trials_with_their_scores_before_the_first_proposal(searcher):
    spec = sleep_spec()
    plan = build_search(spec, searcher, 20, 0, None, [], warm=WARM)
    alg = plan.search_alg
    alg.set_search_properties(SCORE, spec.mode, tune_param_space(spec))
    study = alg._ot_study
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert [(t.params, t.value) for t in complete] == WARM
    assert study.best_trial.params == {"x": 0.65}
    # the best earlier configs are evaluated again first (this study's seed), then the sampler proposes
    assert [alg.suggest(f"t{i}") for i in range(3)] == [{"x": 0.65}, {"x": 0.9}, {"x": 0.4}][:WARM_TOP]
    assert 0.0 <= alg.suggest("new")["x"] <= 1.0 and len(study.trials) == len(WARM) + WARM_TOP + 1
    assert "warm start: the best 3 of 4 earlier trial(s) first, learnt from all 4" in plan.note


def test_hyperopt_trials_hold_the_warm_trials_as_done_with_their_losses():
    spec = sleep_spec()
    alg = build_search(spec, "hyperopt", 20, 0, None, [{"x": 0.5}], warm=WARM).search_alg
    alg.set_search_properties(SCORE, spec.mode, tune_param_space(spec))
    done = [t for t in hyperopt_trials(alg).trials if t["state"] == 2]  # hyperopt.JOB_STATE_DONE
    assert [(t["misc"]["vals"]["x"], t["result"]["loss"]) for t in done] == [([c["x"]], -s) for c, s in WARM]
    assert alg.suggest("first") == {"x": 0.5}  # the start point still comes first, then the best earlier configs
    assert [alg.suggest(f"t{i}") for i in range(WARM_TOP)] == [{"x": 0.65}, {"x": 0.9}, {"x": 0.4}][:WARM_TOP]
    assert not math.isnan(alg.suggest("second")["x"])


def test_random_search_evaluates_the_best_earlier_configs_first():
    plan = build_search(sleep_spec(), "random", 10, 0, None, [{"x": 0.5}], warm=WARM)
    best = [{"x": 0.65}, {"x": 0.9}, {"x": 0.4}][:WARM_TOP]
    assert plan.search_alg._points_to_evaluate == [{"x": 0.5}, *best]


def test_unknown_reference_on_the_command_line_is_one_line_and_writes_no_run(tmp_path, capfd):
    done = run_main(
        "run", "steel_binary", "--warm-start", "nosuch", "--results-dir", str(tmp_path), cwd=tmp_path, capfd=capfd
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: --warm-start nosuch: no run") and len(done.stderr.splitlines()) == 1
    assert not (tmp_path / "steel_binary").exists()


@pytest.mark.slow
def test_a_warm_started_study_searches_from_the_earlier_study(ray_instance, tmp_path):
    spec = sleep_spec()
    base = {"seed": 0, "results_dir": tmp_path, "dashboard": False, "progress_every": 0, "verify_top": 0,
            "report_baseline": False}  # fmt: skip
    first = run_study(
        spec, RunOptions(trials=4, searcher="random", scheduler="fifo", name="first", **base), echo=lambda line: None
    )
    earlier = json.loads((first.run_dir / PROGRESS_FILE).read_text())["trials"]
    lines: list[str] = []
    second = run_study(
        spec,
        RunOptions(trials=2, searcher="optuna", scheduler="fifo", name="second", warm_start=("first",), **base),
        echo=lines.append,
    )
    assert "warm start: 4 earlier trial(s) from first" in lines
    assert "warm start: the best 3 of 4 earlier trial(s) first, learnt from all 4" in second.export["search"]["note"]
    assert second.export["search"]["trials"] == 2  # the earlier trials are the searcher's, not this study's
    # this study's two trials were the best two earlier configs, run again
    own = json.loads((second.run_dir / PROGRESS_FILE).read_text())["trials"]
    best = sorted(earlier, key=lambda t: t["score"], reverse=spec.mode == "max")[:2]
    assert sorted(t["config"]["x"] for t in own) == sorted(t["config"]["x"] for t in best)
    # the searcher state Ray Tune saved holds the earlier trials with their scores, and this study's own
    study = saved_optuna_study(second.run_dir)
    values = [t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(values) == 6 and all(values.count(t["score"]) >= 1 for t in earlier)

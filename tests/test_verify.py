"""The verify phase: the search's top configs trained again with fresh seeds, the best mean chosen."""

from __future__ import annotations

import json

import pytest

from benchmarks.sleep_space import sleep_spec
from tests.helpers.mlflow_runs import mlflow_runs
from tuner.errors import TunerError
from tuner.options import RunOptions
from tuner.schema import PHASE_TAG, TRIAL_SEED_TAG
from tuner.study import run_study, verify_study
from tuner.study.plan import resolve

# x = 0.5 is lucky with the study's seed 0 (+0.5): the search ranks it first; with fresh seeds x = 0.7 is better.
GRID = (0.5, 0.7, 0.6)


def lucky_study(tmp_path, **options):
    spec = sleep_spec(max_epochs=2, grid=GRID, lucky_x=0.5)
    opts = RunOptions(
        trials=3, searcher="grid", scheduler="fifo", results_dir=tmp_path, name="lucky", dashboard=False, **options
    )
    return spec, run_study(spec, opts)


@pytest.mark.slow
def test_the_config_with_the_best_mean_over_fresh_seeds_is_chosen_not_the_lucky_one(ray_instance, tmp_path):
    _, study = lucky_study(tmp_path, verify_top=2, verify_seeds=2)
    export = study.export
    assert export["config"] == {"x": 0.7}
    record = export["verification"]
    assert [c["config"] for c in record["candidates"]] == [{"x": 0.5}, {"x": 0.7}]  # the search's order
    for candidate in record["candidates"]:
        assert candidate["seeds"] == [1, 2] and len(candidate["scores"]) == 2
        assert None not in candidate["scores"] and candidate["mean"] == pytest.approx(sum(candidate["scores"]) / 2)
    lucky, chosen = record["candidates"]
    assert lucky["search_score"] > chosen["search_score"] and lucky["mean"] < chosen["mean"]
    assert record["chosen_trial_number"] == chosen["trial_number"] == export["trial_number"]
    assert export["metric"]["value"] == chosen["search_score"]

    client, parents, children = mlflow_runs(tmp_path, "sleep")
    verified = [c for c in children if c.data.tags.get(PHASE_TAG) == "verify"]
    searched = [c for c in children if c.data.tags.get(PHASE_TAG) == "search"]
    assert len(parents) == 1 and len(searched) == 3 and len(verified) == 4
    assert sorted(c.data.tags[TRIAL_SEED_TAG] for c in verified) == ["1", "1", "2", "2"]
    assert all(c.info.run_name.startswith("verify-") for c in verified)
    parent = client.get_run(parents[0].info.run_id)
    assert parent.data.metrics["verified_val_score_mean"] == pytest.approx(chosen["mean"])
    assert export["mlflow"]["child_run_id"] == next(c.info.run_id for c in searched if c.data.params["x"] == "0.7")


@pytest.mark.slow
def test_verify_command_re_verifies_a_finished_study_and_rewrites_its_export(ray_instance, tmp_path):
    spec, first = lucky_study(tmp_path, verify_top=0)
    assert first.export["config"] == {"x": 0.5} and first.export["verification"] is None

    again = verify_study(spec, "lucky", tmp_path, top=3, seeds=1, echo=lambda line: None)
    assert again.export["config"] == {"x": 0.7}
    assert [c["seeds"] for c in again.export["verification"]["candidates"]] == [[1], [1], [1]]
    saved = json.loads((first.run_dir / "best_config.json").read_text())
    assert saved["config"] == {"x": 0.7} and saved["search"]["verify_top"] == 3
    record = json.loads((first.run_dir / "run.json").read_text())
    assert record["status"] == "finished" and record["options"]["verify_top"] == 3
    _, parents, children = mlflow_runs(tmp_path, "sleep")
    assert len(parents) == 1
    assert sorted(c.data.tags.get(PHASE_TAG) for c in children) == ["search"] * 3 + ["verify"] * 3


def test_verify_options_are_checked():
    spec = sleep_spec()
    with pytest.raises(TunerError, match="--verify-top must be 0 or more, got -1"):
        resolve(spec, RunOptions(verify_top=-1))
    with pytest.raises(TunerError, match="--verify-seeds must be at least 1, got 0"):
        resolve(spec, RunOptions(verify_seeds=0))

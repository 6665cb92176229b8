"""The analysis of a finished study: importance on generated trials (unit), then a real study's analysis folder,
its MLflow artifacts and ``tuner analyze`` in a fresh process."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import numpy as np
import pytest

from tests.helpers.cli import run_main
from tests.helpers.mlflow_runs import mlflow_runs
from tuner import spaces
from tuner.analysis.importance import MIN_TRIALS, param_importance, ranking
from tuner.analysis.trials import StudyTrials, TrialRecord
from tuner.spec import Choice, LogUniform, Param, SpaceSpec, Uniform
from tuner.study import RunOptions, run_study
from tuner.study.analyze import ERROR_LOG, analyze

FIGURES = ("best_so_far.png", "parallel_coordinates.png", "learning_curves.png", "slices.png")


def _spec() -> SpaceSpec:
    return SpaceSpec(
        name="synthetic",
        report="none",
        summary="generated trials",
        dataset="",
        data_options={},
        trainable="benchmarks.sleep_family",
        model="none",
        metric="val_score",
        mode="max",
        metrics=("val_score",),
        max_epochs=3,
        params=(
            Param("lr", LogUniform(1e-4, 1e-1), "drives the score"),
            Param("noise", Uniform(0.0, 1.0), "does nothing"),
            Param("schedule", Choice(("plateau", "none")), "whether the factor exists"),
            Param("factor", Uniform(0.1, 0.9), "only with plateau", active_if=("schedule", ("plateau",))),
        ),
    )


def _trials(n: int, seed: int = 0) -> StudyTrials:
    """``n`` trials whose score is decided by lr (best at 1e-2), less by schedule and, where it exists, a little by
    factor; noise does nothing."""
    rng = np.random.default_rng(seed)
    records = []
    for number in range(1, n + 1):
        config = {"lr": float(10 ** rng.uniform(-4, -1)), "noise": float(rng.uniform()),
                  "schedule": str(rng.choice(["plateau", "none"]))}  # fmt: skip
        score = 1.0 - (np.log10(config["lr"]) + 2) ** 2
        if config["schedule"] == "plateau":
            config["factor"] = float(rng.uniform(0.1, 0.9))
            score -= 0.05 * abs(config["factor"] - 0.5)
        else:
            score -= 0.5
        records.append(TrialRecord(number, f"t{number}", "completed", float(score), 3, config))
    return StudyTrials("synthetic", "run", "val_score", "max", records)


def test_the_parameter_that_drives_the_score_ranks_first_with_both_evaluators():
    importance = param_importance(_spec(), _trials(40))
    assert importance["trials_used"] == 40
    for evaluator in ("fanova", "ped_anova"):
        assert ranking(importance, evaluator)[0][0] == "lr"
        values = dict(ranking(importance, evaluator))
        assert values["noise"] == min(values.values())  # it does nothing: last (PED-ANOVA may tie it at 0)
        assert set(importance["importance"][evaluator]) == {"lr", "noise", "schedule"}  # present in every trial
    assert ranking(importance)[0][1] > 0.5


def test_a_conditional_parameter_is_evaluated_on_the_trials_where_it_is_active():
    trials = _trials(40)
    active = sum("factor" in t.config for t in trials.trials)
    entry = param_importance(_spec(), trials)["conditional"]["factor"]
    assert entry["condition"] == "schedule in ['plateau']" and entry["trials"] == active
    assert 0 <= entry["fanova"] <= 1 and 0 <= entry["ped_anova"] <= 1
    assert "factor" in entry["evaluated_with"] and "schedule" not in entry["evaluated_with"]  # one value there


def test_too_few_trials_give_no_numbers_and_pruned_ones_do_not_count():
    trials = _trials(MIN_TRIALS + 2)
    for trial in trials.trials[:3]:
        trial.status = "pruned"
    importance = param_importance(_spec(), trials)
    assert importance["trials_used"] == MIN_TRIALS - 1 and importance["trials_left_out"] == 3
    assert "too few" in importance["note"] and "importance" not in importance
    assert importance["scored_at_epoch"] is None and "ended on their own" in importance["basis"]  # no curves


def _with_curves(trials: StudyTrials, pruned: int) -> StudyTrials:
    """Learning curves rising to each trial's score over 3 epochs; the first ``pruned`` trials stopped at epoch 1
    with a score that would, as a final score, rank them last."""
    for trial in trials.trials:
        trial.history = {1: trial.score - 0.2, 2: trial.score - 0.1, 3: trial.score}
    for trial in trials.trials[:pruned]:
        trial.status, trial.epochs, trial.history = "pruned", 1, {1: trial.history[1]}
        trial.score = trial.history[1]
    return trials


def test_importance_compares_every_trial_at_the_highest_epoch_all_reached():
    trials = _with_curves(_trials(30), pruned=10)
    importance = param_importance(_spec(), trials)
    assert importance["trials_used"] == 30 and importance["scored_at_epoch"] == 1  # pruned ones count
    assert "scored at epoch 1, the highest all of them reached" in importance["basis"]
    assert ranking(importance)[0][0] == "lr"
    full = _with_curves(_trials(30), pruned=0)  # nobody pruned: the final scores, as before
    assert param_importance(_spec(), full)["scored_at_epoch"] == 3


def test_the_figures_mark_the_chosen_trial_and_number_trials_as_the_study_does(tmp_path):
    from PIL import Image

    from tuner.analysis import plots
    from tuner.analysis.importance import compared_trials
    from tuner.analysis.page import write_page

    trials = _with_curves(_trials(14), pruned=4)
    for trial in trials.trials:
        trial.number += 100  # the colour bar must show these, not 0..13
    compared = compared_trials(_spec(), trials, chosen=min(trials.trials, key=lambda t: t.score).number)
    captured = {}
    real_save = plots._save
    plots._save = lambda fig, path: captured.setdefault(path.name, fig) and real_save(fig, path)
    try:
        parallel = plots.parallel_coordinates(_spec(), compared, ["lr", "noise", "schedule"], tmp_path / "p.png")
        slices = plots.slices(_spec(), compared, ["lr", "noise"], tmp_path / "s.png")
    finally:
        plots._save = real_save
    assert Image.open(parallel).size[0] > 0 and Image.open(slices).size[0] > 0
    ax = captured["p.png"].axes[0]
    assert ax.get_title() == "the best 10 of 14 trials by val_score at epoch 1, and the chosen one"
    assert f"chosen: trial {compared.chosen}" in [t.get_text() for t in ax.get_legend().get_texts()]
    ticks = [t.get_text() for axis in captured["p.png"].axes for t in axis.get_yticklabels()]
    plain = [t.replace("\u2212", "-") for t in ticks if t[:1].isdigit() or t[:1] in "-\u2212"]  # not 10^-3, names
    assert plain and all(t == f"{float(t):.3g}" for t in plain), plain  # 3 significant digits: off the next axis
    fig = captured["s.png"]
    bar = [axis for axis in fig.axes if axis.get_ylabel() == "trial"]
    assert len(bar) == 1
    shown = {bar[0].yaxis.get_major_formatter()(v, 0) for v in range(14)}
    assert shown == {str(t.number) for t in trials.trials}
    panels = [axis for axis in fig.axes if axis.get_xlabel() in ("lr", "noise")]
    assert [[t.get_text() for t in axis.get_legend().get_texts()] for axis in panels] == [
        [f"chosen: trial {compared.chosen}"]
    ] * 2  # the chosen trial ringed on each slice, and no legend entry of Optuna's

    chosen = {"trial_number": 113, "test": {"test_acc": 0.81}, "test_uncertainty": {
        "interval": {"test_acc": [0.78, 0.84]}, "level": 0.95, "split_size": 191}}  # fmt: skip
    page = write_page(tmp_path / "r.html", "t", "summary", {}, {}, {}, chosen).read_text()
    assert "chosen: trial 113" in page and "0.8100" in page and "[0.7800, 0.8400]" in page
    assert "95% bootstrap interval" in page and "191 rows" in page


@pytest.mark.slow
def test_a_study_writes_its_analysis_and_logs_it_to_the_parent_run(ray_instance, tmp_path, capfd):
    results = tmp_path / "results"
    opts = RunOptions(
        trials=6,
        max_epochs=3,
        seed=0,
        results_dir=results,
        name="study",
        dashboard=False,
        verify_top=0,
        report_baseline=False,
    )
    store_setting = os.environ.get("MLFLOW_TRACKING_URI")
    study = run_study(spaces.get("steel_multiclass"), opts)
    # logging the model set MLflow's store for the process a moment: the next study must not inherit it
    assert os.environ.get("MLFLOW_TRACKING_URI") == store_setting
    out = capfd.readouterr().out
    folder = study.run_dir / "analysis"
    assert f"analysis written to {folder}" in out and "most important (fANOVA | PED-ANOVA)" in out
    assert out.index("best config written to") < out.index("analysis of steel_multiclass")
    for name in (*FIGURES, "report.html", "importance.json", "summary.txt"):
        assert (folder / name).stat().st_size > 0, name
    page = (folder / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(FIGURES) and "GPU memory per trial" in page
    importance = json.loads((folder / "importance.json").read_text())
    fanova = importance["importance"]["fanova"]
    assert importance["trials_used"] >= MIN_TRIALS and abs(sum(fanova.values()) - 1) < 1e-3

    client, parents, _ = mlflow_runs(results, "steel_multiclass")
    parent = parents[0]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "analysis")}
    assert {f"analysis/{name}" for name in (*FIGURES, "importance.json", "report.html")} <= artifacts
    logged = {k[len("importance.") :]: v for k, v in parent.data.metrics.items() if k.startswith("importance.")}
    assert logged == pytest.approx(fanova)

    status = run_main("status", "steel_multiclass", "--results-dir", str(results), cwd=tmp_path, capfd=capfd)
    top = max(fanova, key=fanova.get)
    assert f"importance (fANOVA, {importance['trials_used']} trials): {top} " in status.stdout

    (folder / "importance.json").unlink()  # `tuner analyze` writes the folder again
    again = run_main("analyze", "steel_multiclass", "--results-dir", str(results), cwd=tmp_path, capfd=capfd)
    assert again.returncode == 0, again.stderr
    assert (folder / "importance.json").exists() and f"analysis written to {folder}" in again.stdout
    assert "MLflow: logged to the parent run" in again.stdout


def test_analyze_refuses_an_unknown_run_in_one_line(tmp_path, capfd):
    refused = run_main(
        "analyze", "steel_multiclass", "--name", "nope", "--results-dir", str(tmp_path), cwd=tmp_path, capfd=capfd
    )
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.startswith("error: ") and "'nope'" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_a_failing_analysis_is_one_line_and_the_study_goes_on(tmp_path):
    """The run folder has no progress file: the analysis fails; the phase says so in one line naming the log."""
    lines: list[str] = []
    logged: list[tuple] = []
    tracker = SimpleNamespace(parent_id=None, flush=lambda: None, log_to_parent=lambda *args: logged.append(args))
    plan = SimpleNamespace(
        fixed_config=None, spec=_spec(), run_dir=tmp_path, study_root=str(tmp_path), tracking_uri=None
    )
    study = SimpleNamespace(plan=plan, tracker=tracker, echo=lines.append)
    analyze(study, SimpleNamespace(ledger=SimpleNamespace(outcomes={"t1": object()})))
    assert len(lines) == 1 and lines[0].startswith("warning: the analysis failed")
    log = tmp_path / ERROR_LOG
    assert f"traceback in {log}" in lines[0] and "Traceback" in log.read_text()
    assert logged == [] and not (tmp_path / "analysis").exists()

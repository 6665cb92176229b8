"""What the answer is worth: untuned references on the same test split, and the chosen config's difference with
each by a paired bootstrap (``tuner.study.references``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import make_classification

from tests.helpers.cli import run_main
from tests.helpers.mlflow_runs import mlflow_runs
from trainables import mlp
from tuner import spaces
from tuner.datasets.base import LoadedData
from tuner.errors import TunerError
from tuner.options import RunOptions
from tuner.spec import Reference
from tuner.study import run_study
from tuner.study.references import (
    CHOSEN,
    REPORT_CONFIG,
    difference_metric,
    fit_reference,
    paired_differences,
    reference_metric,
)

FOREST = Reference("forest", "sklearn.ensemble.RandomForestClassifier", {"random_state": 0})
CONSTANT = Reference("constant", "sklearn.dummy.DummyClassifier", {"strategy": "most_frequent"})


def _data(n: int = 600) -> LoadedData:
    """A learnable three-class problem in the steel layout (the MLP family's metric code scores it)."""
    x, y = make_classification(n, n_features=12, n_informative=8, n_classes=3, class_sep=2.0, random_state=0)
    rows = np.random.default_rng(0).permutation(n)
    splits = {"train": np.sort(rows[: n // 2]), "val": np.sort(rows[n // 2 : 2 * n // 3]),
              "test": np.sort(rows[2 * n // 3 :])}  # fmt: skip
    meta = {"task": "multiclass", "class_names": ["a", "b", "c"], "n_features": 12}
    return LoadedData({"x": x.astype(np.float32), "y": y}, splits, meta, "generated", True, "0")


def _compare(data: LoadedData, sides: dict[str, np.ndarray]) -> dict:
    def score(rows, predicted):
        return mlp.score_predictions(data, rows, predicted, "test")

    return paired_differences(score, data.splits["test"], sides, "test_macro_accuracy", "max", seed=0)


def _crippled(data: LoadedData) -> np.ndarray:
    """A deliberately crippled family: right on a quarter of the test rows, a fixed wrong class on the rest."""
    y = data.arrays["y"][data.splits["test"]]
    return np.where(np.arange(len(y)) % 4 == 0, y, (y + 1) % 3)


def test_a_reference_clearly_better_than_a_crippled_family_puts_the_family_behind():
    data = _data()
    forest, record = fit_reference(FOREST, data, seed=0)
    assert "note" not in record and record["seconds"] < 30
    compared = _compare(data, {CHOSEN: _crippled(data), "forest": forest})
    diff = compared["differences"]["forest"]
    assert compared["figures"]["forest"]["test_macro_accuracy"] > 0.8
    assert diff["interval"][1] < 0 and diff["verdict"] == "behind"


def test_a_reference_clearly_worse_puts_the_family_ahead():
    data = _data()
    constant, _ = fit_reference(CONSTANT, data, seed=0)
    forest, _ = fit_reference(FOREST, data, seed=0)
    diff = _compare(data, {CHOSEN: forest, "constant": constant})["differences"]["constant"]
    assert diff["interval"][0] > 0 and diff["verdict"] == "ahead"


def test_the_same_model_on_both_sides_differs_by_exactly_zero_on_every_resample():
    data = _data()
    forest, _ = fit_reference(FOREST, data, seed=0)
    constant, _ = fit_reference(CONSTANT, data, seed=0)
    compared = _compare(data, {CHOSEN: forest, "itself": forest.copy(), "constant": constant})
    diff = compared["differences"]["itself"]
    assert diff["value"] == 0.0 and diff["interval"] == [0.0, 0.0]
    assert diff["verdict"] == f"not distinguishable on {len(data.splits['test'])} rows"
    # each side's interval comes from the same resamples: the copy's equals the chosen side's exactly
    assert compared["intervals"]["itself"] == compared["intervals"][CHOSEN]
    power = compared["power"]  # the zero-width pair tells nothing of the split's power: only the other one counts
    low, high = compared["differences"]["constant"]["interval"]
    assert power["half_width_min"] == power["half_width_max"] == pytest.approx((high - low) / 2)


def test_a_mode_min_metric_calls_a_lower_figure_ahead():
    from tuner.study.references import verdict

    assert verdict(-0.3, -0.1, "min", 50) == "ahead" and verdict(0.1, 0.3, "min", 50) == "behind"
    assert verdict(-0.1, 0.1, "max", 50) == "not distinguishable on 50 rows"


def test_a_reference_past_its_time_cap_is_left_out_and_said_so():
    slow = Reference("slow", "sklearn.ensemble.RandomForestClassifier", {"n_estimators": 3000, "random_state": 0})
    predicted, record = fit_reference(slow, _data(), seed=0, budget_s=0.05)
    assert predicted is None and record["note"] == "left out: still training after its 0.05 s cap"


def test_a_reference_that_fails_is_left_out_with_its_error():
    broken = Reference("broken", "sklearn.linear_model.LogisticRegression", {"no_such_argument": 1})
    predicted, record = fit_reference(broken, _data(), seed=0)
    assert predicted is None and "no_such_argument" in record["note"]


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        (Reference("Bad Name", "sklearn.svm.SVC"), "reference name 'Bad Name'"),
        (Reference("svc", "SVC"), "estimator 'SVC' is not a dotted class path"),
    ],
)
def test_a_badly_declared_reference_makes_the_space_invalid(reference, problem):
    import dataclasses

    with pytest.raises(ValueError, match=problem):
        dataclasses.replace(spaces.get("steel_binary"), references=(reference,))


def test_references_are_on_by_default_and_off_by_the_flag_or_the_keyword():
    assert RunOptions().references is True
    assert RunOptions.from_kwargs(references=False).references is False
    with pytest.raises(TunerError, match="references"):
        RunOptions.from_kwargs(references="maybe")


@pytest.mark.slow
def test_a_tiny_study_prints_and_records_its_references_and_the_paired_differences(ray_instance, tmp_path, capfd):
    spec = spaces.get("steel_binary")
    opts = RunOptions(
        trials=2,
        max_epochs=2,
        searcher="random",
        scheduler="fifo",
        seed=1,
        results_dir=tmp_path,
        name="refs",
        dashboard=False,
        report_start=False,
        verify_top=0,
    )
    printed: list[str] = []
    result = run_study(spec, opts, echo=printed.append)
    record = result.export["references"]
    on_disk = json.loads((result.run_dir / "best_config.json").read_text())["references"]
    assert on_disk == json.loads(json.dumps(record))
    assert record["metric"] == "test_accuracy" and record["split_size"] == 98
    assert set(record["models"]) == {r.name for r in spec.references}
    assert set(record["differences"]) == {REPORT_CONFIG, *record["models"]}
    # the chosen model's figures from its per-row predictions are the evaluate phase's (the same model, rows, code)
    assert record["chosen"] == pytest.approx({k: v for k, v in result.export["test"].items() if k != "test_loss"})
    for name, model in record["models"].items():
        low, high = model["interval"]["test_accuracy"]
        assert low <= model["test"]["test_accuracy"] <= high, name
    assert record["seconds"] < 60

    text = "\n".join(printed)
    assert "chosen - other in test_accuracy (paired 95% bootstrap" in text
    for name, diff in record["differences"].items():
        assert f"{name:<24} {diff['value']:+.4f}" in text and diff["verdict"] in text

    client, parents, _ = mlflow_runs(tmp_path, spec.name)
    metrics = client.get_run(parents[0].info.run_id).data.metrics
    forest = record["models"]["random_forest"]["test"]["test_accuracy"]
    assert metrics[reference_metric("random_forest", "test_accuracy")] == pytest.approx(forest)
    diff = record["differences"]["random_forest"]
    assert metrics[difference_metric("random_forest", "test_accuracy")] == pytest.approx(diff["value"])
    assert metrics[difference_metric("random_forest", "test_accuracy") + "_ci_low"] == pytest.approx(
        diff["interval"][0]
    )

    status = run_main(
        "status", "steel_binary", "--name", "refs", "--results-dir", str(tmp_path), cwd=tmp_path, capfd=capfd
    )
    assert status.returncode == 0 and "chosen - other in test_accuracy" in status.stdout, status.stderr
    compared = run_main(
        "compare",
        "steel_binary:refs",
        "steel_binary",
        "--results-dir",
        str(tmp_path),
        "--out",
        str(tmp_path / "compare.png"),
        cwd=tmp_path,
        capfd=capfd,
    )
    assert compared.returncode == 0, compared.stderr
    low, high = diff["interval"]
    assert f"{diff['value']:+.3f} [{low:+.3f}, {high:+.3f}] {diff['verdict']}" in compared.stdout


@pytest.mark.slow
def test_no_references_skips_the_phase_with_one_line(ray_instance, tmp_path):
    spec = spaces.get("steel_binary")
    opts = RunOptions(
        trials=1,
        max_epochs=1,
        searcher="random",
        scheduler="fifo",
        results_dir=tmp_path,
        dashboard=False,
        verify_top=0,
        report_baseline=False,
        references=False,
    )
    printed: list[str] = []
    export = run_study(spec, opts, echo=printed.append).export
    assert export["references"] == {"note": "skipped (--no-references)", "seconds": pytest.approx(0, abs=0.5)}
    assert printed.count("references: skipped (--no-references)") == 1


def test_the_printed_differences_say_the_verdict_and_the_power_of_a_small_split():
    from tuner.study_text import print_references

    capped = "left out: still training after its 30 s cap"
    record = {"metric": "test_accuracy", "mode": "max", "split_size": 98, "level": 0.95, "resamples": 200,
              "models": {"forest": {"estimator": "e", "seconds": 1.0, "test": {}},
                         "slow": {"estimator": "e", "seconds": 30.0, "note": capped}},
              "differences": {"forest": {"value": -0.05, "interval": [-0.12, 0.02],
                                         "verdict": "not distinguishable on 98 rows"}},
              "power": {"half_width_min": 0.07, "half_width_max": 0.07, "split_size": 98, "small": True}}  # fmt: skip
    lines: list[str] = []
    print_references(lines.append, record)
    assert lines == [
        f"  reference slow: {capped}",
        "  chosen - other in test_accuracy (paired 95% bootstrap, the same 200 resamples of the 98 test rows for "
        "both):",
        "    forest                   -0.0500 [-0.1200, +0.0200]  not distinguishable on 98 rows",
        "  power: on 98 test rows a difference in test_accuracy smaller than about 0.0700-0.0700 (the paired "
        "intervals' half-widths) cannot be told apart at 95%",
    ]
    lines.clear()
    print_references(lines.append, {"note": "none declared for the space s", "seconds": 0.0})
    assert lines == ["  references: none declared for the space s"]

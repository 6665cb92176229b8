"""Unit tests of the spec types: validation of spaces and of user-given configs."""

from __future__ import annotations

import pytest

from tuner.errors import TunerError
from tuner.spec import Choice, IntUniform, LogUniform, Param, SpaceSpec, Uniform


def spec(**overrides) -> SpaceSpec:
    fields = dict(
        name="toy",
        report="r",
        summary="s",
        dataset="",
        data_options={},
        trainable="trainables.mlp",
        model="m",
        metric="val_score",
        mode="max",
        metrics=("val_score", "val_loss"),
        max_epochs=3,
        params=(
            Param("lr", LogUniform(1e-4, 1e-1), "lr"),
            Param("sched", Choice(("plateau", "none")), "schedule"),
            Param("factor", Uniform(0.1, 0.9), "factor", active_if=("sched", ("plateau",))),
            Param("layers", IntUniform(1, 4), "layers"),
        ),
        report_config={"lr": 1e-3, "sched": "none", "layers": 2},
    )
    fields.update(overrides)
    return SpaceSpec(**fields)


def test_conditional_parameter_is_dropped_when_its_condition_fails():
    s = spec()
    assert s.active_config({"lr": 1e-3, "sched": "none", "factor": 0.5, "layers": 2}) == {
        "lr": 1e-3,
        "sched": "none",
        "layers": 2,
    }
    assert "factor" in s.active_config({"lr": 1e-3, "sched": "plateau", "factor": 0.5, "layers": 2})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"lr": 1e-3, "sched": "none", "layers": 2, "lrr": 1}, "unknown parameter(s) lrr"),
        ({"lr": 1e-3, "sched": "plateau", "layers": 2}, "parameter factor is missing"),
        ({"lr": 5.0, "sched": "none", "layers": 2}, "lr=5.0 is outside its domain loguniform"),
        ({"lr": 1e-3, "sched": "cosine", "layers": 2}, "sched='cosine' is outside its domain"),
        ({"lr": 1e-3, "sched": "none", "layers": 2.5}, "layers=2.5 is outside its domain int[1, 4]"),
    ],
)
def test_bad_configs_are_refused_naming_the_value(config, message):
    with pytest.raises(TunerError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        spec().validate_config(config)


def test_a_report_config_outside_the_space_makes_the_spec_invalid():
    with pytest.raises(ValueError, match="report_config: lr=0.5"):
        spec(report_config={"lr": 0.5, "sched": "none", "layers": 2})


def test_metric_must_be_reported_and_searcher_known():
    with pytest.raises(ValueError, match="metric 'val_acc' is not among"):
        spec(metric="val_acc")
    with pytest.raises(ValueError, match="default_searcher 'bohb'"):
        spec(default_searcher="bohb")


def test_complete_config_fills_inactive_parameters_with_valid_values():
    full = spec().complete_config({"lr": 1e-3, "sched": "none", "layers": 2})
    assert set(full) == {"lr", "sched", "factor", "layers"}
    assert Uniform(0.1, 0.9).contains(full["factor"])


def test_report_variants_are_points_of_the_space_with_their_own_figures():
    import dataclasses

    from tuner import spaces
    from tuner.options import RunOptions
    from tuner.study.plan import resolve

    def reference(spec, options):
        return resolve(spec, options).reference()

    spec = spaces.get("pain_rnn")
    rnn = reference(spec, RunOptions(config_file="report:rnn"))
    assert rnn["name"] == "rnn" and rnn["results"] == {"val_macro_f1": 0.9363, "test_macro_f1": 0.9558}
    assert rnn["config"]["rnn_type"] == "RNN"
    assert reference(spec, RunOptions(config_file="report"))["results"] == spec.report_results
    assert reference(spec, RunOptions())["name"] == "best"
    with pytest.raises(ValueError, match="report_variant_results names 'gru', which is not among report_variants"):
        dataclasses.replace(spec, report_variant_results={"gru": {"val_macro_f1": 0.9}})
    with pytest.raises(ValueError, match=r"report_variants\['bad'\]: unknown parameter\(s\) colour"):
        dataclasses.replace(spec, report_variants={"bad": {**spec.report_config, "colour": 1}})

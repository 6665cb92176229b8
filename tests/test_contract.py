"""The public contract (``docs/contract.md``) pinned: a field or name added, renamed or removed fails here until the
page says so too. A change to these is a breaking change for every space of a user's own."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import tuner
from tests.helpers.cli import PROJECT_ROOT

PAGE = (PROJECT_ROOT / "docs" / "contract.md").read_text()

FIELDS = {
    "SpaceSpec": ("name", "report", "summary", "dataset", "data_options", "trainable", "model", "metric", "mode",
                  "metrics", "max_epochs", "params", "fixed", "early_stopping", "grace_period", "score",
                  "default_searcher", "default_scheduler", "resources", "report_config", "report_variants",
                  "report_results", "report_variant_results", "report_fixed", "references", "smoke", "notes"),
    "Reference": ("name", "estimator", "params", "scaled"),
    "Param": ("name", "domain", "doc", "grid", "active_if"),
    "LogUniform": ("low", "high"),
    "Uniform": ("low", "high"),
    "IntUniform": ("low", "high"),
    "Choice": ("values",),
    "EarlyStopping": ("monitor", "mode", "patience", "min_delta"),
    "Resources": ("cpus", "gpus"),
    "LoadedData": ("arrays", "splits", "meta", "source", "synthetic", "fingerprint", "summary", "extra"),
    "TrialContext": ("metric", "mode", "max_epochs", "fixed", "seed", "report", "device", "early_stopping_monitor",
                     "early_stopping_mode", "early_stopping_patience", "early_stopping_min_delta",
                     "score_last_epoch", "checkpoint_every_s", "restore", "extra"),
}  # fmt: skip
PUBLIC = ("run", "resume", "load", "Study", "TunerError", "SpaceSpec", "Param", "LogUniform", "Uniform", "IntUniform",
          "Choice", "EarlyStopping", "Resources", "LoadedData", "TrialContext", "EpochReporter", "ModelFamily",
          "ServingFamily", "EnsemblingFamily", "Reference", "ScoringFamily", "ResamplingFamily")  # fmt: skip


@pytest.mark.parametrize("name", FIELDS)
def test_the_fields_of_the_contract_are_the_documented_ones(name):
    fields = tuple(f.name for f in dataclasses.fields(getattr(tuner, name)))
    assert fields == FIELDS[name], f"tuner.{name} changed: update docs/contract.md and this pin, on purpose"
    missing = [f for f in fields if f"`{f}`" not in PAGE]
    assert not missing, f"docs/contract.md does not describe {name}.{', '.join(missing)}"


def test_the_names_tuner_exports_are_the_documented_ones():
    assert set(tuner.__all__) - {"PROCESS_START"} == set(PUBLIC)
    for name in PUBLIC:
        assert getattr(tuner, name) is not None
        assert name in PAGE, f"docs/contract.md does not name tuner.{name}"


def test_the_study_properties_are_the_documented_ones():
    documented = ("space", "name", "run_dir", "status", "record", "export", "best_config", "metric", "test", "trials",
                  "mlflow", "model_uri")  # fmt: skip
    props = {n for n, v in vars(tuner.Study).items() if isinstance(v, property)} | {"run_dir"}
    assert props == set(documented)
    assert all(f"`{p}`" in PAGE for p in documented)


def test_the_worked_example_of_the_page_is_the_tuner_new_project():
    template = Path(tuner.__file__).parent / "templates" / "project"
    assert {p.name for p in template.iterdir()} >= {"space.py", "family.py", "data.py", "test_space.py"}
    assert "tuner/templates/project/" in PAGE

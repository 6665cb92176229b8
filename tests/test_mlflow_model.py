"""What a study leaves in MLflow as its users see it in the UI: the experiment's kind, the data as a dataset input,
the chosen model as an MLflow model that predicts what the study's test figures were computed from, its registered
version with ``--register``, and a terminal without Ray's start-up notice.

Real parts: the session's local Ray, a real SQLite store, generated data.
"""

from __future__ import annotations

import json

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from sklearn.metrics import balanced_accuracy_score

from tests.helpers.cli import run_cli, run_main
from tests.helpers.mlflow_runs import mlflow_runs
from tuner import spaces
from tuner.cluster import TOKEN_AUTH_NOTICE
from tuner.datasets import load_dataset
from tuner.options import RunOptions
from tuner.schema import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG
from tuner.study import run_study
from tuner.tracking import default_tracking_uri


@pytest.fixture
def tracking_uri_of(tmp_path):
    """``models:/`` URIs resolve against the process's tracking URI: the study's store, put back afterwards."""
    from tuner.internals.mlflow_store import process_tracking_uri  # restores the setting exactly

    uri = default_tracking_uri(tmp_path)
    with process_tracking_uri(uri):
        yield uri


@pytest.mark.slow
def test_the_logged_model_predicts_the_exported_test_figure(ray_instance, tmp_path, tracking_uri_of, one_torch_thread):
    """Two fold models (cv_folds=2) are one MLflow model: their mean prediction, as the study scored the test split."""
    spec = spaces.get("steel_multiclass")
    opts = RunOptions(
        trials=2,
        max_epochs=2,
        results_dir=tmp_path,
        name="served",
        dashboard=False,
        verify_top=0,
        report_baseline=False,
        settings=("cv_folds=2",),
        register="steel-faults",
    )
    study = run_study(spec, opts)
    exported = json.loads((study.run_dir / "best_config.json").read_text())
    model = exported["model"]
    assert model["uri"].startswith("models:/") and model["registered"]["name"] == "steel-faults"

    data = load_dataset(spec.dataset, None, spec.data_options, tmp_path / ".data")  # the study's generated file
    test = data.split("test")
    predictions = mlflow.pyfunc.load_model(model["uri"]).predict(test["x"])
    assert balanced_accuracy_score(test["y"], predictions) == pytest.approx(exported["test"]["test_macro_accuracy"])

    client, parents, children = mlflow_runs(tmp_path, spec.name)
    assert client.get_experiment_by_name(spec.name).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    assert [o.model_id for o in parents[0].outputs.model_outputs] == [model["model_id"]], "the Models column"
    version = client.get_model_version("steel-faults", str(model["registered"]["version"]))
    assert version.source == model["uri"] and version.run_id == parents[0].info.run_id
    for run in parents + children:  # the Dataset column: the fingerprint, the generated file, flagged synthetic
        (used,) = run.inputs.dataset_inputs
        assert used.dataset.digest == exported["data"]["fingerprint"] and used.dataset.name == "steel (synthetic)"
        assert json.loads(used.dataset.source)["uri"] == exported["data"]["source"]
        assert {t.key: t.value for t in used.tags}["tuner.synthetic"] == "true"


@pytest.mark.slow
def test_cli_run_registers_the_model_and_prints_no_ray_start_up_notice(tmp_path):
    results = tmp_path / "results"
    common = ("run", "steel_binary", "--trials", "1", "--max-epochs", "1", "--no-dashboard", "--num-cpus", "1",
              "--verify-top", "0", "--no-report-baseline", "--progress-every", "0", "--results-dir", str(results),
              "--register", "steel-binary")  # fmt: skip
    first = run_cli(*common, "--name", "first", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert TOKEN_AUTH_NOTICE not in first.stdout + first.stderr
    assert "registered as steel-binary version 1" in first.stdout
    second = run_cli(*common, "--name", "second", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "registered as steel-binary version 2" in second.stdout

    client = MlflowClient(default_tracking_uri(results))
    versions = sorted(int(v.version) for v in client.search_model_versions("name='steel-binary'"))
    assert versions == [1, 2]
    exported = json.loads((results / "steel_binary" / "second" / "best_config.json").read_text())
    assert exported["model"]["registered"] == {"name": "steel-binary", "version": 2, "uri": "models:/steel-binary/2"}


def test_a_bad_registered_model_name_is_a_one_line_error(tmp_path, capfd):
    results = tmp_path / "r"
    proc = run_main(
        "run", "steel_binary", "--register", "team/steel", "--results-dir", str(results), cwd=tmp_path, capfd=capfd
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: --register 'team/steel': use letters, digits, '_', '.', '-' (at most 100, no '/' or ':')"
    ]
    assert not results.exists()


@pytest.mark.parametrize("verbose", [False, True])
def test_ray_token_auth_notice_shows_only_with_verbose(verbose):
    """The notice is filtered at the logger Ray writes it with; Ray's other warnings there still pass."""
    import logging

    from tuner.cluster import TOKEN_AUTH_LOGGER, _quiet_start

    logger, seen = logging.getLogger(TOKEN_AUTH_LOGGER), []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger.addHandler(handler)
    try:
        _quiet_start(verbose)
        logger.warning(f"{TOKEN_AUTH_NOTICE}. Set RAY_AUTH_MODE=disabled to opt out.")
        logger.warning("Token authentication is disabled for this Ray cluster.")
    finally:
        logger.removeHandler(handler)
        _quiet_start(False)
    shown = [TOKEN_AUTH_NOTICE in message for message in seen]
    assert shown == ([True, False] if verbose else [False])


def test_sync_records_where_a_spooled_model_went_in_the_export_and_the_parents_copy(tmp_path):
    from tuner.study.publish import record_synced_model

    class Tracker:  # the part of StudyTracker the function uses, after a replayed model write
        model = {"uri": "models:/m-1", "registered": None}
        logged: list[str] = []

        def log_file_to_parent(self, path: str) -> None:
            self.logged.append(path)

    export = tmp_path / "best_config.json"
    export.write_text(json.dumps({"space": "s", "model": {"uri": None, "path": "/r/model", "note": "waiting"}}))
    tracker = Tracker()
    assert record_synced_model(tmp_path, tracker)
    assert json.loads(export.read_text())["model"] == {"uri": "models:/m-1", "registered": None, "path": "/r/model"}
    assert tracker.logged == [str(export)]
    assert not record_synced_model(tmp_path, tracker)  # recorded already: nothing rewritten, nothing logged again
    tracker.model = None
    assert not record_synced_model(tmp_path, tracker) and tracker.logged == [str(export)]

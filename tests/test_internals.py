"""Every function of ``tuner.internals`` against the installed Ray, Ray Tune and MLflow: the first thing to run
after an upgrade. A failure names the function and the assumption about the library that broke."""

from __future__ import annotations

import importlib
import inspect
import os
import pickle
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from tests.helpers.cli import PROJECT_ROOT
from tuner import internals
from tuner.errors import TunerError
from tuner.internals import mlflow_store, ray_core, ray_tune, tune_files

INSTALLED = f"ray {version('ray')}, mlflow {version('mlflow')}"


def broke(function: str, assumption: str) -> str:
    return f"tuner.internals.{function}: {assumption} no longer holds ({INSTALLED})"


# --- versions ---


def test_the_installed_versions_are_supported():
    assert internals.unsupported_versions() == [], broke("SUPPORTED", "the installed versions are in range")


def test_pyproject_requires_the_supported_range():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    required = {Requirement(r).name: Requirement(r).specifier for r in project["dependencies"]}
    for name, accepted in internals.SUPPORTED.items():
        assert required[name] == SpecifierSet(accepted), (
            f"pyproject.toml requires {name}{required[name]}, tuner.internals.SUPPORTED says {name}{accepted}"
        )


def test_an_unsupported_version_is_refused_in_one_line_before_a_study(monkeypatch, capsys, tmp_path):
    from tuner.cli import main

    monkeypatch.setitem(internals.SUPPORTED, "ray", ">=99")
    with pytest.raises(TunerError, match=rf"^ray {version('ray')} is installed, tuner supports ray>=99: install"):
        internals.check_versions()
    status = main(["run", "steel_binary", "--trials", "1", "--results-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and f"ray {version('ray')} is installed" in err, err
    assert not list(tmp_path.iterdir())  # refused before the study made anything


# --- Ray core ---


def test_token_auth_logger_is_the_logger_of_the_notice():
    module = importlib.import_module(ray_core.TOKEN_AUTH_LOGGER)
    source = inspect.getsource(module)
    assert "getLogger(__name__)" in source and "Token authentication is enabled for this Ray cluster" in source, broke(
        "ray_core.token_auth_logger", f"the notice is logged by {ray_core.TOKEN_AUTH_LOGGER}"
    )
    assert ray_core.token_auth_logger().name == module.__name__


def test_preload_modules_is_an_argument_of_ray_init():
    import ray

    (name,) = ray_core.preload_modules(["json"])
    source = inspect.getsource(ray.init)
    assert name in source and "preload_python_modules" in ray_core.preload_modules(["json"])[name], broke(
        "ray_core.preload_modules", f"ray.init takes {name}"
    )


@pytest.mark.slow
def test_preloaded_modules_are_imported_by_workers_before_their_first_task(ray_instance):
    import ray

    @ray.remote
    def imported() -> bool:
        return "tuner.trial" in sys.modules  # the task itself imports nothing of tuner

    assert ray.get(imported.remote()), broke("ray_core.preload_modules", "workers import preload_python_modules")


@pytest.mark.slow
def test_dashboard_url_reads_the_connected_node(ray_instance):
    try:
        url = ray_core.dashboard_url()
    except (ImportError, AttributeError, KeyError) as exc:
        pytest.fail(broke("ray_core.dashboard_url", f"global_worker.node.address_info['webui_url'] ({exc!r})"))
    assert url is None  # the shared instance runs no dashboard


# --- Ray Tune's objects ---


def test_a_local_start_that_timed_out_is_recognised_and_is_one_line(monkeypatch):
    import ray

    from tuner import cluster

    node_py = inspect.getsource(importlib.import_module("ray._private.node"))
    assert "timed out during startup" in node_py and "raylet_start_wait_time_s = 30" in node_py
    timed_out = Exception("The current node timed out during startup. This could happen because ...")
    assert ray_core.local_start_timed_out(timed_out)
    assert not ray_core.local_start_timed_out(RuntimeError("timed out during startup"))
    assert not ray_core.local_start_timed_out(Exception("something else"))

    def init(**_):
        raise timed_out

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    with pytest.raises(TunerError, match=r"did not start within Ray's 30 s wait .*run the command again"):
        cluster.connect(None, dashboard=False)


def test_without_default_actor_env_drops_tunes_default_and_puts_it_back():
    from ray.tune.execution import class_cache

    assert class_cache.DEFAULT_ENV_VARS == ray_tune.TUNE_ACTOR_ENV, broke(
        "ray_tune.without_default_actor_env", f"Tune's actor env is {ray_tune.TUNE_ACTOR_ENV}"
    )
    with ray_tune.without_default_actor_env():
        assert class_cache.DEFAULT_ENV_VARS == {}
        ray_tune.restore_default_actor_env()
        assert class_cache.DEFAULT_ENV_VARS == ray_tune.TUNE_ACTOR_ENV
        class_cache.DEFAULT_ENV_VARS.clear()
    assert class_cache.DEFAULT_ENV_VARS == ray_tune.TUNE_ACTOR_ENV


@pytest.mark.slow
def test_trial_actors_can_start_in_prestarted_workers_that_have_imported_tune(ray_instance):
    """Tune's trial actors carry no per-actor runtime env (which would force a fresh worker process each), the
    env var Tune put there still reaches the workers, and workers import Ray Tune's trainable as they start."""
    import ray
    from ray.tune.execution.class_cache import _ActorClassCache

    class Probe:
        def env(self):
            import os
            import sys

            return os.environ.get("PL_DISABLE_FORK"), "ray.tune.trainable.function_trainable" in sys.modules

    from ray.tune.execution import class_cache

    from tuner.session import study_session

    before = dict(class_cache.DEFAULT_ENV_VARS)
    with study_session():  # as a study runs its trials
        remote_cls = _ActorClassCache().get(Probe)
        assert not remote_cls._default_options.get("runtime_env")  # normalised by Ray: {} or None
        actor = remote_cls.options(num_cpus=0).remote()
        flag, preloaded = ray.get(actor.env.remote())
        ray.kill(actor)
    assert flag == "1"
    assert preloaded
    assert class_cache.DEFAULT_ENV_VARS == before  # Ray's own default is back once the study is over
    assert ray.is_initialized()  # the session's Ray instance (not the study's) keeps running


def test_without_callback_telemetry_skips_tunes_count(monkeypatch):
    import ray.tune.tune
    from ray.air._internal import usage

    assert "air_usage.tag_callbacks(callbacks)" in inspect.getsource(ray.tune.tune), broke(
        "ray_tune.without_callback_telemetry", "tune.run looks tag_callbacks up on its usage module"
    )
    original = usage.tag_callbacks
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    with ray_tune.without_callback_telemetry():
        assert usage.tag_callbacks is not original and usage.tag_callbacks([]) is False
    assert usage.tag_callbacks is original


def test_median_rule_results_and_keys_are_what_the_rule_compares():
    from ray.tune.schedulers import MedianStoppingRule

    rule = MedianStoppingRule(time_attr="epoch", metric="score", mode="max", grace_period=5)
    assert ray_tune.median_rule_keys(rule) == ("epoch", "score"), broke(
        "ray_tune.median_rule_keys", "_time_attr, _metric"
    )
    trial = _FakeTrial("t1")
    rule.on_trial_result(None, trial, {"epoch": 1, "score": 0.5})
    assert ray_tune.median_rule_results(rule) == {trial: [{"epoch": 1, "score": 0.5}]}, broke(
        "ray_tune.median_rule_results", "MedianStoppingRule keeps each trial's results in _results"
    )


def test_asha_state_travels_in_a_pickle_and_restores_the_rungs():
    from ray.tune.schedulers import AsyncHyperBandScheduler, TrialScheduler

    def scheduler():
        return AsyncHyperBandScheduler(time_attr="epoch", metric="score", mode="max", max_t=9, grace_period=1)

    first = scheduler()
    for name, score in (("a", 0.9), ("b", 0.8), ("c", 0.7)):
        first.on_trial_add(None, trial := _FakeTrial(name))
        first.on_trial_result(None, trial, {"epoch": 1, "score": score})
    state = pickle.loads(pickle.dumps(ray_tune.asha_state(first)))
    restored = scheduler()
    ray_tune.restore_asha_state(restored, state)
    late = _FakeTrial("d")
    restored.on_trial_add(None, late)
    assert restored.on_trial_result(None, late, {"epoch": 1, "score": 0.1}) == TrialScheduler.STOP, broke(
        "ray_tune.asha_state", "ASHA keeps its rungs in its instance attributes"
    )


def test_hyperopt_trials_and_point():
    import hyperopt
    from ray import tune
    from ray.tune.search.hyperopt import HyperOptSearch

    searcher = HyperOptSearch(space={"c": tune.choice(["a", "b"])}, metric="score", mode="max", random_state_seed=0)
    try:
        trials = ray_tune.hyperopt_trials(searcher)
        point = ray_tune.hyperopt_point(searcher, {"c": "b"})
    except AttributeError as exc:
        pytest.fail(broke("ray_tune.hyperopt_trials/hyperopt_point", f"HyperOptSearch's private names ({exc})"))
    assert isinstance(trials, hyperopt.Trials), broke("ray_tune.hyperopt_trials", "_hpopt_trials is a Trials")
    assert point == {"c": 1}, broke("ray_tune.hyperopt_point", "a choice is converted to its index")


class _FakeTrial:
    """What Tune's schedulers read of a trial: its id, hashable."""

    def __init__(self, trial_id: str):
        self.trial_id = trial_id
        self.status = "RUNNING"

    def __repr__(self) -> str:
        return self.trial_id


# --- a real experiment's files and state ---


def _remembering_callback():
    """A callback with a state, so Tune saves one in its snapshots."""
    from ray import tune

    class RememberCallback(tune.Callback):
        def get_state(self):
            return {"remembered": 1}

    return RememberCallback()


def _train(config):
    import tempfile

    from ray import tune

    for epoch in range(2):
        with tempfile.TemporaryDirectory() as folder:
            Path(folder, "weights").write_text(str(epoch))
            checkpoint = tune.Checkpoint.from_directory(folder)
            tune.report({"score": config["x"] + epoch, "epoch": epoch}, checkpoint=checkpoint)


def _experiment(storage: Path, searcher: str, samples: int = 2):
    from ray import tune
    from ray.tune.search import BasicVariantGenerator
    from ray.tune.search.hyperopt import HyperOptSearch

    alg = BasicVariantGenerator(random_state=0) if searcher == "random" else HyperOptSearch(random_state_seed=0)
    return tune.Tuner(
        _train,
        param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(num_samples=samples, search_alg=alg, metric="score", mode="max"),
        run_config=tune.RunConfig(
            name="ray", storage_path=str(storage), callbacks=[_remembering_callback()], verbose=0
        ),
    )


@pytest.mark.slow
def test_the_files_of_a_real_experiment(ray_instance, tmp_path):
    grid = _experiment(tmp_path, "random").fit()
    experiment = tmp_path / "ray"
    session = tune_files.newest_session(experiment)
    assert session is not None, broke("tune_files.newest_session", "snapshots are experiment_state-<session>.json")
    names = [p.name for p in tune_files.session_files(experiment, session)]
    assert f"experiment_state-{session}.json" in names and f"callback-states-{session}.pkl" in names, broke(
        "tune_files.session_files", f"a snapshot's files end with -<session> (found {names})"
    )
    runs = tune_files.trial_runs(tune_files.newest_experiment_state(experiment))
    ids = {result.metrics["trial_id"] for result in grid}
    assert set(runs) == ids and all(r["start_time"] and r["last_result_time"] for r in runs.values()), broke(
        "tune_files.trial_runs", "trial_data pairs a trial (with trial_id) with its run's times"
    )
    folders = {Path(result.checkpoint.path).name for result in grid}
    assert all(tune_files.is_checkpoint_folder(name) for name in folders), broke(
        "tune_files.is_checkpoint_folder", f"checkpoints are named checkpoint_<index> ({folders})"
    )
    states = tune_files.newest_callback_states(experiment)
    assert states is not None and {"remembered": 1} in states.values(), broke(
        "tune_files.newest_callback_states", f"callback-states-*.pkl holds their states ({states})"
    )


@pytest.mark.slow
@pytest.mark.parametrize("searcher", ["random", "hyperopt"])
def test_a_raised_search_budget_runs_more_trials_when_restored(ray_instance, tmp_path, searcher):
    from ray import tune

    _experiment(tmp_path, searcher).fit()
    experiment = tmp_path / "ray"
    assert tune_files.raise_search_budget(experiment, 1) == 3
    restored = tune.Tuner.restore(str(experiment), trainable=_train)
    config = ray_tune.restored_run_config(restored)
    assert config is not None and any(type(c).__name__ == "RememberCallback" for c in config.callbacks), broke(
        "ray_tune.restored_run_config", "a restored Tuner's _local_tuner holds its run config"
    )
    grid = restored.fit()
    assert len(grid) == 3, broke("tune_files.raise_search_budget", f"{searcher}'s saved state holds its trial budget")


# --- MLflow ---


def test_process_tracking_uri_is_set_in_the_block_and_put_back_exactly(monkeypatch, tmp_path):
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    before = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with mlflow_store.process_tracking_uri(uri):
        assert mlflow.get_tracking_uri() == uri, broke("mlflow_store.process_tracking_uri", "_use_tracking_uri sets it")
    assert mlflow.get_tracking_uri() == before and "MLFLOW_TRACKING_URI" not in os.environ, broke(
        "mlflow_store.process_tracking_uri", "_use_tracking_uri puts the setting back exactly"
    )

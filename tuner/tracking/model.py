"""The chosen model as an MLflow model: a ``mlflow.pyfunc`` model whose artifacts are the trial's weights file, its
config and space, and the family's inference state (``trainables.family.ServingFamily``); it predicts by calling the
family's own ``predict``, so what it returns is what the study's test figures were computed from.

A study first stages the model's files in its run folder (``stage``); the MLflow write (``log_staged``) reads them
from there, so a write the store could not take waits in the spool and is replayed from the same files.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import pickle
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np

from tuner import PROJECT_ROOT

MODEL_NAME = "model"
"""The logged model's name in the parent run (its ``models:/`` URI is recorded in ``best_config.json``)."""
WEIGHTS, CONFIG, STATE = "weights.pt", "model.json", "inference_state.pkl"
EXAMPLE, SIGNATURE, FIGURES = "input_example.npy", "signature.json", "test_figures.json"
MODEL_CODE = Path(__file__).with_name("model_code.py")
"""What MLflow runs to make the model when it loads it (``FamilyModel``; no pickled Python object)."""
CODE = ("trainables", "tuner")
"""Packages copied into the model, so it loads where tuner is not installed."""
SPACE_CODE = "code"
"""The staged folder's copy of a space's own code (its family and loader: files and packages), which the model
carries beside tuner's so that it loads where neither the space's folder nor tuner's checkout is."""


class FamilyModel(mlflow.pyfunc.PythonModel):
    """Predicts with a model family's ``predict`` from the artifacts ``stage`` wrote."""

    def load_context(self, context) -> None:
        described = json.loads(Path(context.artifacts[CONFIG]).read_text())
        self.family = importlib.import_module(described["family"])
        self.config = described["config"]
        self.weights = Path(context.artifacts[WEIGHTS])
        with open(context.artifacts[STATE], "rb") as fh:
            self.state = pickle.load(fh)  # written by this study's own driver (``stage``)

    def predict(self, context, model_input: np.ndarray, params=None) -> np.ndarray:
        # An ndarray hint: MLflow checks inputs against the logged signature and infers nothing from the hint.
        inputs = model_input.to_numpy() if hasattr(model_input, "to_numpy") else np.asarray(model_input)
        return self.family.predict(self.config, self.state, self.weights, inputs)


def stage(
    folder: Path,
    family: str,
    space: str,
    config: dict[str, Any],
    state: dict[str, Any],
    weights: Path,
    example: np.ndarray,
    predictions: np.ndarray,
    code: list[Path] = (),
    figures: dict[str, float] | None = None,
) -> None:
    """Write the model's files to ``folder``: the weights, ``model.json`` (family module, space, config), the
    pickled inference state, an input example and the signature inferred from it and its ``predictions``, a copy
    of the space's own ``code`` (files and package folders), and the test ``figures`` the model's page shows."""
    from mlflow.models import infer_signature

    folder.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(folder / SPACE_CODE, ignore_errors=True)
    for path in code:
        target = folder / SPACE_CODE / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copyfile(path, target)
    shutil.copyfile(weights, folder / WEIGHTS)
    (folder / CONFIG).write_text(json.dumps({"family": family, "space": space, "config": config}, indent=2))
    with open(folder / STATE, "wb") as fh:
        pickle.dump(state, fh)
    np.save(folder / EXAMPLE, example)
    (folder / SIGNATURE).write_text(json.dumps(infer_signature(example, predictions).to_dict()))
    (folder / FIGURES).write_text(json.dumps(figures or {}))


def log_staged(tracking_uri: str, folder: Path, run_id: str, dataset: dict[str, Any] | None = None) -> dict[str, Any]:
    """Log the model staged in ``folder`` as a model of run ``run_id``'s experiment (its files under that
    experiment's artifact location), with its test figures linked to it and to the study's ``dataset`` (a
    ``tuner.tracking.inputs.dataset_record``): its ``models:/`` URI and id."""
    from mlflow import MlflowClient
    from mlflow.models import Model, ModelSignature

    client = MlflowClient(tracking_uri)
    # Made here with the run's experiment: MLflow's own Model.log makes it in the process's active experiment
    # (the Default one, its files under the working directory's mlruns/) whatever run it is given.
    made = client.create_logged_model(client.get_run(run_id).info.experiment_id, name=MODEL_NAME, source_run_id=run_id)
    with _store(tracking_uri):
        info = Model.log(
            artifact_path=None,
            name=MODEL_NAME,
            flavor=mlflow.pyfunc,
            run_id=run_id,
            model_id=made.model_id,
            python_model=str(MODEL_CODE),
            artifacts={name: str(folder / name) for name in (WEIGHTS, CONFIG, STATE)},
            signature=ModelSignature.from_dict(json.loads((folder / SIGNATURE).read_text())),
            input_example=np.load(folder / EXAMPLE),
            code_paths=_code_paths(folder),
            pip_requirements=_requirements(),
        )
    _log_figures(client, run_id, made.model_id, folder, dataset)
    return {"uri": info.model_uri, "model_id": info.model_id, "registered": None}


def _log_figures(client, run_id: str, model_id: str, folder: Path, dataset: dict[str, Any] | None) -> None:
    """The staged test figures as the model's metrics (its page), measured on the study's dataset."""
    from mlflow.entities import Metric

    from tuner.tracking.store import now_ms

    figures = json.loads((folder / FIGURES).read_text()) if (folder / FIGURES).is_file() else {}
    on = {"dataset_name": dataset["name"], "dataset_digest": dataset["digest"]} if dataset else {}
    now = now_ms()
    metrics = [Metric(key, float(value), now, 0, model_id=model_id, **on) for key, value in figures.items()]
    if metrics:
        client.log_batch(run_id, metrics=metrics)


def _code_paths(folder: Path) -> list[str]:
    """tuner's packages and the staged copy of the space's own code: each lands in the model's code folder, which
    MLflow puts first on the import path when it loads the model."""
    own = sorted((folder / SPACE_CODE).iterdir()) if (folder / SPACE_CODE).is_dir() else []
    return [str(PROJECT_ROOT / name) for name in CODE] + [str(path) for path in own]


def register(tracking_uri: str, logged: dict[str, Any], run_id: str, name: str) -> dict[str, Any]:
    """A new version of registered model ``name`` (made on first use) from the ``logged`` model (``log_staged``).
    Through the client: MLflow's ``register_model`` prints its own lines; the study's summary says it once."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri)
    with _store(tracking_uri):
        try:
            client.get_registered_model(name)
        except MlflowException:
            client.create_registered_model(name)
        version = client.create_model_version(name, source=logged["uri"], run_id=run_id, model_id=logged["model_id"])
    return {"name": name, "version": int(version.version), "uri": f"models:/{name}/{version.version}"}


@contextlib.contextmanager
def _store(tracking_uri: str) -> Iterator[None]:
    """MLflow's model logging and registration read the store from the process's setting, not from a client; and
    they say what they do (validating the input example, ...) at INFO: the study's summary says where the model is."""
    # MLflow's own context restores the process's setting exactly: set_tracking_uri(get_tracking_uri()) would
    # pin MLflow's default store into MLFLOW_TRACKING_URI, and every later study of this process would write there.
    from tuner.internals.mlflow_store import process_tracking_uri

    loggers = [logging.getLogger(name) for name in ("mlflow.pyfunc", "mlflow.models")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with process_tracking_uri(tracking_uri):
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _requirements() -> list[str]:
    """The model's pip requirements, named here: MLflow would otherwise load the model in a fresh Python to find
    them (seconds, with torch)."""
    from importlib.metadata import version

    packages = ("mlflow", "torch", "numpy", "scikit-learn", "cloudpickle")
    return [f"{name}=={version(name).split('+')[0]}" for name in packages]


__all__ = ["FamilyModel", "MODEL_NAME", "log_staged", "register", "stage"]

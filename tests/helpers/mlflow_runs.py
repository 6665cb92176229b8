"""What a study left in its MLflow store."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from tuner.tracking import default_tracking_uri


def mlflow_runs(results_dir, space):
    """The client, the parent runs and the child (trial) runs of one space's experiment under ``results_dir``."""
    client = MlflowClient(default_tracking_uri(results_dir))
    experiment = client.get_experiment_by_name(space)
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, parents, children

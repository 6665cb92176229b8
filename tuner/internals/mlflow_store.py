"""MLflow's internals tuner uses (see ``tuner.internals``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def process_tracking_uri(tracking_uri: str) -> Iterator[None]:
    """MLflow's process-wide tracking store is ``tracking_uri`` while the block runs, and exactly what it was
    afterwards (unset included).

    Relies on: ``mlflow.tracking._tracking_service.utils._use_tracking_uri``, the context manager MLflow's own
    tests use. Why not public: model logging and registration read the store from the process's setting, not
    from a client; and ``mlflow.set_tracking_uri(mlflow.get_tracking_uri())`` to put it back would pin MLflow's
    default store into ``MLFLOW_TRACKING_URI``, where every later study of the process would write. Checked
    against MLflow 3.17.2."""
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    with _use_tracking_uri(tracking_uri):
        yield


__all__ = ["process_tracking_uri"]

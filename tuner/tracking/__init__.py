"""MLflow: one experiment per space, one parent run per study, one nested child run per trial.

Only the driver writes, and it writes from ONE background thread fed by a queue: SQLite allows one writer at a
time ("database is locked" under concurrency), and a slow store must not stall Ray Tune's event loop. ``close``
drains the queue, so no write is lost; the first write error is raised there rather than swallowed.

``store``: where the MLflow store is and how a new one is made; ``writer``: the one writer thread; ``tracker``:
``StudyTracker``, the runs of a study; ``resume``: what ``tuner resume`` reads and closes in MLflow; ``inputs``: the
study's data as a dataset input; ``model``: the chosen model as an MLflow (pyfunc) model. Tag names and statuses
come from ``tuner.schema``.
"""

from tuner.tracking.store import cache_dir, create_sqlite_store, default_tracking_uri, sqlite_path
from tuner.tracking.tracker import StudyTracker

__all__ = ["StudyTracker", "cache_dir", "create_sqlite_store", "default_tracking_uri", "sqlite_path"]

"""The MLflow store: where it is by default, how a new SQLite store is made quickly, how to look at it.

Setting ``MLFLOW_DISABLE_TELEMETRY`` here, at import, puts it before any import of mlflow through tuner.tracking
(every module of the package imports this one first, or through the package's ``__init__``).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

# MLflow 3 reports usage to its developers from a background thread unless told not to; like Ray's usage stats,
# tuner leaves it off unless the user turns it on (MLFLOW_DISABLE_TELEMETRY=false).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# A tracking server that stops answering: MLflow's client would retry each request for minutes (7 retries with
# exponential backoff) while the study's writes queue up behind it. tuner retries a failed write a few times
# itself, then spools it for replay (tuner.tracking.tracker).
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
# MLflow prints a "View run ... at: http://..." line for every run it ends on a tracking server: one per trial.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
# Logging the chosen model copies its files with a progress bar per step; the summary says where the model went.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

_SQLITE_PREFIX = "sqlite:///"


def default_tracking_uri(results_dir: Path) -> str:
    return f"{_SQLITE_PREFIX}{(results_dir / 'mlflow.db').resolve()}"


def cache_dir() -> Path:
    """Per-user cache of things that are expensive to make and never change (``TUNER_CACHE_DIR`` to move it)."""
    env = os.environ.get("TUNER_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tuner"


def sqlite_path(tracking_uri: str) -> Path | None:
    """The file of a ``sqlite:///`` tracking URI (None for other stores)."""
    return Path(tracking_uri[len(_SQLITE_PREFIX) :]) if tracking_uri.startswith(_SQLITE_PREFIX) else None


def now_ms() -> int:
    """Now, as MLflow's store keeps time: milliseconds since the epoch."""
    return int(time.time() * 1000)


def _empty_store_template(version: str) -> Path | None:
    """An empty MLflow SQLite store with every table, made once per MLflow version: creating a store runs MLflow's
    migrations, ~2 s of CPU that would compete with a study's first trials. None when the cache is unwritable."""
    template = cache_dir() / f"mlflow-{version}-empty.db"
    if template.exists():
        return template
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=template.parent) as tmp:
            from mlflow.tracking import MlflowClient

            partial = Path(tmp) / template.name
            MlflowClient(tracking_uri=f"{_SQLITE_PREFIX}{partial}").get_experiment("0")  # runs the migrations
            os.replace(partial, template)  # atomic: a concurrent maker's identical file may win
    except OSError:
        return None
    return template


def create_sqlite_store(path: Path) -> bool:
    """Create the SQLite store ``path`` as a copy of the cached empty store; False when it already exists or no
    template could be made (MLflow then creates it). Atomic: a concurrent study never sees a half-copied file."""
    import mlflow

    if path.exists():
        return False
    template = _empty_store_template(mlflow.__version__)
    if template is None:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        shutil.copyfile(template, partial)
        with sqlite3.connect(partial) as db:  # the Default experiment as MLflow would have made it here and now
            now = now_ms()
            db.execute(
                "UPDATE experiments SET artifact_location = ?, creation_time = ?, last_update_time = ? "
                "WHERE experiment_id = 0",
                (str(Path.cwd() / "mlruns" / "0"), now, now),
            )
        db.close()
        os.link(partial, path)  # fails if another study created the store meanwhile: that one is kept
        return True
    except OSError:  # created meanwhile, or no hard links here: MLflow creates or opens the store itself
        return False
    finally:
        partial.unlink(missing_ok=True)


def open_client(tracking_uri: str) -> Any:
    """An ``MlflowClient`` of ``tracking_uri``, a new SQLite store made first from the cached empty one."""
    import logging

    from mlflow.tracking import MlflowClient

    # "Creating initial tables..."; and a database error's traceback, which tuner handles (retried, then spooled,
    # tuner.tracking.tracker) and reports in one line.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    # A server that stops answering: tuner says so once in its summary (tuner.tracking.tracker), not per request.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)

    store_file = sqlite_path(tracking_uri)
    if store_file is not None:
        create_sqlite_store(store_file)
    return MlflowClient(tracking_uri=tracking_uri)


def ui_command(tracking_uri: str) -> str:
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {tracking_uri} in a browser"
    return f"mlflow ui --backend-store-uri {tracking_uri} --port 5000   (then open http://127.0.0.1:5000)"

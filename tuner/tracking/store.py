"""The MLflow store: where it is by default, how a new SQLite store is made quickly, how to look at it. (What MLflow
is told through environment variables while a study runs is declared in ``tuner.session``.)"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

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
    from mlflow.tracking import MlflowClient

    store_file = sqlite_path(tracking_uri)
    if store_file is not None:
        create_sqlite_store(store_file)
    return MlflowClient(tracking_uri=tracking_uri)

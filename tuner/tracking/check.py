"""Is the MLflow store there? Checked before a study writes anything, in seconds: an unknown scheme, a server
that does not answer or refuses the credentials is one line naming the store, not trials failing one by one in
the MLflow callback (or a driver hanging on MLflow's own retries)."""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import urlparse

from tuner.errors import TunerError

LOCAL_SCHEMES = ("", "file", "sqlite")
DATABASE_SCHEMES = ("postgresql", "mysql", "mssql")
SERVER_SCHEMES = ("http", "https")
CHECK_TIMEOUT_S = 5.0


def is_server(uri: str) -> bool:
    """Whether ``uri`` is an MLflow tracking server's address (``http(s)://HOST:PORT``)."""
    return urlparse(uri).scheme in SERVER_SCHEMES


def check_store(uri: str) -> None:
    """Raise a ``TunerError`` when the store at ``uri`` cannot be used: an unknown scheme, or a tracking server
    that does not answer its health check within ``CHECK_TIMEOUT_S`` or answers it with an error."""
    scheme = urlparse(uri).scheme.split("+")[0]
    if scheme in LOCAL_SCHEMES or scheme in DATABASE_SCHEMES or scheme == "databricks":
        return
    if scheme not in SERVER_SCHEMES:
        accepted = "a path, sqlite:///FILE, http(s)://HOST:PORT, postgresql://, mysql://, mssql://, databricks"
        raise TunerError(f"--tracking-uri {uri}: unknown MLflow store scheme {scheme!r}; accepted: {accepted}")
    _check_server(uri)


def _check_server(uri: str) -> None:
    health = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(health, timeout=CHECK_TIMEOUT_S) as response:  # noqa: S310 - the user's server
            response.read(64)
    except urllib.error.HTTPError as exc:
        what = "refused the credentials" if exc.code in (401, 403) else f"answered HTTP {exc.code}"
        hint = " (set MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN)" if exc.code in (401, 403) else ""
        raise TunerError(f"MLflow server {uri} {what} at {health}{hint}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TunerError(
            f"MLflow server {uri} does not answer ({reason}); start it, or pass another --tracking-uri"
        ) from None


__all__ = ["check_store", "is_server"]

"""Where Ray Tune keeps a study's trial checkpoints and its own state (``run --storage``).

By default the run's folder under ``--results-dir``: right on one machine, and on clusters whose nodes share that
filesystem. A multi-node cluster needs a place every node can write (Ray Tune fails a trial's checkpoint on a
node that cannot): a folder every node mounts at the same path (NFS, EFS, a ReadWriteMany volume), or a URI of a
filesystem pyarrow knows (``s3://bucket/prefix``, ``gs://...``, ``abfs://...``) with credentials on every node.
The driver reads the checkpoints it evaluates through the same filesystem, downloading them when remote.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tuner.errors import TunerError, first_line

URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
SEARCH_EXPERIMENT = "ray"
"""The search phase's Ray Tune experiment folder in a study's storage: where ``tuner resume`` and ``tuner extend``
find every saved study's search."""


def is_uri(storage: str | None) -> bool:
    return bool(storage) and bool(URI.match(str(storage)))


def normalise(storage: str | None) -> str | None:
    """An absolute folder or the URI as given; a URI whose filesystem pyarrow cannot open is a one-line error."""
    if storage is None:
        return None
    text = str(storage)
    if not is_uri(text):
        return str(Path(text).expanduser().resolve())
    _filesystem(text)
    return text.rstrip("/")


def study_root(storage: str | None, results_dir: Path, space: str, name: str) -> str:
    """The folder or URI Ray Tune's ``storage_path`` gets for one run (its experiment is ``ray`` below it)."""
    root = storage if storage is not None else str(results_dir.resolve())
    return f"{root.rstrip('/')}/{space}/{name}"


def has_state(study: str) -> bool:
    """True when Ray Tune saved the study's state below ``study`` (its search experiment), so it can restore it."""
    from ray import tune

    fs, path = _filesystem(study) if is_uri(study) else (None, study)
    return tune.Tuner.can_restore(f"{path}/{SEARCH_EXPERIMENT}", storage_filesystem=fs)


@contextlib.contextmanager
def local_checkpoint(storage: str | None, checkpoint_path: str) -> Iterator[Path]:
    """A local folder holding the checkpoint Ray Tune reported at ``checkpoint_path`` (its path within the storage's
    filesystem): the folder itself when local, else a temporary download."""
    if not is_uri(storage):
        yield Path(checkpoint_path)
        return
    from ray import tune

    fs, _ = _filesystem(storage)
    with tempfile.TemporaryDirectory(prefix="tuner-checkpoint-") as tmp:
        tune.Checkpoint(checkpoint_path, filesystem=fs).to_directory(tmp)
        yield Path(tmp)


def delete_folder(location: str) -> None:
    """Delete a folder of the study's storage (a local path or a URI) with all it holds; one that is not there is
    fine. A delete that fails only costs space."""
    if not is_uri(location):
        shutil.rmtree(location, ignore_errors=True)
        return
    fs, path = _filesystem(location)
    try:
        fs.delete_dir(path)
    except (FileNotFoundError, OSError):
        pass


def _filesystem(uri: str):
    import pyarrow.fs

    try:
        return pyarrow.fs.FileSystem.from_uri(uri)
    except (pyarrow.ArrowInvalid, pyarrow.ArrowNotImplementedError, OSError, ValueError) as exc:
        first = first_line(exc)
        raise TunerError(
            f"--storage {uri}: cannot open this filesystem ({first}); give a shared folder or a URI such as "
            f"s3://bucket/prefix"
        ) from None


__all__ = ["delete_folder", "has_state", "is_uri", "local_checkpoint", "normalise", "study_root"]

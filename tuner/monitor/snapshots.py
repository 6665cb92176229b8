"""Ray Tune's experiment snapshots, kept whole: a disk that fills up while Tune writes one leaves it truncated
(an ``experiment_state-*.json`` cut short, a ``searcher-state-*.pkl`` of 0 bytes), and Tune cannot restore the
study from it. After every snapshot Tune completes, a copy of its files goes to ``.tuner-last-complete/`` in the
experiment folder (copied to a temporary folder first, then renamed: the copy is never half-written either);
before a resume, a newest snapshot that is not whole is put aside and that copy takes its place.

A snapshot is the files of one driver session, named after it (``experiment_state-<session>.json``,
``searcher-state-<session>.pkl``, ``callback-states-<session>.pkl``, ...). Local storage only: a bucket's
objects are written whole or not at all.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from tuner.errors import TunerError
from tuner.internals.tune_files import newest_session, session_files

BACKUP = ".tuner-last-complete"
BROKEN = ".tuner-broken"


def is_whole(path: Path) -> bool:
    """A pickle that ends with pickle's STOP opcode (a truncated one does not; Tune writes some pickles under a
    .json name), a JSON file that parses."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if not data:
        return False
    if data.startswith(b"\x80") or path.suffix == ".pkl":  # pickle protocol 2+
        return data.endswith(b".")
    if path.suffix == ".json":
        try:
            json.loads(data)
        except ValueError:
            return False
    return True


class SnapshotKeeper:
    """Copies each snapshot Tune completes (checked whole) to ``BACKUP``; cheap when nothing changed (a stat)."""

    def __init__(self, folder: Path | None):
        self.folder = folder
        self._copied: tuple | None = None

    def step(self) -> None:
        if self.folder is None or not self.folder.is_dir():
            return
        session = newest_session(self.folder)
        if session is None:
            return
        files = session_files(self.folder, session)
        signature = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)
        if signature == self._copied or not all(is_whole(p) for p in files):
            return
        try:
            _copy_set(files, self.folder / BACKUP)
        except OSError:  # a full disk: the previous copy stays the last complete snapshot
            return
        self._copied = signature


def _copy_set(files: list[Path], backup: Path) -> None:
    partial = backup.with_name(f"{backup.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    for path in files:
        shutil.copy2(path, partial / path.name)
    old = backup.with_name(f"{backup.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if backup.exists():
        os.replace(backup, old)
    os.replace(partial, backup)
    shutil.rmtree(old, ignore_errors=True)


def repair(folder: Path) -> str:
    """Before a resume: when the newest snapshot in ``folder`` is not whole, put its files aside (in ``BROKEN``)
    and restore the last complete copy. Returns what was done ("" when the snapshot was whole)."""
    session = newest_session(folder) if folder.is_dir() else None
    if session is None:
        return ""
    files = session_files(folder, session)
    broken = [p.name for p in files if not is_whole(p)]
    if not broken:
        return ""
    backup = folder / BACKUP
    if not backup.is_dir() or not any(backup.iterdir()):
        raise TunerError(
            f"the study's last snapshot in {folder} is incomplete ({', '.join(broken)}) and no "
            f"complete copy was kept; start the study again with tuner run"
        )
    aside = folder / BROKEN
    aside.mkdir(exist_ok=True)
    for path in files:
        os.replace(path, aside / path.name)
    for path in backup.iterdir():
        shutil.copy2(path, folder / path.name)
    return (
        f"the study's last snapshot was incomplete ({', '.join(broken)}; a full disk?): continuing from the "
        f"last complete one; the incomplete files are in {aside}"
    )


__all__ = ["SnapshotKeeper", "repair"]

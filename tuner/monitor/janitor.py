"""Deletes the checkpoints a study no longer needs, without ever deleting one a snapshot may still point at.

Ray Tune keeps every checkpoint (its own ``num_to_keep`` deleted one before the snapshot that stopped pointing at
it was saved, and a driver killed in that window left a study that could not resume). The janitor deletes a
trial's superseded checkpoints once two newer snapshots exist, and after the search all but each trial's latest.
A trial that ended keeps its best weights but not its training state (the optimizer's, ~2/3 of an HMS checkpoint)
once three snapshots record it ended: no snapshot a resumed study can start from runs it again.
Once the whole study has finished (``keep_only``), only the weights later commands read stay: no trial resumes
any more, so their training states go too, and every other trial's checkpoint with them."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import Any

from trainables.reporting import REPORTER_FILE, STATE_FILE
from tuner.internals.tune_files import is_checkpoint_folder
from tuner.trial import TRIAL_DIR_PREFIX

TRAINING_STATE = (STATE_FILE, REPORTER_FILE)
"""The files of a checkpoint that only a trial continuing from it reads (its weights are ``model.pt``)."""
SNAPSHOTS_KEPT = 2
"""A trial's checkpoints older than the one the third-newest experiment snapshot points at are deleted: the
newest snapshot is being saved and the one before may still be uploading when the driver dies, so the one before
those must still find its checkpoints."""


class CheckpointJanitor:
    def __init__(self) -> None:
        self.drop_ended_states = True
        """Whether an ended trial's training state goes (``--keep-checkpoints`` keeps it; the search phase sets it,
        on a resumed study's janitor too)."""
        self._checkpoints: dict[str, list[tuple[int, Any]]] = {}
        """trial id -> [(registration number, Checkpoint)] not deleted yet, oldest first."""
        self._registered: dict[str, int] = {}
        """trial id -> checkpoints registered so far."""
        self._snapshot_marks: list[dict[str, int]] = []
        """Per recent experiment snapshot: trial id -> checkpoints registered when it was taken."""
        self._latest: dict[str, Any] = {}
        """trial id -> its latest checkpoint (a ``tune.Checkpoint``): registered with this driver, or at the study's
        end, from Tune's trials (also those a resumed study restored)."""
        self._trial_ids: set[str] = set()
        """The study's trials, as Tune had them at its end."""
        self._snapshots = 0
        """Experiment snapshots taken by this driver."""
        self._ended: dict[str, int] = {}
        """trial id -> snapshots taken when it ended, for trials whose training state is not deleted yet."""

    def __reduce__(self) -> tuple[type, tuple]:
        # Ray Tune pickles the monitor into its experiment state: the checkpoints registered with this driver are
        # its own to clean up, so a restored janitor starts empty.
        return CheckpointJanitor, ()

    def register(self, trial_id: str, checkpoint: Any) -> None:
        number = self._registered.get(trial_id, 0) + 1
        self._registered[trial_id] = number
        self._checkpoints.setdefault(trial_id, []).append((number, checkpoint))
        self._latest[trial_id] = checkpoint

    def trial_ended(self, trial_id: str) -> None:
        """The trial ended on its own or was stopped by the scheduler (not failed: a failed trial may be retried)."""
        if self.drop_ended_states:
            self._ended[trial_id] = self._snapshots

    def snapshot_taken(self) -> None:
        """Tune is saving an experiment snapshot: checkpoints older than those of the snapshot two before it go, and
        the training state of the trials that snapshot (or an older one) saw ended."""
        self._snapshots += 1
        self._snapshot_marks = [*self._snapshot_marks, dict(self._registered)][-(SNAPSHOTS_KEPT + 1) :]
        if len(self._snapshot_marks) > SNAPSHOTS_KEPT:
            oldest = self._snapshot_marks[0]
            self._delete_checkpoints(lambda trial_id, number: number < oldest.get(trial_id, 0))
        for trial_id, ended_at in list(self._ended.items()):
            if self._snapshots - ended_at > SNAPSHOTS_KEPT and trial_id in self._latest:
                latest = self._latest[trial_id]
                for training_state in TRAINING_STATE:
                    _delete_file(latest.filesystem, f"{latest.path.rstrip('/')}/{training_state}")
                del self._ended[trial_id]

    def study_ended(self, trials: list[Any]) -> None:
        """Remember the study's trials and their latest checkpoints, with those a resumed study restored."""
        self._trial_ids = {trial.trial_id for trial in trials}
        for trial in trials:
            if getattr(trial, "checkpoint", None) is not None:
                self._latest[trial.trial_id] = trial.checkpoint

    def sweep(self, restored: bool) -> None:
        """After the study (Tune's last snapshot saved): keep each trial's latest checkpoint only, sweeping its folder
        (a ``restored`` study's trials also hold checkpoints a driver before it registered)."""
        for checkpoint in self._latest.values():
            trial_folder, keep = posixpath.split(checkpoint.path.rstrip("/"))
            _delete_folders(
                checkpoint.filesystem, trial_folder, lambda name, keep=keep: is_checkpoint_folder(name) and name != keep
            )
        if restored and self._latest and self._trial_ids:
            # Trials a killed driver started after its last snapshot ran again under new ids: their old folders
            # (checkpoints included) belong to no trial of the study.
            some = next(iter(self._latest.values()))
            study = posixpath.dirname(posixpath.dirname(some.path.rstrip("/")))
            known = {f"{TRIAL_DIR_PREFIX}{trial_id}" for trial_id in self._trial_ids}
            unknown = lambda name: name.startswith(TRIAL_DIR_PREFIX) and name not in known  # noqa: E731
            _delete_folders(some.filesystem, study, unknown)

    def _delete_checkpoints(self, superseded: Callable[[str, int], bool]) -> None:
        for trial_id, entries in self._checkpoints.items():
            keep = []
            for number, checkpoint in entries:
                if not superseded(trial_id, number):
                    keep.append((number, checkpoint))
                    continue
                _delete_dir(checkpoint.filesystem, checkpoint.path)
            entries[:] = keep


def keep_only(study_root: str, weights_of: dict[str, set[str]]) -> None:
    """A finished study's clean-up, in each Ray Tune experiment ``weights_of`` names below ``study_root`` (a folder
    or a URI): the trials it names (trial ids) keep their latest checkpoint's weights, without the training state;
    every other trial's checkpoints are deleted. Trial folders and Tune's state stay (``extend`` restores them)."""
    import pyarrow.fs

    from tuner.storage import is_uri

    filesystem, root = (
        pyarrow.fs.FileSystem.from_uri(study_root) if is_uri(study_root) else (pyarrow.fs.LocalFileSystem(), study_root)
    )
    for experiment, kept in weights_of.items():
        for trial in _folders(filesystem, f"{root.rstrip('/')}/{experiment}"):
            name = posixpath.basename(trial)
            if not name.startswith(TRIAL_DIR_PREFIX):
                continue
            if name.removeprefix(TRIAL_DIR_PREFIX) not in kept:
                _delete_folders(filesystem, trial, is_checkpoint_folder)
                continue
            for checkpoint in _folders(filesystem, trial):
                if is_checkpoint_folder(posixpath.basename(checkpoint)):
                    for training_state in TRAINING_STATE:
                        _delete_file(filesystem, f"{checkpoint}/{training_state}")


def _folders(filesystem: Any, folder: str) -> list[str]:
    """The sub-folders of ``folder`` (in the study's storage, local or a bucket); none when it is gone or
    unreadable."""
    import pyarrow.fs

    try:
        entries = filesystem.get_file_info(pyarrow.fs.FileSelector(folder))
    except (FileNotFoundError, OSError):
        return []
    return [entry.path.rstrip("/") for entry in entries if entry.type == pyarrow.fs.FileType.Directory]


def _delete_folders(filesystem: Any, folder: str, unwanted: Callable[[str], bool]) -> None:
    """Delete the sub-folders of ``folder`` whose name is ``unwanted``. A folder that is gone or unreadable, or a
    delete that fails, only costs space: the study's results stand."""
    for path in _folders(filesystem, folder):
        if unwanted(posixpath.basename(path)):
            _delete_dir(filesystem, path)


def _delete_file(filesystem: Any, path: str) -> None:
    try:
        filesystem.delete_file(path)
    except (FileNotFoundError, OSError):  # not there (a family without a training state); a failed delete only
        pass  # costs space


def _delete_dir(filesystem: Any, path: str) -> None:
    try:
        filesystem.delete_dir(path)
    except (FileNotFoundError, OSError):  # gone already; a failed delete only costs space
        pass

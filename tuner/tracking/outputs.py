"""What a study logs to its parent run besides its trials: its data as a dataset input (of the parent and every
child run), the chosen model, and a phase's own figures and files (the analysis).

A mixin of ``StudyTracker`` (``tuner.tracking.tracker``): the writes go through its writer thread and its guard,
which replays a spooled write by the method's name, so they stay methods of the tracker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuner.tracking.inputs import dataset_input, dataset_record
from tuner.tracking.store import now_ms


class StudyOutputs:
    """The parent run's outputs; needs the tracker's ``client``, ``parent_id``, ``_children``, ``_dataset``,
    ``model``, ``_writer`` and ``guard``."""

    def log_to_parent(self, metrics: dict[str, float], folder: str | None = None, artifact_path: str | None = None):
        """A phase's own figures and files on the parent run (the analysis, ...): ``metrics`` at step 0 and every
        file under ``folder`` (a folder in the run's results, so a spooled write can be replayed from it) as
        artifacts under ``artifact_path``. Queued and guarded like the trials' writes."""
        self._writer.put(self.guard.run, "_log_to_parent", metrics, folder, artifact_path)

    def _log_to_parent(self, metrics: dict[str, float], folder: str | None, artifact_path: str | None) -> None:
        from mlflow.entities import Metric

        now = now_ms()
        rows = [Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None]
        if rows:
            self.client.log_batch(self.parent_id, metrics=rows)
        if folder is not None and Path(folder).is_dir():
            self.client.log_artifacts(self.parent_id, folder, artifact_path)

    def log_file_to_parent(self, path: str) -> None:
        """One file of the run folder as an artifact at the parent run's root, replacing the one logged there (the
        export rewritten after ``tuner sync``); guarded like the trials' writes."""
        self._writer.put(self.guard.run, "_log_file_to_parent", path)

    def _log_file_to_parent(self, path: str) -> None:
        self.client.log_artifact(self.parent_id, path)

    def tag_run(self, run_id: str, tags: dict[str, str]) -> None:
        """Tags of a run of the study that has ended (the chosen trial's mark); guarded like the trials' writes."""
        self._writer.put(self.guard.run, "_tag_run", run_id, tags)

    def _tag_run(self, run_id: str, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def use_dataset(self, name: str, digest: str, source: str, synthetic: bool) -> None:
        """The study's data, logged as a dataset input of the parent run now and of every child run it starts
        (MLflow's Dataset column). Called once the parent run is started or resumed; guarded like trial writes."""
        self._dataset = dataset_record(name, digest, source, synthetic)
        self._writer.put(self.guard.run, "_log_dataset", None, self._dataset)

    def _log_dataset(self, trial_id: str | None, dataset: dict[str, Any]) -> None:
        run_id = self.parent_id if trial_id is None else self._children[trial_id]
        self.client.log_inputs(run_id, datasets=[dataset_input(dataset)])  # the same input again is kept once

    def log_model(self, folder: str, registered_name: str | None) -> None:
        """The model staged in ``folder`` (``tuner.tracking.model.stage``) as an MLflow model of the parent run,
        registered as ``registered_name`` when given; guarded like the trials' writes. ``model`` says where it is
        once written."""
        self._writer.put(self.guard.run, "_log_model", folder, registered_name)

    def _log_model(self, folder: str, registered_name: str | None) -> None:
        from tuner.tracking.model import log_staged, register

        # Each step once, even when the write is replayed after failing half-way (logged, not yet registered).
        if self.model is None:
            self.model = log_staged(self.tracking_uri, Path(folder), self.parent_id, self._dataset)
        if registered_name and self.model["registered"] is None:
            self.model["registered"] = register(self.tracking_uri, self.model, self.parent_id, registered_name)


__all__ = ["StudyOutputs"]

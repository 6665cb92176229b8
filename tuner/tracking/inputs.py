"""A study's data as an MLflow dataset input, so the UI's Dataset column names it on the parent and every trial run.

The record is plain JSON (name, digest, source path, synthetic flag): it travels through the spool like the other
trial writes and is turned into MLflow's entities only when written.
"""

from __future__ import annotations

import json
from typing import Any

from tuner.schema import DATASET_CONTEXT, DATASET_CONTEXT_TAG, DATASET_SYNTHETIC_TAG


def dataset_record(name: str, digest: str, source: str, synthetic: bool) -> dict[str, Any]:
    """``digest``: the data fingerprint the study computed; ``source``: the file or folder it was read from (the
    generated file for synthetic data). A synthetic dataset says so in its name, which is what the UI shows."""
    return {"name": f"{name} (synthetic)" if synthetic else name, "digest": digest, "source": source,
            "synthetic": synthetic}  # fmt: skip


def dataset_input(record: dict[str, Any]) -> Any:
    """The ``mlflow.entities.DatasetInput`` of a ``dataset_record``: the data as ``mlflow.log_input`` logs a local
    file (source type ``local``), used for training."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    dataset = Dataset(
        name=record["name"], digest=record["digest"], source_type="local", source=json.dumps({"uri": record["source"]})
    )
    tags = [
        InputTag(DATASET_CONTEXT_TAG, DATASET_CONTEXT),
        InputTag(DATASET_SYNTHETIC_TAG, str(bool(record["synthetic"])).lower()),
    ]
    return DatasetInput(dataset, tags)


__all__ = ["dataset_input", "dataset_record"]

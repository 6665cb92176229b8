"""The publish phase: the chosen trial as an MLflow model in the parent run (MLflow's Models column), with a
signature and an input example, registered in the Model Registry with ``--register NAME``.

The model predicts with the family's own inference (``trainables.family.ServingFamily``; fold models as one, the
mean of their predictions), so its predictions on the test split score exactly the study's test figures. Its files
are staged in the run folder first; when the store does not answer, the write waits in the spool with the trials'
(``tuner sync`` writes it, then records its URI in ``best_config.json``) and the study goes on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainables.family import ServingFamily, load_family
from trainables.reporting import CHECKPOINT_FILE
from tuner.run_files import BEST_CONFIG_FILE, read_json, write_json
from tuner.storage import local_checkpoint
from tuner.study.evaluate import Evaluation
from tuner.study.prepare import Study

MODEL_FOLDER = "model"
"""The staged model's files in the run folder."""
EXAMPLE_ROWS = 5


def publish(study: Study, figures: Evaluation) -> dict[str, Any]:
    """Log the chosen trial's model; what ``best_config.json`` records of it (its URI, registered name and
    version, or why there is none)."""
    reason = _not_published(study, figures)
    if reason:
        study.echo(f"MLflow model: not logged ({reason})")
        return {"uri": None, "note": reason}
    folder = study.plan.run_dir / MODEL_FOLDER
    _stage(study, figures.best, folder, figures.test.values if figures.test else {})
    tracker = study.tracker
    tracker.log_model(str(folder), study.plan.options.register)
    tracker.flush()
    if tracker.model is None:  # the store did not take it: spooled
        note = f"waiting to be written to MLflow ({tracker.guard.reason}); tuner sync writes it"
        study.echo(f"MLflow model: {note}; its files are in {folder}")
        return {"uri": None, "path": str(folder), "note": note}
    return {**tracker.model, "path": str(folder)}


def record_synced_model(run_dir: Path, tracker) -> bool:
    """After ``tuner sync`` wrote a model the study had to spool: ``best_config.json`` says where it is now, in the
    run folder and in the parent run's copy. False when there was no such model."""
    path = run_dir / BEST_CONFIG_FILE
    if tracker.model is None or not path.exists():
        return False
    export = read_json(path, "the study's export")
    recorded = export.get("model") or {}
    if recorded.get("uri"):
        return False
    export["model"] = {**tracker.model, "path": recorded.get("path")}
    write_json(path, export)
    tracker.log_file_to_parent(str(path))
    return True


def _not_published(study: Study, figures: Evaluation) -> str | None:
    spec, data = study.plan.spec, study.data
    if not isinstance(load_family(spec.trainable), ServingFamily):
        return f"the {spec.trainable} family has no predict function yet (trainables.family.ServingFamily)"
    if data is None or "test" not in data.splits:
        return "the space's data has no test split to take an input example from"
    if figures.best.checkpoint_path is None:
        return f"trial {figures.best.trial_id} left no checkpoint"
    return None


def _stage(study: Study, trial, folder, test_figures: dict[str, float]) -> None:
    from tuner.spaces.code import shipped_code
    from tuner.tracking.model import stage
    from tuner.trial import make_context

    spec, data = study.plan.spec, study.data
    family = load_family(spec.trainable)
    ctx = make_context(spec, study.plan.options.seed, "cpu", report=lambda row, ckpt: None)  # as evaluate scores
    # a family whose data has no ``x`` of model inputs says what its model takes (trainables.family)
    example_of = getattr(family, "example_inputs", None)
    example = example_of(data, EXAMPLE_ROWS) if example_of else data.split("test")["x"][:EXAMPLE_ROWS]
    with local_checkpoint(study.plan.options.storage, trial.checkpoint_path) as checkpoint:
        weights = checkpoint / CHECKPOINT_FILE
        state = family.inference_state(trial.config, data, ctx)
        predictions = family.predict(trial.config, state, weights, example)
        stage(
            folder,
            spec.trainable,
            spec.name,
            trial.config,
            state,
            weights,
            example,
            predictions,
            shipped_code(study.plan.space),
            test_figures,
        )


__all__ = ["MODEL_FOLDER", "publish", "record_synced_model"]

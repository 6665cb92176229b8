"""A finished study keeps the weights later commands read and nothing else; ``--keep-checkpoints`` keeps all.

Real parts: a real local Ray, a real MLflow SQLite store, the study's real files (a small steel study, or the
sleep space where no data is needed)."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from benchmarks.sleep_space import sleep_spec
from tuner import spaces
from tuner.cli import main as cli_main
from tuner.errors import TunerError
from tuner.monitor.janitor import CheckpointJanitor, keep_only
from tuner.options import RunOptions
from tuner.study import run_study, verify_study
from tuner.study.analyze import analyze_study
from tuner.study.extend import extend_study
from tuner.study.tidy import KEPT_RECORD


def checkpoints(experiment: Path) -> dict[str, list[set[str]]]:
    """Trial folder -> the file names of each of its checkpoints."""
    return {
        trial.name: [{f.name for f in c.iterdir()} for c in sorted(trial.glob("checkpoint_*"))]
        for trial in experiment.glob("trial_*")
    }


@pytest.mark.slow
def test_a_finished_study_keeps_only_what_later_commands_read_and_they_still_work(ray_instance, tmp_path, capsys):
    spec = spaces.get("steel_multiclass")
    opts = RunOptions(
        trials=6,
        searcher="random",
        scheduler="fifo",
        max_epochs=2,
        seed=3,
        results_dir=tmp_path,
        name="lean",
        dashboard=False,
        progress_every=0,
        verify_top=2,
        verify_seeds=1,
        settings=("cv_folds=1",),
    )
    study = run_study(spec, opts)
    out = capsys.readouterr().out
    kept = json.loads((study.run_dir / "run.json").read_text())[KEPT_RECORD]
    found = checkpoints(study.run_dir / "ray")
    with_weights = {name for name, folders in found.items() if folders}
    assert len(found) == 6 and kept["top"] == 3  # tuner verify's default --top, more than the study's 2
    assert f"trial_{study.export['trial_id']}" in with_weights
    assert len(with_weights) == len(kept["trials"]) < 6
    # the latest checkpoint's weights only: no trial of a finished study resumes
    assert all(folders == [{"model.pt"}] for name, folders in found.items() if name in with_weights), found
    assert not list((study.run_dir / "baseline").glob("trial_*/checkpoint_*"))
    line = next(line for line in out.splitlines() if line.startswith("run folder: "))
    assert line.endswith(f"(checkpoints of {len(kept['trials'])} trial(s) kept; --keep-checkpoints keeps all)")

    quiet = lambda line: None  # noqa: E731
    assert verify_study(spec, "lean", tmp_path, top=2, seeds=1, echo=quiet).export["test"]
    with pytest.raises(TunerError, match=r"--top 4: run lean of steel_multiclass kept the weights of its top 3"):
        verify_study(spec, "lean", tmp_path, top=4, seeds=1, echo=quiet)
    extended = extend_study(spec, "lean", tmp_path, 1, echo=quiet)
    assert extended.export["search"]["trials"] == 7 and extended.export["test"]
    assert analyze_study(spec, "lean", tmp_path, echo=quiet).is_dir()
    capsys.readouterr()
    assert cli_main(["export", "steel_multiclass", "--name", "lean", "--results-dir", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["trial_id"] == extended.export["trial_id"]


@pytest.mark.slow
def test_keep_checkpoints_keeps_every_trials_checkpoint(ray_instance, tmp_path, capsys):
    spec = sleep_spec(max_epochs=2, checkpoint=True)
    opts = RunOptions(
        trials=3,
        searcher="random",
        scheduler="fifo",
        seed=0,
        results_dir=tmp_path,
        name="all",
        dashboard=False,
        progress_every=0,
        verify_top=0,
        keep_checkpoints=True,
    )
    study = run_study(spec, opts)
    found = checkpoints(study.run_dir / "ray")
    assert len(found) == 3 and all(len(folders) == 1 for folders in found.values()), found
    assert KEPT_RECORD not in json.loads((study.run_dir / "run.json").read_text())
    assert "(every checkpoint kept: --keep-checkpoints)" in capsys.readouterr().out


def test_keep_only_leaves_the_kept_trials_weights_and_every_trial_folder(tmp_path):
    for experiment, trial in (("ray", "a"), ("ray", "b"), ("baseline", "a")):
        folder = tmp_path / experiment / f"trial_{trial}" / "checkpoint_000003"
        folder.mkdir(parents=True)
        for name in ("model.pt", "state.pt", "reporter.json"):
            (folder / name).write_text(name)
    (tmp_path / "ray" / "experiment_state-1.json").write_text("{}")

    keep_only(str(tmp_path), {"ray": {"a"}, "baseline": set(), "verify": set()})

    assert checkpoints(tmp_path / "ray") == {"trial_a": [{"model.pt"}], "trial_b": []}
    assert checkpoints(tmp_path / "baseline") == {"trial_a": []}
    assert (tmp_path / "ray" / "experiment_state-1.json").is_file()


def _checkpoint(folder: Path):
    """A stand-in for ``tune.Checkpoint`` (its path and filesystem are all the janitor reads), with real files."""
    import pyarrow.fs

    folder.mkdir(parents=True)
    for name in ("model.pt", "state.pt", "reporter.json"):
        (folder / name).write_text(name)
    return SimpleNamespace(path=str(folder), filesystem=pyarrow.fs.LocalFileSystem())


def test_an_ended_trials_training_state_goes_once_three_snapshots_saw_it_ended(tmp_path):
    janitor = CheckpointJanitor()
    for trial in ("ended", "running", "failed"):
        janitor.register(trial, _checkpoint(tmp_path / f"trial_{trial}" / "checkpoint_000001"))
    janitor.snapshot_taken()
    janitor.trial_ended("ended")  # "failed" ended by an error: Tune may retry it from its checkpoint
    for _ in range(2):  # the newest snapshot may be half-written and the one before still uploading
        janitor.snapshot_taken()
        assert checkpoints(tmp_path)["trial_ended"] == [{"model.pt", "state.pt", "reporter.json"}]
    janitor.snapshot_taken()
    assert checkpoints(tmp_path) == {
        "trial_ended": [{"model.pt"}],
        "trial_running": [{"model.pt", "state.pt", "reporter.json"}],
        "trial_failed": [{"model.pt", "state.pt", "reporter.json"}],
    }


def test_keep_checkpoints_keeps_an_ended_trials_training_state(tmp_path):
    janitor = CheckpointJanitor()
    janitor.drop_ended_states = False
    janitor.register("ended", _checkpoint(tmp_path / "trial_ended" / "checkpoint_000001"))
    janitor.trial_ended("ended")
    for _ in range(5):
        janitor.snapshot_taken()
    assert checkpoints(tmp_path) == {"trial_ended": [{"model.pt", "state.pt", "reporter.json"}]}


@pytest.mark.slow
def test_trials_that_ended_lose_their_training_state_while_the_study_runs(ray_instance, tmp_path):
    """One trial at a time, each 3 epochs of 1 s whose best is the first (so each ends on a checkpoint with its
    training state, as a pruned trial does): Tune snapshots every 2 s, so the first trials' training states go
    while the last one still trains (seen by a thread watching the run folder)."""
    spec = sleep_spec(sleep_s=1.0, max_epochs=3, checkpoint=True)
    spec = dataclasses.replace(spec, fixed={**spec.fixed, "peak_epoch": 1})
    opts = RunOptions(trials=4, searcher="random", scheduler="fifo", seed=0, results_dir=tmp_path, name="lean",
                      dashboard=False, progress_every=0, verify_top=0, max_concurrent=1)  # fmt: skip
    seen: list[dict[str, list[set[str]]]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.5):
            seen.append(checkpoints(tmp_path / "sleep" / "lean" / "ray"))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        run_study(spec, opts, echo=lambda line: None)
    finally:
        done.set()
        watcher.join()
    # A moment when some trial's checkpoint held its weights only while another's still held its training state.
    lean = [
        found
        for found in seen
        if any(folders and folders[-1] == {"model.pt"} for folders in found.values())
        and any(folders and "state.pt" in folders[-1] for folders in found.values())
    ]
    assert lean, seen[-3:]

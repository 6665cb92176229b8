"""A finished study keeps the weights later commands read and nothing else; ``--keep-checkpoints`` keeps all.

Real parts: a real local Ray, a real MLflow SQLite store, the study's real files (a small steel study, or the
sleep space where no data is needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.sleep_space import sleep_spec
from tuner import spaces
from tuner.cli import main as cli_main
from tuner.errors import TunerError
from tuner.monitor.janitor import keep_only
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

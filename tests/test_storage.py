"""``run --storage``: Ray Tune's checkpoints and state in a shared folder or behind a URI (a real pyarrow
filesystem: ``file://`` takes the same path through the code as ``s3://`` without a network)."""

from __future__ import annotations

import json

import pytest

from tests.helpers.cli import run_cli
from tuner.errors import TunerError
from tuner.storage import has_state, local_checkpoint, normalise, study_root


def test_folders_become_absolute_and_uris_stay_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert normalise("shared") == str(tmp_path / "shared")
    assert normalise(f"file://{tmp_path}/remote/") == f"file://{tmp_path}/remote"
    assert normalise(None) is None
    with pytest.raises(TunerError, match=r"^--storage nosuch://x: cannot open this filesystem"):
        normalise("nosuch://x")
    assert study_root(None, tmp_path / "results", "steel_binary", "r1") == f"{tmp_path}/results/steel_binary/r1"
    assert study_root("s3://bucket/p", tmp_path, "steel_binary", "r1") == "s3://bucket/p/steel_binary/r1"


def test_state_and_checkpoints_are_found_through_the_uris_filesystem(tmp_path):
    study = tmp_path / "remote" / "space" / "run"
    assert not has_state(f"file://{study}") and not has_state(str(study))
    (study / "ray").mkdir(parents=True)
    (study / "ray" / "tuner.pkl").write_bytes(b"state")
    assert has_state(f"file://{study}") and has_state(str(study))

    checkpoint = study / "ray" / "trial_1" / "checkpoint_000002"
    checkpoint.mkdir(parents=True)
    (checkpoint / "model.pt").write_text("weights")
    with local_checkpoint(None, str(checkpoint)) as folder:
        assert folder == checkpoint  # a local storage is read in place
    with local_checkpoint(f"file://{tmp_path}/remote", str(checkpoint)) as folder:
        assert folder != checkpoint and (folder / "model.pt").read_text() == "weights"  # downloaded
    assert not folder.exists(), "the download is removed after use"


@pytest.mark.slow
def test_a_study_keeps_its_checkpoints_behind_a_storage_uri_and_evaluates_from_there(tmp_path):
    results, remote = tmp_path / "results", tmp_path / "remote"
    proc = run_cli(
        "run",
        "steel_binary",
        "--trials",
        "3",
        "--max-epochs",
        "3",
        "--no-dashboard",
        "--num-cpus",
        "2",
        "--results-dir",
        str(results),
        "--storage",
        f"file://{remote}",
        "--name",
        "shared",
        "--verify-top",
        "0",
        "--no-report-baseline",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"storage   : file://{remote}/steel_binary/shared/ray" in proc.stdout
    run_dir = results / "steel_binary" / "shared"
    assert not (run_dir / "ray").exists(), "nothing of Ray Tune's in the run's folder"
    study = remote / "steel_binary" / "shared" / "ray"
    assert (study / "tuner.pkl").is_file()
    assert list(study.glob("trial_*/checkpoint_*/model.pt")), "trial checkpoints went to the storage"
    export = json.loads((run_dir / "best_config.json").read_text())
    assert export["search"]["trials"] == 3
    assert 0.0 <= export["test"]["test_accuracy"] <= 1.0, "the best trial was evaluated from its stored checkpoint"
    options = json.loads((run_dir / "run.json").read_text())["options"]
    assert options["storage"] == f"file://{remote}", "resume finds the study where it went"


def test_files_a_study_writes_atomically_are_readable_as_the_umask_says(tmp_path):
    """best_config.json, run.json, progress.json: a tracking server or a colleague running as another user reads
    them (mkstemp alone would leave them 0600)."""
    import os

    from tuner.run_files import write_json

    umask = os.umask(0o022)
    os.umask(umask)
    write_json(tmp_path / "b.json", {"x": 1})
    assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o666 & ~umask
    assert umask & 0o044 or (tmp_path / "b.json").stat().st_mode & 0o044 == 0o044  # readable by others

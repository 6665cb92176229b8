"""Bad input from the command line: one line on stderr, non-zero exit, no traceback, nothing written.

The refusals that come before anything starts run in this process (``run_main``: what ``python -m tuner`` calls, its
output as the terminal gets it); those that come once a local Ray has started run in a fresh process (``slow``)."""

from __future__ import annotations

import pytest

from tests.helpers.cli import run_cli, run_main


@pytest.fixture()
def wrong_columns_csv(tmp_path):
    path = tmp_path / "wrong.csv"
    path.write_text("a,b,c\n1,2,3\n")
    return path


CASES = {
    "unknown space": (["run", "steel_tertiary"], "unknown space 'steel_tertiary'; valid spaces: ecg_cnn2d"),
    "zero trials": (["run", "steel_binary", "--trials", "0"], "--trials must be at least 1, got 0"),
    "negative cpus": (["run", "steel_binary", "--cpus-per-trial", "-1"], "--cpus-per-trial must be a positive"),
    "negative gpus": (["run", "steel_binary", "--gpus-per-trial", "-0.5"], "--gpus-per-trial must be 0 or positive"),
    "bad searcher": (["run", "steel_binary", "--searcher", "bohb"], "invalid choice: 'bohb'"),
    "missing data": (["run", "steel_binary", "--data", "/nonexistent/steel.csv"], "/nonexistent/steel.csv: no such"),
    "missing config": (["run", "steel_binary", "--config", "/nonexistent/best.json"], "/nonexistent/best.json"),
    "unreachable cluster": (["run", "steel_binary", "--address", "127.0.0.1:1"], "cannot reach a Ray cluster"),
    "cpus with address": (
        ["run", "steel_binary", "--num-cpus", "2", "--address", "127.0.0.1:1"],
        "--num-cpus sizes a local Ray instance",
    ),
    "negative retries": (["run", "steel_binary", "--max-retries", "-1"], "--max-retries must be 0 or more, got -1"),
    "resume nothing": (["resume", "steel_binary"], "no run of space steel_binary"),
    "show unknown": (["show", "nope"], "unknown space 'nope'"),
    "export nothing": (["export", "steel_binary"], "no finished run of space steel_binary"),
}


@pytest.mark.parametrize("case", CASES)
def test_cli_error_is_one_line_and_writes_nothing(case, tmp_path, capfd):
    args, message = CASES[case]
    results = tmp_path / "results"
    extra = ["--results-dir", str(results)] if args[0] in ("run", "export", "resume") else []
    proc = run_main(*args, *extra, cwd=tmp_path, capfd=capfd)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert message in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (results / "steel_binary").exists() and not (results / "mlflow.db").exists()


@pytest.mark.slow  # the data is read while the local Ray starts: its refusal comes once Ray has started
def test_csv_with_wrong_columns_names_the_file(tmp_path, wrong_columns_csv):
    results = tmp_path / "results"
    proc = run_cli("run", "steel_binary", "--data", str(wrong_columns_csv), "--results-dir", str(results), cwd=tmp_path)
    assert proc.returncode == 2
    assert (
        proc.stderr.count("\n") == 1 and str(wrong_columns_csv) in proc.stderr and "match neither layout" in proc.stderr
    )
    assert not (results / "steel_binary").exists() and not (results / "mlflow.db").exists()


def test_config_with_unknown_parameter_is_refused(tmp_path, capfd):
    config = tmp_path / "c.json"
    config.write_text('{"lr": 0.001, "learning_rate": 0.1}')
    proc = run_main(
        "run", "steel_binary", "--config", str(config), "--results-dir", str(tmp_path / "r"), cwd=tmp_path, capfd=capfd
    )
    assert proc.returncode == 2 and "unknown parameter(s) learning_rate" in proc.stderr


def test_list_and_show(tmp_path, capfd):
    listing = run_main("list", cwd=tmp_path, capfd=capfd)
    assert listing.returncode == 0
    assert "steel_multiclass" in listing.stdout and "val_macro_accuracy (max)" in listing.stdout
    show = run_main("show", "steel_binary", cwd=tmp_path, capfd=capfd)
    assert show.returncode == 0 and "pos_weight" in show.stdout and "report best config" in show.stdout


@pytest.mark.slow
def test_gpu_request_without_gpus_fails_fast_without_a_run(tmp_path):
    results = tmp_path / "results"
    proc = run_cli(
        "run",
        "steel_binary",
        "--gpus-per-trial",
        "0.5",
        "--no-dashboard",
        "--num-cpus",
        "1",
        "--results-dir",
        str(results),
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    error = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1
    assert "--gpus-per-trial 0.5 asked for GPUs but the Ray cluster has none" in error[0]
    assert "Traceback" not in proc.stderr and not (results / "steel_binary").exists()
    if (results / "mlflow.db").exists():  # the store may be opened while Ray starts; it must hold no run
        from mlflow.tracking import MlflowClient

        client = MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
        experiment = client.get_experiment_by_name("steel_binary")
        assert experiment is None or not client.search_runs([experiment.experiment_id])


def test_a_full_disk_mid_study_is_one_line_naming_the_file_and_the_way_back(monkeypatch, capsys):
    import errno

    import tuner.study
    from tuner.cli import main as cli_main

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/results/steel_binary/r/progress.json")

    monkeypatch.setattr(tuner.study, "run_study", full)
    assert cli_main(["run", "steel_binary"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "error: No space left on device writing /data/results/steel_binary/r/progress.json; free space (or fix "
        "permissions), then continue the study with `tuner resume steel_binary` (what finished before is kept; "
        "traceback in "
    )


def test_a_full_disk_met_inside_ray_tune_or_sqlalchemy_is_the_same_one_line(monkeypatch, capsys):
    import errno

    import tuner.study
    from tuner.cli import main as cli_main

    def full_inside_tune(*args, **kwargs):
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:
            raise RuntimeError("TuneError: trial failed") from exc

    monkeypatch.setattr(tuner.study, "run_study", full_inside_tune)
    assert cli_main(["run", "steel_binary"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: No space left on device; free space") and "resume" in err[0]


def test_a_storage_uri_of_an_unknown_filesystem_is_refused_in_one_line(tmp_path, capfd):
    proc = run_main(
        "run",
        "steel_binary",
        "--trials",
        "2",
        "--storage",
        "nosuch://bucket/studies",
        "--results-dir",
        str(tmp_path / "results"),
        cwd=tmp_path,
        capfd=capfd,
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--storage nosuch://bucket/studies: cannot open" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "results" / "steel_binary").exists()


@pytest.mark.parametrize(
    ("message", "default", "expected"),
    [
        ("\n  \nfirst real line\nsecond line", None, "first real line"),
        ("", None, "ValueError"),
        ("   \n", "nothing said", "nothing said"),
    ],
)
def test_first_line_of_an_error_skips_blank_lines_and_never_fails_on_an_empty_message(message, default, expected):
    from tuner.errors import first_line

    assert first_line(ValueError(message), default) == expected

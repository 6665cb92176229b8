"""``--gpus-per-trial auto``: the packing choice, the probe's training, and its errors on a machine without GPUs."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest

from tests.helpers.cli import PROJECT_ROOT
from tuner import spaces
from tuner.cli import build_parser
from tuner.cli import main as cli_main
from tuner.cluster import ClusterInfo
from tuner.datasets import load_dataset
from tuner.errors import TunerError
from tuner.options import RunOptions
from tuner.packing import AUTO, choose_gpu_share, train_until_first_report
from tuner.study.placement import trial_slots
from tuner.study.plan import resolve

GIB = 1 << 30
TOTAL = 100 * GIB  # with margin 0.25: exactly 75 GiB usable, so the boundaries below are exact


def slots(share: float, gpus: float = 1.0) -> int:
    """Trials the driver lets run at once on ``gpus`` GPUs, CPUs to spare."""
    cluster = ClusterInfo("local", False, cpus=64, gpus=gpus, nodes=1, dashboard_url=None, gpus_per_trial=share)
    return trial_slots(cluster, cpus_per_trial=1)


@pytest.mark.parametrize("per_gpu", [1, 2, 3, 4, 5, 6, 8])
def test_the_largest_packing_that_fits_is_chosen_boundaries_included(per_gpu):
    per_trial = 75 * GIB / per_gpu  # k trials fill the usable memory exactly: k fit
    share, chosen, _ = choose_gpu_share(per_trial - GIB / 2, GIB / 2, TOTAL, margin=0.25)
    assert chosen == per_gpu
    assert share * per_gpu <= 1.0 and slots(share) == per_gpu and slots(share, gpus=4) == 4 * per_gpu
    if per_gpu > 1:  # one byte more and only k-1 fit
        assert choose_gpu_share(per_trial - GIB / 2 + 1, GIB / 2, TOTAL, margin=0.25)[1] == per_gpu - 1


def test_shares_are_exact_for_powers_of_two_and_rounded_down_to_ray_steps_otherwise():
    shares = {k: choose_gpu_share(70 * GIB / k, 0, TOTAL, margin=0.25)[0] for k in (1, 2, 3, 4, 6, 7, 8)}
    assert shares == {1: 1.0, 2: 0.5, 3: 0.3333, 4: 0.25, 6: 0.1666, 7: 0.1428, 8: 0.125}


def test_margin_is_kept_free():
    per_trial = 30 * GIB
    assert choose_gpu_share(per_trial, 0, TOTAL, margin=0.0)[1] == 3  # 90 of 100 GiB
    assert choose_gpu_share(per_trial, 0, TOTAL, margin=0.15)[1] == 2  # 85 GiB usable: a third does not fit
    assert choose_gpu_share(per_trial, 0, TOTAL, margin=0.45)[1] == 1  # 55 GiB usable


def test_cuda_context_is_counted_once_per_trial():
    assert choose_gpu_share(20 * GIB, 0, TOTAL, margin=0.25)[1] == 3
    assert choose_gpu_share(20 * GIB, 6 * GIB, TOTAL, margin=0.25)[1] == 2  # 3 x 26 = 78 > 75
    assert choose_gpu_share(18 * GIB, 7 * GIB, TOTAL, margin=0.25)[1] == 3  # 3 x 25 = 75


def test_packing_stops_at_the_cap():
    share, per_gpu, why = choose_gpu_share(100 * 2**20, 300 * 2**20, TOTAL)
    assert (share, per_gpu) == (0.125, 8) and "at most 8" in why
    assert choose_gpu_share(100 * 2**20, 300 * 2**20, TOTAL, max_per_gpu=4)[:2] == (0.25, 4)
    assert choose_gpu_share(0, 0, TOTAL)[1] == 8


def test_explanation_names_the_figures():
    _, _, why = choose_gpu_share(10 * GIB, GIB / 2, 80 * GIB, margin=0.15)
    assert "peak 10.00 GiB + CUDA context 512 MiB = 10.50 GiB per trial" in why
    assert "68.00 GiB usable of the GPU's 80.00 GiB with a 15% margin" in why
    assert why.endswith("-> 6 trial(s) per GPU, --gpus-per-trial 0.1666") and "\n" not in why


def test_a_trial_that_does_not_fit_alone_is_one_line_naming_the_figures():
    with pytest.raises(TunerError) as raised:
        choose_gpu_share(70 * GIB, GIB, 80 * GIB)  # 71 GiB: on the GPU, but not within 85 % of it
    message = str(raised.value)
    assert "\n" not in message and message.startswith("--gpus-per-trial auto: one trial does not fit")
    for figure in (
        "peak 70.00 GiB",
        "CUDA context 1.00 GiB",
        "71.00 GiB per trial",
        "68.00 GiB usable",
        "GPU's 80.00 GiB",
        "15% margin",
    ):
        assert figure in message
    assert "--gpus-per-trial 1 gives each trial a whole GPU" in message
    with pytest.raises(TunerError, match="needs a smaller config"):
        choose_gpu_share(80 * GIB, GIB, 80 * GIB)


@pytest.mark.parametrize(
    "figures", [(-1, 0, TOTAL), (0, -1, TOTAL), (1, 1, 0), (1, 1, TOTAL, 1.0), (1, 1, TOTAL, 0.1, 0)]
)
def test_impossible_figures_are_refused(figures):
    with pytest.raises(ValueError):
        choose_gpu_share(*figures)


def test_probe_training_stops_at_the_first_report_and_leaves_no_checkpoint(tmp_path, monkeypatch, one_torch_thread):
    spec = spaces.get("steel_binary")
    assert spec.max_epochs > 1
    data = load_dataset(spec.dataset, None, spec.data_options, tmp_path / "data")
    made: list[str] = []
    mkdtemp = tempfile.mkdtemp

    def recording_mkdtemp(*args, **kwargs):  # the reporter's best-epoch checkpoint folders
        made.append(mkdtemp(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(tempfile, "mkdtemp", recording_mkdtemp)
    row = train_until_first_report(spec, spec.active_config(spec.report_config), data, 0, "cpu")
    assert row is not None and row["epoch"] == 1
    assert row["end_reason"] == ""  # the trial would have gone on: the probe cut it
    assert spec.metric in row
    checkpoints = [path for path in made if "tuner-ckpt-" in path]
    assert len(checkpoints) == 1 and not os.path.exists(checkpoints[0])  # written at epoch 1, then removed


def test_gpus_per_trial_parses_numbers_and_auto_only(capsys):
    parse = build_parser().parse_args
    assert parse(["run", "steel_binary", "--gpus-per-trial", "AUTO"]).gpus_per_trial == AUTO
    assert parse(["run", "steel_binary", "--gpus-per-trial", "0.25"]).gpus_per_trial == 0.25
    assert cli_main(["run", "steel_binary", "--gpus-per-trial", "banana"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "--gpus-per-trial: 'banana' is not a number or 'auto'" in err


def test_resolve_keeps_auto_and_refuses_other_words():
    spec = spaces.get("steel_binary")
    opts = resolve(spec, RunOptions(gpus_per_trial=AUTO)).options
    assert opts.gpus_per_trial == AUTO
    with pytest.raises(TunerError, match="--gpus-per-trial 'half': give a number"):
        resolve(spec, RunOptions(gpus_per_trial="half"))


@pytest.mark.slow  # the session's Ray instance starts for it
def test_auto_without_gpus_is_one_line_and_writes_no_run(ray_instance, tmp_path, capsys):
    assert ray_instance.gpus == 0
    results = tmp_path / "results"
    code = cli_main(["run", "steel_binary", "--gpus-per-trial", "auto", "--results-dir", str(results)])
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: ")
    assert "--gpus-per-trial auto needs GPUs; the Ray cluster has none (local instance: 1 node(s)" in captured.err
    assert "GPU probe" not in captured.out  # refused before any probe
    assert not (results / "steel_binary").exists()
    if (results / "mlflow.db").exists():  # the store may be opened while Ray starts; it must hold no run
        from mlflow.tracking import MlflowClient

        client = MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
        experiment = client.get_experiment_by_name("steel_binary")
        assert experiment is None or not client.search_runs([experiment.experiment_id])


# A Ray whose nodes declare GPUs that torch cannot see: the probe task is scheduled on a GPU, receives the spec and
# the data, runs in a worker, and its one-line error comes back. First one GPU node (the probe directly), then two
# (the GPU sizes are read on every node first).
FAKE_GPU_PROBE = """
import sys
from pathlib import Path

import ray
from ray.cluster_utils import Cluster

from tuner import spaces
from tuner.datasets import load_dataset
from tuner.errors import TunerError
from tuner.packing import probe_gpu_memory

spec = spaces.get("steel_binary")
data = load_dataset(spec.dataset, None, spec.data_options, Path(sys.argv[1]))
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 1, "include_dashboard": False})
ray.init(address=cluster.address, log_to_driver=False)
try:
    for nodes in (1, 2):
        if nodes == 2:
            cluster.add_node(num_cpus=1, num_gpus=1)
            cluster.wait_for_nodes()
        try:
            probe_gpu_memory(spec, spec.active_config(spec.report_config), "the report's config", data, 0, 1.0)
            print(f"PROBE{nodes} no error")
        except TunerError as exc:
            print(f"PROBE{nodes} {exc}")
finally:
    ray.shutdown()
    cluster.shutdown()
"""


@pytest.mark.slow
def test_probe_on_gpus_torch_cannot_see_is_a_one_line_error(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "RAY_ADDRESS": "local"}
    proc = subprocess.run(
        [sys.executable, "-c", FAKE_GPU_PROBE, str(tmp_path / "data")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = {line[:6]: line[7:] for line in proc.stdout.splitlines() if line.startswith("PROBE")}
    assert lines["PROBE1"].startswith("--gpus-per-trial auto: on node ")
    assert lines["PROBE2"].startswith("--gpus-per-trial auto: reading GPU sizes, on node ")
    for message in lines.values():
        assert "torch sees no CUDA device in a Ray worker that was given a GPU" in message

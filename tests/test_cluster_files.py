"""The Ray-native files of cluster/, each checked the way its tool reads it.

The cluster launcher YAML goes through Ray's own config preparation and schema validation (what `ray up`
runs before it touches the cloud); the KubeRay manifests are checked against the fields of KubeRay's
ray.io/v1 CRDs; the commands the files run are parsed by tuner's own CLI parser; the shell scripts pass
`bash -n`. One slow test starts a real two-node cluster on this machine with cluster/local_cluster.sh.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from tests.helpers.cli import PROJECT_ROOT as ROOT
from tests.helpers.cluster import LOCAL_SCRIPT, free_base_port, port_free, process_trees, run_local_script
from tuner import spaces
from tuner.cli import build_parser

CLUSTER = ROOT / "cluster"
SHELL_SCRIPTS = [LOCAL_SCRIPT, CLUSTER / "slurm.sbatch"]


def load_yaml(path: Path):
    with path.open() as f:
        return yaml.safe_load(f)


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def requirement_name(requirement: str) -> str:
    name = re.match(r"[A-Za-z0-9._-]+", requirement.strip()).group(0)
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_ray_version() -> str:
    for dep in pyproject()["project"]["dependencies"]:
        if requirement_name(dep) == "ray":
            match = re.search(r"==\s*([\w.]+)", dep)
            assert match, f"pyproject.toml should pin Ray exactly: {dep}"
            return match.group(1)
    raise AssertionError("pyproject.toml has no ray dependency")


def python_tag() -> str:
    """'py311' for requires-python '>=3.11,<3.12'."""
    match = re.search(r">=\s*3\.(\d+)", pyproject()["project"]["requires-python"])
    return f"py3{match.group(1)}"


def ci_torch_pins() -> dict[str, str]:
    """The torch/torchvision versions .ci/run installs (the project's tested build)."""
    text = (ROOT / ".ci" / "run").read_text()
    pins = dict(re.findall(r'"(torch|torchvision)==([\w.+]+)"', text))
    assert set(pins) == {"torch", "torchvision"}, f".ci/run should pin torch and torchvision: {pins}"
    return pins


def parse_tuner_run(command: str):
    """A `python -m tuner run ...` command line (leading VAR=value assignments allowed), parsed by tuner's CLI."""
    words = shlex.split(command)
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        words.pop(0)
    assert words[:4] == ["python", "-m", "tuner", "run"], f"not a `python -m tuner run` command: {command!r}"
    args = build_parser().parse_args(words[3:])
    assert args.space in spaces.names(), f"unknown space {args.space!r} in {command!r}"
    return args


def assert_trials_pack_a_node(space: str, gpus_per_trial: float, node_cpus: float, node_gpus: float) -> None:
    """The CPUs of a GPU node must not be what limits how many trials share its GPUs."""
    assert 0 < gpus_per_trial <= node_gpus, f"a trial asks {gpus_per_trial} GPU, a node has {node_gpus}"
    cpus_per_trial = spaces.get(space).resources.cpus
    by_gpu = int(node_gpus / gpus_per_trial + 1e-9)
    by_cpu = int(node_cpus / cpus_per_trial + 1e-9)
    assert by_cpu >= by_gpu, (
        f"{space}: {by_gpu} trials fit a node's {node_gpus:g} GPU(s) but only {by_cpu} its {node_cpus:g} CPUs "
        f"({cpus_per_trial:g} CPU per trial)"
    )


# ------------------------------------------------------------------------------------------- shell scripts
@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_shell_script_parses(script):
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(["frobnicate"], "unknown command 'frobnicate'", id="bad-subcommand"),
        pytest.param([], "missing command", id="no-subcommand"),
        pytest.param(
            ["start", "--workers", "two"], "--workers expects a non-negative integer, got 'two'", id="non-numeric"
        ),
        pytest.param(
            ["start", "--worker-cpus", "-1"], "--worker-cpus expects a non-negative integer, got '-1'", id="negative"
        ),
        pytest.param(["start", "--port", "80"], "--port must be between 1024 and", id="privileged-port"),
        pytest.param(["start", "--workers", "99"], "--workers must be at most", id="too-many-workers"),
        pytest.param(["start", "--head-cpus"], "--head-cpus expects a value", id="missing-value"),
        pytest.param(
            ["stop", "--workers", "2"],
            "--workers is an option of 'start', not of 'stop'",
            id="option-of-another-command",
        ),
        pytest.param(["status", "--verbose"], "unknown option '--verbose' for 'status'", id="unknown-option"),
    ],
)
def test_local_script_usage_errors_are_one_line(args, expected):
    result = run_local_script(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cluster/local_cluster.sh: ") and expected in lines[0]


def test_local_script_help_lists_the_commands():
    result = run_local_script("--help")
    assert result.returncode == 0, result.stderr
    for command in ("start", "status", "stop", "--workers", "--worker-gpus", "ray get-auth-token"):
        assert command in result.stdout


def test_local_script_stop_and_status_without_a_cluster(tmp_path):
    state = tmp_path / "none"
    stop = run_local_script("stop", "--dir", str(state))
    assert stop.returncode == 0 and "nothing to stop" in stop.stdout
    status = run_local_script("status", "--dir", str(state))
    assert status.returncode == 3 and "no cluster running" in status.stdout


# -------------------------------------------------------------------------------------------------- SLURM
def test_slurm_script_runs_tuner_with_parseable_defaults():
    text = (CLUSTER / "slurm.sbatch").read_text()
    match = re.search(r"^TUNER_ARGS=\((.*)\)$", text, re.MULTILINE)
    assert match, "slurm.sbatch should define its default `tuner run` arguments as TUNER_ARGS=(...)"
    args = parse_tuner_run(f"python -m tuner run {match.group(1)}")
    directives = dict(re.findall(r"^#SBATCH --([\w-]+)(?:=(\S+))?", text, re.MULTILINE))
    assert int(directives["nodes"]) >= 2, "a head node and at least one worker node"
    assert directives["ntasks-per-node"] == "1", "one `ray start` per node"
    gpus = float(directives.get("gpus-per-task", 0))
    if args.gpus_per_trial:
        assert_trials_pack_a_node(args.space, args.gpus_per_trial, float(directives["cpus-per-task"]), gpus)
    # The documented Ray-on-SLURM pattern: head on the first node, workers elsewhere, all blocking in srun.
    assert re.search(r"srun --nodes=1 --ntasks=1 -w \"\$head_node\"\s*\\\n\s*ray start --head", text)
    assert re.search(r"srun --nodes=1 --ntasks=1 -w \"\$node\"\s*\\\n\s*ray start --address=\"\$head_address\"", text)
    code = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert sum(line.rstrip().endswith("--block &") for line in code) == 2
    assert 'python -m tuner run "${TUNER_ARGS[@]}" --address "$head_address"' in text
    assert "trap stop_ray EXIT" in text


# ---------------------------------------------------------------------------------------- cluster launcher
@pytest.fixture(scope="module")
def aws_config() -> dict:
    return load_yaml(CLUSTER / "aws.yaml")


def test_aws_yaml_passes_rays_own_validation(aws_config):
    # What `ray up` does before it contacts AWS: merge with Ray's AWS defaults, check against Ray's schema
    # (ray/autoscaler/ray-schema.json) and the head/worker bounds.
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(aws_config)
    validate_config(prepared)
    assert prepared["provider"]["type"] == "aws"
    assert prepared["provider"]["region"]


def test_aws_yaml_node_types(aws_config):
    types = aws_config["available_node_types"]
    head = aws_config["head_node_type"]
    assert head in types
    workers = {name: t for name, t in types.items() if name != head}
    assert workers, "at least one worker node type"
    assert sum(t.get("min_workers", 0) for t in workers.values()) <= aws_config["max_workers"]
    for name, node_type in workers.items():
        assert isinstance(node_type["min_workers"], int) and isinstance(node_type["max_workers"], int), name
        assert 0 <= node_type["min_workers"] <= node_type["max_workers"] <= aws_config["max_workers"], name
    gpu_types = {name: t for name, t in workers.items() if t["resources"].get("GPU", 0) > 0}
    assert gpu_types, "a worker type declares GPU resources"
    for name, node_type in gpu_types.items():
        assert re.match(r"(g|p)\d", node_type["node_config"]["InstanceType"]), f"{name} is not a GPU instance"
        assert node_type["min_workers"] >= 1, f"{name}: tuner sizes a study from the GPUs alive at its start"
        assert_trials_pack_a_node("hms_b1", 0.25, node_type["resources"]["CPU"], node_type["resources"]["GPU"])
    assert types[head]["resources"].get("GPU", 0) == 0


def test_aws_yaml_installs_tuner_and_matches_the_project(aws_config):
    pins = ci_torch_pins()
    setup = "\n".join(aws_config["setup_commands"])
    assert f"torch=={pins['torch']}" in setup and f"torchvision=={pins['torchvision']}" in setup
    assert setup.index("torch==") < setup.index("pip install --quiet -e ~/tuner"), "torch before the project"
    assert aws_config["file_mounts"]["~/tuner"] == "."
    assert ".venv" in aws_config["rsync_exclude"]
    images = [aws_config["docker"]["head_image"], aws_config["docker"]["worker_image"]]
    for image in images:
        assert image.startswith(f"rayproject/ray:{pinned_ray_version()}-{python_tag()}"), image
    assert images[1].endswith("-gpu")
    head_start = " ".join(aws_config["head_start_ray_commands"])
    worker_start = " ".join(aws_config["worker_start_ray_commands"])
    port = re.search(r"ray start --head --port=(\d+)", head_start).group(1)
    assert f"ray start --address=$RAY_HEAD_IP:{port}" in worker_start
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in head_start
    for start in (head_start, worker_start):
        assert "RAY_AUTH_MODE=token ray start" in start
    assert aws_config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"


# ---------------------------------------------------------------------------------------------- KubeRay
@pytest.fixture(scope="module")
def raycluster() -> dict:
    return load_yaml(CLUSTER / "kuberay" / "raycluster.yaml")


@pytest.fixture(scope="module")
def rayjob() -> dict:
    return load_yaml(CLUSTER / "kuberay" / "rayjob.yaml")


def check_cluster_spec(spec: dict) -> None:
    """A RayClusterSpec as KubeRay's ray.io/v1 CRD defines it, with tuner's choices."""
    assert spec["rayVersion"] == pinned_ray_version()
    assert spec["authOptions"]["mode"] == "token"
    head = spec["headGroupSpec"]
    assert isinstance(head.get("rayStartParams", {}), dict)
    assert all(isinstance(v, str) for v in head.get("rayStartParams", {}).values()), "rayStartParams are strings"
    head_containers = head["template"]["spec"]["containers"]
    assert head_containers[0]["name"] == "ray-head"
    assert {p["containerPort"] for p in head_containers[0]["ports"]} >= {6379, 8265, 10001}
    assert "nvidia.com/gpu" not in head_containers[0]["resources"].get("limits", {})
    images = [head_containers[0]["image"]]
    groups = spec["workerGroupSpecs"]
    assert groups and len({g["groupName"] for g in groups}) == len(groups)
    gpu_groups = 0
    for group in groups:
        for key in ("minReplicas", "maxReplicas", "replicas"):
            assert isinstance(group[key], int), f"{group['groupName']}.{key}"
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], group["groupName"]
        assert isinstance(group.get("rayStartParams", {}), dict)
        container = group["template"]["spec"]["containers"][0]
        images.append(container["image"])
        limits, requests = container["resources"]["limits"], container["resources"]["requests"]
        if "nvidia.com/gpu" in limits:
            gpus = limits["nvidia.com/gpu"]
            assert isinstance(gpus, int) and gpus >= 1
            assert requests.get("nvidia.com/gpu", gpus) == gpus, "Kubernetes needs GPU requests == limits"
            assert container["image"].endswith("-gpu"), "GPU workers need the CUDA image"
            assert group["minReplicas"] >= 1, "tuner sizes a study from the GPUs alive at its start"
            gpu_groups += 1
    assert gpu_groups, "a worker group with nvidia.com/gpu limits"
    for image in images:
        assert image.startswith(f"rayproject/ray:{spec['rayVersion']}-{python_tag()}"), image


def test_raycluster_manifest(raycluster):
    assert raycluster["apiVersion"] == "ray.io/v1"
    assert raycluster["kind"] == "RayCluster"
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", raycluster["metadata"]["name"])
    check_cluster_spec(raycluster["spec"])


def test_rayjob_manifest(rayjob, raycluster):
    assert rayjob["apiVersion"] == "ray.io/v1"
    assert rayjob["kind"] == "RayJob"
    spec = rayjob["spec"]
    check_cluster_spec(spec["rayClusterSpec"])
    assert spec["rayClusterSpec"] == raycluster["spec"], "rayjob.yaml's cluster should be raycluster.yaml's"
    assert isinstance(spec["shutdownAfterJobFinishes"], bool)
    assert isinstance(spec["ttlSecondsAfterFinished"], int) and spec["ttlSecondsAfterFinished"] >= 0
    assert isinstance(spec["activeDeadlineSeconds"], int) and spec["activeDeadlineSeconds"] > 0
    assert spec.get("submissionMode", "K8sJobMode") in ("K8sJobMode", "HTTPMode", "InteractiveMode")


def test_rayjob_entrypoint_is_a_tuner_study_that_fits_the_cluster(rayjob):
    spec = rayjob["spec"]
    args = parse_tuner_run(spec["entrypoint"])
    assert args.address == "auto", "the entrypoint runs on the head; the job sets RAY_ADDRESS"
    head = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    mounts = [m["mountPath"] for c in head["containers"] for m in c.get("volumeMounts", [])]
    assert any(args.results_dir.is_relative_to(m) for m in mounts), "--results-dir should be the head's volume"
    # trials run on the GPU workers, which cannot write the head's volume: checkpoints need shared storage
    assert args.storage and urlparse(args.storage).scheme in ("s3", "gs"), args.storage
    worker = next(
        g
        for g in spec["rayClusterSpec"]["workerGroupSpecs"]
        if "nvidia.com/gpu" in g["template"]["spec"]["containers"][0]["resources"]["limits"]
    )
    limits = worker["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert_trials_pack_a_node(args.space, args.gpus_per_trial, float(limits["cpu"]), limits["nvidia.com/gpu"])
    slots_at_start = worker["minReplicas"] * int(limits["nvidia.com/gpu"] / args.gpus_per_trial)
    if args.max_concurrent and args.max_concurrent > slots_at_start:
        slots_at_most = worker["maxReplicas"] * int(limits["nvidia.com/gpu"] / args.gpus_per_trial)
        assert args.max_concurrent <= slots_at_most, "queued trials beyond maxReplicas could never start"


def test_rayjob_runtime_env_installs_the_projects_dependencies(rayjob):
    runtime_env = yaml.safe_load(rayjob["spec"]["runtimeEnvYAML"])
    assert set(runtime_env) <= {"working_dir", "pip", "env_vars", "excludes", "py_modules", "config"}
    source = urlparse(runtime_env["working_dir"])
    assert source.scheme in ("https", "s3", "gs") and source.path.endswith(".zip"), runtime_env["working_dir"]
    pip = {requirement_name(r): r for r in runtime_env["pip"]}
    wanted = {requirement_name(d) for d in pyproject()["project"]["dependencies"]} - {"ray"}
    assert wanted <= set(pip), f"missing from the RayJob's pip: {sorted(wanted - set(pip))}"
    assert "ray" not in pip, "Ray comes with the image; a pip Ray could differ from the cluster's"
    for package, version in ci_torch_pins().items():
        assert pip[package] == f"{package}=={version}"
    # inside a job tuner keeps the job's runtime env; overriding it would drop this working_dir and pip list
    assert "RAY_OVERRIDE_JOB_RUNTIME_ENV" not in runtime_env.get("env_vars", {})


# ------------------------------------------------------------------------------- a real local cluster
ALIVE_NODES = """
import json, sys
import ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
print(json.dumps([
    {"head": "node:__internal_head__" in n["Resources"], "cpus": n["Resources"].get("CPU", 0)}
    for n in ray.nodes() if n["Alive"]
]))
"""


@pytest.mark.slow
def test_local_cluster_starts_two_nodes_and_stops_cleanly(ray_instance):
    import psutil
    import ray

    session_nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    port = free_base_port()
    # A short state directory: Ray's Unix socket paths under it must stay below 107 characters.
    state = Path(tempfile.mkdtemp(prefix="trc-", dir="/tmp"))
    started: list = []
    try:
        t0 = time.monotonic()
        start = run_local_script(
            "start",
            "--workers",
            "1",
            "--head-cpus",
            "1",
            "--worker-cpus",
            "1",
            "--port",
            str(port),
            "--dir",
            str(state),
            timeout=240,
        )
        start_s = time.monotonic() - t0
        assert start.returncode == 0, start.stdout + start.stderr
        started = process_trees(state)
        assert started, "the script recorded no node processes"
        address = re.search(r"^address\s+(\S+)$", start.stdout, re.MULTILINE).group(1)
        assert address.endswith(f":{port}")
        assert f"--address {address}" in start.stdout and "ray get-auth-token" in start.stdout

        env = {**os.environ, "RAY_AUTH_MODE": "token"}
        env.pop("RAY_ADDRESS", None)
        probe = subprocess.run(
            [sys.executable, "-c", ALIVE_NODES, address], capture_output=True, text=True, timeout=120, env=env
        )
        assert probe.returncode == 0, probe.stderr
        nodes = json.loads(probe.stdout.strip().splitlines()[-1])
        assert len(nodes) == 2 and sorted(n["head"] for n in nodes) == [False, True], nodes
        assert [n["cpus"] for n in nodes] == [1.0, 1.0]

        status = run_local_script("status", "--port", str(port), "--dir", str(state), timeout=120)
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.count("CPU 1") == 2

        # The test session's own Ray (ray.init in conftest) neither sees these nodes nor is touched by them.
        assert {n["NodeID"] for n in ray.nodes() if n["Alive"]} == session_nodes

        started += process_trees(state)  # and whatever the nodes started since
        t0 = time.monotonic()
        stop = run_local_script("stop", "--port", str(port), "--dir", str(state), timeout=120)
        stop_s = time.monotonic() - t0
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert "stopped 2 node(s)" in stop.stdout
        alive = [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not alive, f"left running: {[(p.pid, p.name()) for p in alive]}"
        assert not state.exists()
        assert port_free(port)
        assert {n["NodeID"] for n in ray.nodes() if n["Alive"]} == session_nodes
        print(f"local cluster: start {start_s:.1f}s, stop {stop_s:.1f}s")
    finally:
        if state.exists():
            run_local_script("stop", "--port", str(port), "--dir", str(state), timeout=120)
        for proc in started:  # only what this test started, if the script's own stop failed
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        shutil.rmtree(state, ignore_errors=True)

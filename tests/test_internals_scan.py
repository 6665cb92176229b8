"""Only ``tuner.internals`` reaches into Ray Tune, Ray core and MLflow: an AST scan of the project's code finds
any other module that uses a private name of ray or mlflow or names one of Tune's files."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.helpers.cli import PROJECT_ROOT

SCANNED = ("tuner", "trainables", "search_spaces", "benchmarks")
ADAPTER = PROJECT_ROOT / "tuner" / "internals"
LIBRARIES = ("ray", "mlflow")

KNOWN_PRIVATE = {
    "_hpopt_trials", "_convert_categories_to_indices", "_local_tuner", "_results", "_time_attr", "_metric",
    "_iterators", "_total_samples", "_finished", "_system_config", "_use_tracking_uri", "_private", "_internal",
    "_tracking_service",
}  # fmt: skip
"""Private names of Ray Tune, Ray core and MLflow objects tuner has used: flagged wherever they appear."""

INTERNAL_NAMES = {"class_cache", "DEFAULT_ENV_VARS", "tag_callbacks"}
"""Names without an underscore that are internal all the same (Tune's execution package, its telemetry)."""
INTERNAL_MODULES = ("ray.tune.execution", "ray.tune.impl", "ray.air._internal")
"""Packages of Ray Tune with no public API in them."""

OWN_PRIVATE_ALLOWED: set[str] = set()
"""Private attribute names of the project's own that the scan cannot see defined (none so far)."""

TUNE_FILES = re.compile(
    r"experiment_state|tuner\.pkl|callback-states|searcher-state|search_gen_state|basic-variant-state"
    r"|^checkpoint_$|checkpoint_(\d|\*|\{)"
)
"""Names of the files and folders Ray Tune writes in an experiment folder."""

PRIVATE_MODULE = re.compile(r"^(ray|mlflow)(\.\w+)*\._")


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _library(module: str | None) -> bool:
    return module is not None and module.split(".")[0] in LIBRARIES


def own_private_names(trees: list[ast.AST]) -> set[str]:
    """Private names the project defines itself (functions, classes, ``self._x = ...`` attributes)."""
    names = set(OWN_PRIVATE_ALLOWED)
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return {name for name in names if _is_private(name)} - KNOWN_PRIVATE


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that stand alone as statements (docstrings, attribute docstrings)."""
    return {
        id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }


def _library_roots(tree: ast.AST) -> set[str]:
    """Names bound to ray or mlflow modules or objects by the file's imports (``import ray``, ``from ray import
    tune``, ``from ray.tune.search import HyperOptSearch``)."""
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {(a.asname or a.name.split(".")[0]) for a in node.names if _library(a.name)}
        elif isinstance(node, ast.ImportFrom) and _library(node.module):
            roots |= {a.asname or a.name for a in node.names}
    return roots


def _chain_root(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def violations(source: str, filename: str, own: set[str]) -> list[str]:
    """``file:line: what`` for each use of a private ray/mlflow name or of a Tune file name in ``source``."""
    tree = ast.parse(source, filename)
    found = []
    roots = _library_roots(tree)
    uses_library = bool(roots)
    docstrings = _docstrings(tree)

    def flag(node: ast.AST, what: str) -> None:
        found.append(f"{filename}:{node.lineno}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _library(alias.name) and any(_is_private(part) for part in alias.name.split(".")):
                    flag(node, f"imports private module {alias.name}")
        elif isinstance(node, ast.ImportFrom) and _library(node.module):
            if any(_is_private(part) for part in node.module.split(".")):
                flag(node, f"imports from private module {node.module}")
            elif node.module.startswith(INTERNAL_MODULES):
                flag(node, f"imports from internal module {node.module}")
            for alias in node.names:
                if _is_private(alias.name):
                    flag(node, f"imports private name {alias.name} from {node.module}")
        elif isinstance(node, ast.Attribute) and node.attr in INTERNAL_NAMES:
            flag(node, f"uses internal attribute {node.attr}")
        elif isinstance(node, ast.Attribute) and _is_private(node.attr):
            if node.attr in KNOWN_PRIVATE:
                flag(node, f"uses private attribute {node.attr} of a Ray/MLflow object")
            elif _chain_root(node) in roots:
                flag(node, f"uses private attribute {node.attr} of {_chain_root(node)}")
            elif uses_library and node.attr not in own:
                flag(node, f"uses private attribute {node.attr}, which the project does not define")
        elif isinstance(node, ast.keyword) and node.arg in KNOWN_PRIVATE:
            flag(node.value, f"passes private argument {node.arg}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            text = node.value
            if text in KNOWN_PRIVATE or PRIVATE_MODULE.match(text):
                flag(node, f"names private {text!r}")
            elif (match := TUNE_FILES.search(text)) is not None:
                flag(node, f"names Ray Tune's file {match.group(0)!r} (in {text!r})")
    return found


def project_files() -> list[Path]:
    files = [p for folder in SCANNED for p in sorted((PROJECT_ROOT / folder).rglob("*.py"))]
    return [p for p in files if ADAPTER not in p.parents]


def test_no_module_outside_the_adapter_reaches_into_ray_or_mlflow():
    files = project_files()
    assert len(files) > 50, f"the scan found only {len(files)} files under {SCANNED}"
    sources = {p: p.read_text() for p in files}
    every = [*sources.items(), *((p, p.read_text()) for p in ADAPTER.glob("*.py"))]
    own = own_private_names([ast.parse(text) for _, text in every])
    found = [v for path, text in sources.items() for v in violations(text, str(path.relative_to(PROJECT_ROOT)), own)]
    assert not found, "private Ray/MLflow use outside tuner/internals (move it there):\n" + "\n".join(found)


TESTS_ALLOWED = {
    "tests/test_cluster_files.py": "ray.autoscaler._private.util",  # `ray up`'s own YAML check: no public API runs it
}
"""Private names a test file may use, each with the reason no adapter function stands for it."""


def test_tests_use_no_private_name_of_ray_or_mlflow_outside_the_adapters_tests():
    """Tests reach Ray and MLflow through the adapter too, so an upgrade breaks tests/test_internals*.py first; they
    may read Tune's files (a test of what the janitor leaves on disk has to look at the disk)."""
    tests = [p for p in sorted((PROJECT_ROOT / "tests").rglob("*.py")) if not p.name.startswith("test_internals")]
    sources = {p: p.read_text() for p in [*tests, *project_files(), *ADAPTER.glob("*.py")]}
    own = own_private_names([ast.parse(text) for text in sources.values()])
    found = []
    for path in tests:
        name = str(path.relative_to(PROJECT_ROOT))
        for v in violations(sources[path], name, own):
            allowed = TESTS_ALLOWED.get(name)
            if "Ray Tune's file" not in v and not (allowed and allowed in v):
                found.append(v)
    assert len(tests) > 40, f"the scan found only {len(tests)} test files"
    assert not found, "private Ray/MLflow use in tests (use tuner.internals' function):\n" + "\n".join(found)


PLANTED = '''
"""A docstring may name experiment_state-*.json and ray._private freely."""
import ray
from ray import tune
from ray._private.worker import global_worker
from ray.air._internal import usage
from mlflow.tracking._tracking_service.utils import _use_tracking_uri
from tuner.session import _ray_internals

url = ray._private.worker.global_worker.node
tune.Tuner._local_tuner
searcher._hpopt_trials
scheduler._made_up_private
self._own_attribute = 1
self._own_attribute
ray.init(_system_config={})
states = folder.glob("experiment_state-*.json")
marker = f"{folder}/tuner.pkl"
logger = "ray._private.authentication"
folders = [n for n in names if n.startswith("checkpoint_")]
fine = "checkpoint_every_s"
from ray.tune.execution import class_cache
class_cache.DEFAULT_ENV_VARS.clear()
'''


def test_the_scan_catches_each_kind_of_violation():
    own = own_private_names([ast.parse(PLANTED)])
    found = violations(PLANTED, "planted.py", own)
    expected = [
        "planted.py:5: imports from private module ray._private.worker",
        "planted.py:6: imports from private module ray.air._internal",
        "planted.py:7: imports from private module mlflow.tracking._tracking_service.utils",
        "planted.py:7: imports private name _use_tracking_uri from mlflow.tracking._tracking_service.utils",
        "planted.py:10: uses private attribute _private of a Ray/MLflow object",
        "planted.py:11: uses private attribute _local_tuner of a Ray/MLflow object",
        "planted.py:12: uses private attribute _hpopt_trials of a Ray/MLflow object",
        "planted.py:13: uses private attribute _made_up_private, which the project does not define",
        "planted.py:16: passes private argument _system_config",
        "planted.py:17: names Ray Tune's file 'experiment_state' (in 'experiment_state-*.json')",
        "planted.py:18: names Ray Tune's file 'tuner.pkl' (in '/tuner.pkl')",
        "planted.py:19: names private 'ray._private.authentication'",
        "planted.py:20: names Ray Tune's file 'checkpoint_' (in 'checkpoint_')",
        "planted.py:22: imports from internal module ray.tune.execution",
        "planted.py:23: uses internal attribute DEFAULT_ENV_VARS",
    ]
    assert sorted(found) == sorted(expected), "\n".join(sorted(found))


def test_a_project_of_its_own_private_names_is_not_flagged_without_ray():
    source = "from tuner import mlp\nmlp._rows(1)\nhelper._made_up_private\n"
    assert violations(source, "own.py", set()) == []

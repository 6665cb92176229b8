"""A space of the user's own, found without editing tuner: by file path, module path or entry point; every mistake
in naming it is one line, exit 2, and nothing written. (The studies of such spaces: ``test_own_space_studies.py``.)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli
from tests.helpers.outside_project import write_distribution, write_project
from tuner import spaces
from tuner.cli import main
from tuner.errors import TunerError
from tuner.spaces.record import check_unchanged, record


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _imports_stay_with_the_test(monkeypatch):
    """What a reference puts on the import path, and the user modules it imports, go with the test."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A user's project folder outside the repository, the working directory of the test."""
    monkeypatch.chdir(tmp_path)
    return write_project(tmp_path / "proj")


def test_a_space_file_is_shown_and_its_folder_named_as_its_origin(project, capsys):
    code, out, err = _cli(capsys, "show", "proj/space.py")
    assert code == 0, err
    assert out.startswith("outside: sleeps each epoch") and f"from       : file {project}:SPEC" in out
    code, out, _ = _cli(capsys, "show", f"{project}:OTHER")  # an attribute other than SPEC
    assert code == 0 and f"file {project}:OTHER" in out


def test_a_module_path_names_a_space_with_or_without_its_attribute(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(tmp_path))
    write_project(tmp_path, name="pkgspace", package="userpkg")
    for ref in ("userpkg.space", "userpkg.space:OTHER"):
        space = spaces.load(ref)
        assert space.spec.name == "pkgspace" and space.spec.trainable == "userpkg.family"
        assert space.source.ref == ref if ":" in ref else space.source.ref == f"{ref}:SPEC"
        assert space.source.folder == str(tmp_path)  # found outside site-packages: the folder is recorded


BAD = {
    "missing file": ("./nope/space.py", "error: space file ./nope/space.py: no such file"),
    "import error": ("proj/space.py", "does not import: NameError: name 'undefined_name' is not defined"),
    "a syntax error": ("proj/space.py", "space.py does not import: SyntaxError: invalid syntax ("),
    "no SPEC": ("proj/space.py:NOPE", "defines no NOPE; SpaceSpec objects in it: SPEC, OTHER"),
    "wrong type": ("proj/space.py:Param", "proj/space.py:Param: Param is a type, not a tuner.SpaceSpec"),
    "a family without train": ("proj/space.py", "its family module family defines no train() (see tuner.ModelFamily)"),
    "a loader that is not callable": ("proj/space.py", "dataset data:load: load is a int, not a function"),
    "an unknown word": ("steel_multiclas", "unknown space 'steel_multiclas'; valid spaces: ecg_cnn2d, "),
    "a registered name taken": ("proj/space.py", "is named 'steel_binary', which is registered by tuner 0.1.0"),
}
"""What each bad reference prints (after the project's files were broken as the case says)."""


def _break(project: Path, case: str) -> None:
    folder = project.parent
    if case == "import error":
        project.write_text(project.read_text() + "\nundefined_name\n")
    elif case == "a syntax error":
        project.write_text(project.read_text() + "\ndef (\n")
    elif case == "a family without train":
        text = (folder / "family.py").read_text().replace("def train(", "def fit(")
        (folder / "family.py").write_text(text)
    elif case == "a loader that is not callable":
        (folder / "data.py").write_text((folder / "data.py").read_text() + "\nload = 3\n")
    elif case == "a registered name taken":
        project.write_text(project.read_text().replace('name="outside"', 'name="steel_binary"'))


@pytest.mark.parametrize("case", BAD)
def test_a_bad_reference_is_one_line_exit_2_and_nothing_written(case, project, capsys):
    ref, expected = BAD[case]
    _break(project, case)
    code, out, err = _cli(capsys, "run", ref, "--trials", "2")
    assert code == 2, (out, err)
    assert len(err.splitlines()) == 1 and expected in err, err
    assert not (project.parent.parent / "results").exists()


def test_installed_distributions_register_spaces_and_a_name_taken_twice_is_one_error(tmp_path):
    """Entry points of installed packages, seen by a fresh ``tuner list`` (a ``.dist-info`` on its path)."""
    site = tmp_path / "site"
    write_project(site, name="pkg_space", package="userpkg")
    write_distribution(site, "userpkg", {"pkg_space": "userpkg.space:SPEC"})
    env = {"PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    listed = run_cli("list", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith("pkg_space "))
    assert row.split()[-2:] == ["userpkg", "1.0"]
    assert any(line.startswith("steel_binary ") and line.endswith("tuner 0.1.0") for line in listed.stdout.splitlines())
    shown = run_cli("show", "pkg_space", cwd=tmp_path, env=env)
    assert shown.returncode == 0 and "from       : registered by userpkg 1.0" in shown.stdout

    write_distribution(site, "otherpkg", {"pkg_space": "otherpkg.space:SPEC"})
    for command in (["list"], ["run", "pkg_space", "--trials", "1"]):
        twice = run_cli(*command, cwd=tmp_path, env=env)
        assert twice.returncode == 2 and len(twice.stderr.splitlines()) == 1, twice.stderr
        assert (
            "error: space 'pkg_space' is registered twice: by userpkg 1.0 (userpkg.space:SPEC) and otherpkg 1.0 "
            "(otherpkg.space:SPEC)"
        ) in twice.stderr


def test_a_registered_name_that_does_not_match_its_spec_is_refused(tmp_path, monkeypatch):
    site = tmp_path / "site"
    write_project(site, name="inner_name", package="userpkg")
    write_distribution(site, "userpkg", {"outer_name": "userpkg.space:SPEC"})
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(TunerError, match="is a SpaceSpec named 'inner_name'; the registered name and the spec's"):
        spaces.load("outer_name")


def test_a_space_whose_parameters_changed_is_refused_and_changed_code_is_warned(project):
    space = spaces.load(str(project))
    recorded = json.loads(json.dumps(record(space)))  # as run.json keeps it
    assert check_unchanged(space, recorded, "r1") == []
    family = project.parent / "family.py"
    family.write_text(family.read_text() + "\n# edited\n")
    assert check_unchanged(spaces.load(str(project)), recorded, "r1") == [
        f"warning: {family} changed since run r1 started; continuing with it as it is now"
    ]
    project.write_text(project.read_text().replace("Uniform(0.0, 1.0)", "Uniform(0.0, 2.0)"))
    with pytest.raises(TunerError, match=r"its params changed \(was x uniform\[0, 1\]; now x uniform\[0, 2\]\)"):
        check_unchanged(spaces.load(str(project)), recorded, "r1")
    project.write_text(project.read_text().replace('mode="max"', 'mode="min"'))
    with pytest.raises(TunerError, match=r"its mode and params changed \(max -> min\)"):
        check_unchanged(spaces.load(str(project)), recorded, "r1")


def test_two_projects_with_the_same_module_names_each_get_their_own(tmp_path, monkeypatch):
    """Two studies in one process (the Python API): each project's ``family.py`` is its own."""
    first = spaces.load(str(write_project(tmp_path / "a", name="first")))
    from tuner.spaces.code import on_import_path

    on_import_path(first.source.folder)
    import family

    assert Path(family.__file__).parent == tmp_path / "a"
    second = spaces.load(str(write_project(tmp_path / "b", name="second")))
    on_import_path(second.source.folder)
    import family  # noqa: F811 - imported again: now the second project's

    assert Path(family.__file__).parent == tmp_path / "b"


def test_python_api_options_are_checked_as_the_command_line_checks_its_flags():
    import tuner

    with pytest.raises(TunerError, match="^--trials must be at least 1, got 0$"):
        tuner.run("steel_binary", trials=0)
    with pytest.raises(TunerError, match="^unknown option\\(s\\) trails; accepted: trials, searcher, "):
        tuner.run("steel_binary", trails=3)
    with pytest.raises(TunerError, match="^--searcher 'tpe' is not one of: grid, random"):
        tuner.run("steel_binary", searcher="tpe")
    with pytest.raises(TunerError, match="^trials=2.5: expected a whole number"):
        tuner.run("steel_binary", trials=2.5)
    with pytest.raises(TunerError, match="^unknown space 'nope'"):
        tuner.run("nope")


def test_a_space_folder_travels_to_a_joined_cluster_as_ray_py_modules(project):
    """Each top-level file and package of the folder is one py_modules entry: on the workers it lands on the import
    path as it is in its folder here (tested live in test_cluster_live)."""
    from tuner.cluster import _init_arguments
    from tuner.spaces.code import shipped_code

    (project.parent / "helpers").mkdir()
    (project.parent / "helpers" / "__init__.py").write_text("")
    (project.parent / "notes").mkdir()  # not a package: not code
    code = tuple(str(p) for p in shipped_code(spaces.load(str(project))))
    folder = project.parent
    assert code == tuple(str(folder / name) for name in ("data.py", "family.py", "space.py", "helpers"))
    kwargs = _init_arguments("127.0.0.1:6379", True, None, None, (), code=code)
    assert kwargs["runtime_env"]["py_modules"] == list(code)
    assert "py_modules" not in _init_arguments("127.0.0.1:6379", True, None, None, ()).get("runtime_env", {})


def test_the_report_config_of_a_space_without_one_is_a_one_line_error(project, capsys):
    code, _, err = _cli(capsys, "run", "proj/space.py", "--config", "report")
    assert code == 2 and err.strip() == (
        "error: --config report: space outside declares no report_config; give a "
        "JSON file of parameters (e.g. a tuner export)"
    )

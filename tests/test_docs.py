"""The documentation stays true: every command line in README.md and docs/ parses with the real parser, the
generated reference pages cover every command and option, the output-file page names every key a study writes,
and the guides' Python snippets run (on generated data, tiny budgets)."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import cli_env
from tuner.cli import build_parser
from tuner.errors import TunerError
from tuner.options import RunOptions, flag_of

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
# The placeholders a usage line may hold, each with a value the parser accepts in its place. A new placeholder in a
# page must be added here: an unknown capitalised word fails, so a typo'd flag value cannot hide as a placeholder.
PLACEHOLDERS = {
    "SPACE": "steel_binary", "RUN": "r1", "REF": "steel_binary:r1", "NAME": "n1", "N": "2", "K": "2", "S": "2",
    "FILE": "f.json", "FILE.json": "f.json", "FILE.png": "f.png", "DIR": "d", "SECONDS": "10", "KEY=VALUE": "seed=1",
    "P": "5000",
}  # fmt: skip


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def command_lines() -> list[tuple[str, str, str]]:
    """(page, line, shown error) for every `python -m tuner ...` or `tuner ...` command in a code block of the
    pages; the shown error is the `error: ...` line the page prints under it (a refusal shown on purpose), or ''."""
    found = []
    for page in PAGES:
        for block in FENCE.findall(page.read_text()):
            lines = block.splitlines()
            for i, line in enumerate(lines):
                line = line.strip().removeprefix("$ ")
                shown = lines[i + 1].strip() if i + 1 < len(lines) and lines[i + 1].startswith("error:") else ""
                for part in re.split(r"&&|;", line):
                    part = part.strip()
                    if part.startswith(("python -m tuner ", "tuner ")):
                        found.append((str(page.relative_to(ROOT)), part, shown))
    return found


def as_arguments(line: str) -> list[str]:
    """The arguments a usage line stands for: optional brackets opened, `...` and `[options]` dropped, the first
    of `a|b` alternatives, placeholders and shell variables replaced by sample values."""
    line = re.sub(r"\s+#.*$", "", line).replace("[options]", "")
    line = line.replace("[", " ").replace("]", " ")
    words = shlex.split(line)[3 if line.startswith("python") else 1 :]
    args = []
    for word in words:
        if word == "...":
            continue
        word = word.split("|")[0] if word.startswith(("FILE", "DIR")) else word
        if word.startswith("$"):
            word = PLACEHOLDERS["SPACE"]
        if re.fullmatch(r"[A-Z][A-Z_.=a-z]*", word) and word not in ("report",):
            assert word in PLACEHOLDERS, f"unknown placeholder {word!r}: add it to PLACEHOLDERS or write a value"
            word = PLACEHOLDERS[word]
        args.append(word)
    return args


LINES = command_lines()


def test_the_pages_show_command_lines():
    assert len(LINES) > 40, LINES  # a collection that found nothing would pass every test below


@pytest.mark.parametrize(("page", "line", "shown"), LINES, ids=[f"{p}:{i}" for i, (p, *_) in enumerate(LINES)])
def test_every_command_line_parses(page, line, shown):
    """A line parses, or, where the page shows it refused, the parser's refusal is the one the page shows."""
    try:
        build_parser().parse_args(as_arguments(line))
    except TunerError as exc:
        if not shown or f"error: {exc}" != shown:
            pytest.fail(f"{page}: `{line}` does not parse: {exc}")


def test_an_unknown_flag_fails_the_check():
    with pytest.raises(TunerError, match="--trails"):
        build_parser().parse_args(as_arguments("python -m tuner run SPACE --trails 3"))


def test_the_command_reference_covers_every_command_and_option():
    page = _hooks().cli_page()
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name in commands:
        assert f"## `tuner {name}`" in page
    for name in RunOptions.__dataclass_fields__:
        assert f"`{flag_of(name)}`" in page, flag_of(name)


def test_the_home_page_is_the_readme_with_site_links():
    page = _hooks().index_page()
    assert "](docs/" not in page and "](getting-started.md)" in page


def _dict_keys(path: Path, function: str) -> set[str]:
    """The keys of the dict literal ``function`` of ``path`` returns, with those of ``**helper(...)`` entries that
    call a function of the same file returning a dict literal."""
    tree = ast.parse(path.read_text())
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function)
    returned = next(n.value for n in ast.walk(node) if isinstance(n, ast.Return) and isinstance(n.value, ast.Dict))
    keys = {k.value for k in returned.keys if isinstance(k, ast.Constant)}
    for key, value in zip(returned.keys, returned.values, strict=True):
        if key is None and isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
            keys |= _dict_keys(path, value.func.id)
    return keys


def _documented(section: str) -> set[str]:
    text = (ROOT / "docs" / "reference" / "files.md").read_text().split(f"## `{section}`")[1].split("\n## ")[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", text, re.M))


def test_the_files_page_lists_every_key_of_the_export():
    keys = _dict_keys(ROOT / "tuner" / "study" / "export.py", "best_config")
    assert keys and keys == _documented("best_config.json")


SNIPPET = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
# Every Python snippet of the guides, named by its page and a text it holds; the slow test below runs each one.
# (The contract page's snippets are signatures and sketches, not programs.)
GUIDE_SNIPPETS = {("guides/own-model.md", "tuner.run("), ("guides/results.md", "load_model")}


def test_every_guide_snippet_is_one_the_slow_test_runs():
    for page in sorted((ROOT / "docs" / "guides").glob("*.md")):
        name = str(page.relative_to(ROOT / "docs"))
        for block in SNIPPET.findall(page.read_text()):
            runs = [text for where, text in GUIDE_SNIPPETS if where == name and text in block]
            assert runs, f"docs/{name}: a python snippet that no test runs; run it in {__name__} (GUIDE_SNIPPETS)"


def _snippet(page: str, containing: str) -> str:
    blocks = [b for b in SNIPPET.findall((ROOT / "docs" / page).read_text()) if containing in b]
    assert len(blocks) == 1, f"docs/{page}: expected one python snippet with {containing!r}"
    return blocks[0]


@pytest.mark.slow
def test_the_guides_snippets_run_and_the_files_page_names_every_key(tmp_path, monkeypatch, ray_instance):
    """The own-model guide's snippet on a `tuner new` project and the results guide's snippet on a tiny
    steel_multiclass study, as written but for the budgets; the study's three files' keys are on the files page."""
    import tuner
    from tuner.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["new", "my_project"]) == 0
    tiny = {"trials": "2", "max_epochs": "1"}
    code = _snippet("guides/own-model.md", "tuner.run(")
    for key, value in tiny.items():
        code = re.sub(rf"{key}=\d+", f"{key}={value}", code)
    exec(
        compile(code.replace("max_epochs=1)", "max_epochs=1, verify_top=0, dashboard=False)"), "own-model", "exec"), {}
    )

    tuner.run("steel_multiclass", name="t100", trials=2, max_epochs=1, verify_top=0, dashboard=False)
    # In a process of its own, as a user runs it: the snippet sets MLflow's store for its process, which in this
    # one would send the later tests' studies to this study's store.
    shown = subprocess.run(
        [sys.executable, "-c", _snippet("guides/results.md", "load_model")],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert shown.returncode == 0, shown.stderr[-3000:]
    ours, exported = shown.stdout.split()[-2:]
    assert float(ours) == pytest.approx(float(exported))

    run_dir = tmp_path / "results" / "steel_multiclass" / "t100"
    for name in ("best_config.json", "run.json", "progress.json"):
        written = set(json.loads((run_dir / name).read_text()))
        assert written <= _documented(name), f"{name}: not on docs/reference/files.md: {written - _documented(name)}"

"""``tuner new NAME [--dir DIR]``: a small working project of one's own space, model family and data to start from.

The project's files (``tuner/templates/project``) are real, linted code whose comments are the shortest tutorial
of the contract (``docs/contract.md``); ``tuner run DIR/NAME/space.py`` runs them as written.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tuner.errors import TunerError
from tuner.spec import NAME

TEMPLATE = Path(__file__).with_name("templates") / "project"
PLACEHOLDER = "__NAME__"
FILES = ("space.py", "family.py", "data.py", "test_space.py", "README.md")


def new_project(name: str, where: Path, echo: Callable[[str], None] = print) -> Path:
    """Write the project folder ``where/name``; an existing folder is an error and nothing is written."""
    if not NAME.match(name) or not name.replace("-", "_").replace(".", "_").isidentifier():
        raise TunerError(
            f"tuner new {name!r}: use letters, digits and '_' (it names the space, its folder and its results folder)"
        )
    folder = where / name
    if folder.exists():
        raise TunerError(f"tuner new {name}: {folder} already exists; choose another NAME or --dir")
    texts = {file: (TEMPLATE / file).read_text().replace(PLACEHOLDER, name) for file in FILES}
    try:
        folder.mkdir(parents=True)
        for file, text in texts.items():
            (folder / file).write_text(text)
    except OSError as exc:
        raise TunerError(f"tuner new {name}: cannot write {folder} ({exc.strerror})") from None
    echo(f"wrote {folder}/ ({', '.join(FILES)})")
    echo(f"  run it    : tuner run {folder / 'space.py'} --trials 4")
    echo(f"  check it  : python -m pytest {folder}")
    echo(f"  your data : tuner run {folder / 'space.py'} --data your.csv   (numeric columns and a 'label' column)")
    return folder


__all__ = ["new_project"]

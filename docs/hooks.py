"""MkDocs hooks: pages generated from the code at build time, so they cannot drift from it.

- ``index.md``: the README, with its ``docs/`` links made relative to the site;
- ``reference/cli.md``: every command and flag, walked from ``tuner.cli.build_parser()`` (options come from
  ``tuner.options.RunOptions``, their one declaration).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ("index.md", "reference/cli.md")


def index_page() -> str:
    """The README as the site's home page: its links into ``docs/`` point at the pages themselves."""
    return re.sub(r"\]\(docs/", "](", (ROOT / "README.md").read_text())


def _cell(text: str) -> str:
    """Table cell text: a pipe would end the cell (an HTML entity does not, but shows literally inside a code span,
    so a code span holding a pipe loses its backticks)."""
    text = re.sub(r"`([^`]*\|[^`]*)`", r"\1", text)
    return text.replace("|", "&#124;").replace("\n", " ")


def _argument_row(action: argparse.Action) -> str:
    name = ", ".join(f"`{s}`" for s in action.option_strings) or f"`{action.metavar or action.dest}`"
    if action.choices:
        what = ", ".join(f"`{c}`" for c in action.choices)
    elif action.nargs == 0:
        what = "flag"
    else:
        what = f"`{action.metavar or action.dest.upper()}`"
    default = "" if action.default in (None, argparse.SUPPRESS, [], False, True) else f"`{action.default}`"
    help_text = (action.help or "").replace("%%", "%")
    return f"| {name} | {_cell(what)} | {_cell(default)} | {_cell(help_text)} |"


def cli_page() -> str:
    """Every command of ``tuner`` with its usage and a table of its arguments, from the real parser."""
    from tuner.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in sub._choices_actions}
    lines = [
        "# Command reference",
        "",
        "Generated from `tuner.cli.build_parser()` when the site is built: what `python -m tuner COMMAND --help`",
        "prints, as tables. The options of `tuner run` are declared once in `tuner.options.RunOptions`.",
        "",
    ]
    for name, command in sub.choices.items():
        usage = command.format_usage().replace("usage: ", "").strip()
        lines += [f"## `tuner {name}`", "", helps.get(name) or "", "", "```", usage, "```", ""]
        rows = [a for a in command._actions if not isinstance(a, argparse._HelpAction)]
        if rows:
            lines += ["| argument | value | default | what |", "|---|---|---|---|"]
            lines += [_argument_row(a) for a in rows]
            lines.append("")
    return "\n".join(lines)


def on_files(files, config):
    from mkdocs.structure.files import File

    pages = {"index.md": index_page(), "reference/cli.md": cli_page()}
    for uri, content in pages.items():
        existing = files.get_file_from_path(uri)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, uri, content=content))
    return files

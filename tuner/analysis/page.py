"""One self-contained HTML page of the analysis: the summary, the importance table and every figure embedded as
base64, so the page can be mailed or attached to a run on its own."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from tuner.analysis.importance import EVALUATORS


def write_page(
    path: Path,
    title: str,
    summary: str,
    importance: dict[str, Any],
    figures: dict[str, Path],
    skipped: dict[str, str],
    chosen: dict[str, Any] | None = None,
) -> Path:
    """``chosen``: the study's choice as its export records it (``trial_number``, ``test``, ``test_uncertainty``)."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}img{max-width:100%}"
             "td,th{padding:2px 10px;text-align:right}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>", _chosen_section(chosen), f"<pre>{html.escape(summary)}</pre>",
             _importance_table(importance)]  # fmt: skip
    for name, figure in figures.items():
        data = base64.b64encode(figure.read_bytes()).decode("ascii")
        parts.append(f"<h2>{html.escape(name)}</h2><img alt='{html.escape(name)}' src='data:image/png;base64,{data}'>")
    for name, why in skipped.items():
        parts.append(f"<h2>{html.escape(name)}</h2><p>not drawn: {html.escape(why)}</p>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts))
    return path


def _chosen_section(chosen: dict[str, Any] | None) -> str:
    """The chosen trial and its test figures with their intervals."""
    if not chosen or chosen.get("trial_number") is None:
        return ""
    head = f"<h2>chosen: trial {int(chosen['trial_number'])}</h2>"
    test = chosen.get("test") or {}
    if not test:
        return head + "<p>no test figures (the data has no test split)</p>"
    uncertainty = chosen.get("test_uncertainty") or {}
    intervals, level = uncertainty.get("interval") or {}, uncertainty.get("level")
    shown = f"{level:.0%} bootstrap interval" if isinstance(level, int | float) else "interval"
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{value:.4f}</td><td>{_interval(intervals.get(name))}</td></tr>"
        for name, value in test.items()
    )
    size = f" ({uncertainty['split_size']} rows)" if uncertainty.get("split_size") else ""
    return (
        f"{head}<p>on the test split{size}, with the chosen config's best-epoch weights</p>"
        f"<table><tr><th>figure</th><th>value</th><th>{shown}</th></tr>{rows}</table>"
    )


def _interval(bounds: Any) -> str:
    return f"[{bounds[0]:.4f}, {bounds[1]:.4f}]" if bounds and len(bounds) == 2 else "-"


def _importance_table(importance: dict[str, Any]) -> str:
    values = importance.get("importance") or {}
    if not values:
        return ""
    names = sorted(values.get("fanova", {}), key=lambda p: -values["fanova"][p])
    header = "".join(f"<th>{e}</th>" for e in EVALUATORS)
    rows = "".join(
        f"<tr><th>{html.escape(p)}</th>" + "".join(f"<td>{values[e].get(p, 0):.3f}</td>" for e in EVALUATORS) + "</tr>"
        for p in names
    )
    return f"<h2>importance</h2><table><tr><th>parameter</th>{header}</tr>{rows}</table>"

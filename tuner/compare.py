"""``tuner compare REF REF ...``: finished studies side by side, from their results folders only.

A ref is ``SPACE`` (its latest finished run) or ``SPACE:RUN``; SPACE is any space reference (``tuner.spaces``). The
table holds each study's searcher and scheduler, trials, wall time, trial-hours (the sum of its trials' durations),
best validation score, when it first came within 5 % of that score, its test figures and its ensemble; one PNG shows
the best-so-far curves over wall time.

"Reached 95 %" is measured as 95 % of the way from the study's first score (the first trial to end) to its best: the
first moment the best score so far lies within ``0.05 * |best - first|`` of the best. The same rule holds for
``min`` metrics (a loss falls 95 % of the way from the first trial's value to the best) and for metrics that can be
negative or near zero, where "95 % of the best value" would mean nothing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.analysis.trials import StudyTrials, load_trials
from tuner.errors import TunerError
from tuner.run_files import BEST_CONFIG_FILE, RUN_FILE, finished_runs, read_json
from tuner.spaces import space_name
from tuner.status import run_state
from tuner.storage import study_root

REACHED = 0.95


@dataclass(frozen=True)
class ComparedStudy:
    ref: str
    run_dir: Path
    info: dict[str, Any]
    export: dict[str, Any]
    trials: StudyTrials

    @property
    def metric(self) -> tuple[str, str]:
        return self.export["metric"]["name"], self.export["metric"]["mode"]


def resolve(refs: list[str], results_dir: Path) -> list[Path]:
    """The run folder of each ref; every unknown ref is named in one error."""
    found, unknown, unfinished = [], [], []
    for ref in refs:
        try:
            space, name = space_and_run(ref, results_dir)
        except TunerError:
            unknown.append(ref)
            continue
        runs = finished_runs(results_dir, space)
        matches = [r for r in runs if r.name == name] if name else runs[-1:]
        if matches:
            found.append(matches[-1])
        elif name and (results_dir / space / name / RUN_FILE).is_file():
            unfinished.append(f"{ref} is {run_state(read_json(results_dir / space / name / RUN_FILE, 'run record'))}")
        else:
            unknown.append(ref)
    if unfinished:
        raise TunerError(f"{'; '.join(unfinished)}: compare takes finished studies (tuner status shows a running one)")
    if unknown:
        raise TunerError(
            f"unknown ref(s) {', '.join(unknown)}: no such finished run under {results_dir} "
            f"(a ref is SPACE, its latest finished run, or SPACE:RUN)"
        )
    return found


def space_and_run(ref: str, results_dir: Path) -> tuple[str, str]:
    """``SPACE`` or ``SPACE:RUN``, SPACE any space reference (which may hold a ':' itself, ``module:ATTR``): the
    whole ref is taken as a space first, else what follows its last ':' is the run. The space's name and the run
    ('' for the latest finished one)."""
    try:
        return space_name(ref, results_dir), ""
    except TunerError:
        space, sep, run = ref.rpartition(":")
        if not (sep and space and run):
            raise
        return space_name(space, results_dir), run


def load(refs: list[str], results_dir: Path) -> list[ComparedStudy]:
    studies = []
    for ref, run_dir in zip(refs, resolve(refs, results_dir), strict=True):
        info = read_json(run_dir / RUN_FILE, "run record")
        root = study_root((info.get("options") or {}).get("storage"), results_dir, run_dir.parent.name, run_dir.name)
        studies.append(
            ComparedStudy(
                ref, run_dir, info, read_json(run_dir / BEST_CONFIG_FILE, "best config"), load_trials(run_dir, root)
            )
        )
    metrics = {s.metric for s in studies}
    if len(metrics) > 1:
        shown = ", ".join(f"{s.ref} {s.metric[0]} ({s.metric[1]})" for s in studies)
        raise TunerError(f"the studies search different metrics ({shown}); compare studies of one metric")
    return studies


def reached(trials: StudyTrials) -> tuple[float | None, int] | None:
    """(wall time, trials ended) when the best so far first came 95 % of the way from the first score to the best."""
    rows = trials.best_so_far()
    if not rows:
        return None
    first, best = rows[0][1], rows[-1][1]
    threshold = first + REACHED * (best - first)
    for count, (trial, so_far) in enumerate(rows, 1):
        if not trials.better(threshold, so_far):
            return trial.end_s, count
    return rows[-1][0].end_s, len(rows)


def table(studies: list[ComparedStudy]) -> str:
    import pandas as pd

    metric = studies[0].metric[0]
    rows = []
    for s in studies:
        search = s.export.get("search") or {}
        durations = [t.end_s - t.start_s for t in s.trials.trials if t.start_s is not None and t.end_s is not None]
        best = s.trials.best_so_far()
        when = reached(s.trials)
        row = {
            "study": f"{s.run_dir.parent.name}:{s.run_dir.name}",
            "searcher/scheduler": f"{search.get('searcher', '?')}/{search.get('scheduler', '?')}",
            "trials": len(s.trials.trials),
            "wall (s)": _number(s.info.get("wall_s"), "{:.0f}"),
            "trial-hours": _number(sum(durations) / 3600 if durations else None, "{:.3f}"),
            f"best {metric}": _number(best[-1][1] if best else None),
            "95% at (s)": _number(when[0] if when else None, "{:.0f}"),
            "95% at trial": when[1] if when else "-",
        }
        row.update({k: _number(v) for k, v in (s.export.get("test") or {}).items()})
        row.update(_differences(s.export.get("references")))
        row["ensemble"] = _ensemble(s.export.get("ensemble"))
        rows.append(row)
    return pd.DataFrame(rows).fillna("-").to_string(index=False)


def plot(studies: list[ComparedStudy], path: Path) -> list[str]:
    """The best-so-far curves over wall time in one PNG; the refs of studies without trial times (left out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    untimed = []
    for s in studies:
        if not s.trials.timed:
            untimed.append(s.ref)
            continue
        rows = s.trials.best_so_far()
        search = s.export.get("search") or {}
        ax.step(
            [t.end_s for t, _ in rows],
            [b for _, b in rows],
            where="post",
            label=f"{s.ref} ({search.get('searcher')}/{search.get('scheduler')})",
        )
    metric, mode = studies[0].metric
    ax.set(xlabel="wall time since the study started (s)", ylabel=f"best {metric} so far ({mode})")
    ax.legend()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100, bbox_inches="tight")
    except OSError as exc:
        raise TunerError(f"--out {path}: cannot write ({exc.strerror})") from None
    finally:
        plt.close(fig)
    return untimed


def compare(refs: list[str], results_dir: Path, out: Path | None, echo=print) -> Path:
    """``tuner compare``: print the table, write the PNG; its path."""
    if len(refs) < 2:
        raise TunerError(f"compare takes at least two refs, got {len(refs)}")
    if out is not None and out.suffix.lower() != ".png":
        raise TunerError(f"--out {out}: expected a .png file")
    studies = load(refs, results_dir.resolve())
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = out or results_dir / "comparisons" / f"compare-{stamp}.png"
    untimed = plot(studies, path)
    echo(table(studies))
    echo("95% at: when the best so far first came 95 % of the way from the study's first score to its best")
    if untimed:
        echo(f"not in the plot (no trial times in Ray Tune's state): {', '.join(untimed)}")
    echo(f"best-so-far curves written to {path}")
    return path


def _number(value: Any, form: str = "{:.4f}") -> str:
    return "-" if value is None else form.format(value)


def _differences(record: dict[str, Any] | None) -> dict[str, str]:
    """A column per reference (and the report config): the chosen config's paired difference in the test metric
    with its interval and verdict (``tuner.study.references``)."""
    columns = {}
    for name, diff in ((record or {}).get("differences") or {}).items():
        low, high = diff["interval"]
        columns[f"vs {name}"] = f"{diff['value']:+.3f} [{low:+.3f}, {high:+.3f}] {diff['verdict']}"
    return columns


def _ensemble(ensemble: dict[str, Any] | None) -> str:
    if not ensemble or "note" in ensemble:
        return "-"
    return " ".join(f"{k}={v:.4f}" for k, v in ensemble.items() if isinstance(v, float) and k != "ensemble_members")

"""The references phase: what the answer is worth. The space's untuned standard models (``SpaceSpec.references``)
are trained on the same non-test rows and scored on the same test split as the chosen config, and the chosen
config's figure is compared with each of theirs (and with the report config's, when the baseline phase ran) by a
paired bootstrap.

Paired: every side's predictions are made once, per test row; each resample of the rows (``bootstrap_interval``,
the evaluate phase's own resampling, with the study's seed: the very resamples its intervals used) is scored for
every side with the family's ``score_predictions`` (``trainables.family.ScoringFamily``: the metric code of its
``evaluate``), and the difference ``chosen - other`` is taken on that same resample. A model against itself has
the interval [0, 0] exactly. The verdict: ``ahead`` or ``behind`` when the interval leaves 0 out, otherwise ``not
distinguishable on N rows``.

Each reference trains in a thread given ``REFERENCE_BUDGET_S`` seconds: one that runs past it is left out (said
in its record and printed); ``--no-references`` skips the phase.
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
import time
from typing import Any

import numpy as np

from trainables.family import ScoringFamily, load_family
from trainables.metrics import as_test
from trainables.reporting import CHECKPOINT_FILE
from tuner.spec import Reference
from tuner.storage import local_checkpoint
from tuner.study.baseline import Baseline, report_protocol
from tuner.study.evaluate import LEVEL, Evaluation, bootstrap_interval, trial_context
from tuner.study.prepare import Study

REFERENCE_BUDGET_S = 30.0
"""Seconds one reference may train and predict; past them it is left out, and the study says so."""
CHOSEN = "chosen"
REPORT_CONFIG = "report_config"
"""The side name of the report config's baseline trial among the differences."""
SMALL_SPLIT = 0.01
"""The power line is printed when the paired intervals' half-width exceeds this share of the chosen figure."""


def reference_metric(name: str, key: str) -> str:
    """The MLflow parent-run metric of a reference's test figure: ``reference_<name>_<key>``."""
    return f"reference_{name}_{key}"


def difference_metric(name: str, key: str) -> str:
    """The MLflow parent-run metric of ``chosen - <name>`` in ``key`` (``_ci_low``/``_ci_high`` for its interval)."""
    return f"diff_{name}_{key}"


def reference_metrics(record: dict[str, Any] | None) -> dict[str, float]:
    """The parent run's figures of the phase's ``record``: each reference's test figures, each difference with its
    interval's ends."""
    metrics = {}
    for name, model in ((record or {}).get("models") or {}).items():
        metrics.update({reference_metric(name, key): value for key, value in (model.get("test") or {}).items()})
    for name, diff in ((record or {}).get("differences") or {}).items():
        metric = difference_metric(name, record["metric"])
        low, high = diff["interval"]
        metrics.update({metric: diff["value"], f"{metric}_ci_low": low, f"{metric}_ci_high": high})
    return metrics


def references(study: Study, figures: Evaluation, baseline: Baseline) -> Evaluation:
    """The study's ``figures`` with the references' record (``Evaluation.references``)."""
    started = time.monotonic()
    record = _compare(study, figures, baseline)
    record["seconds"] = round(time.monotonic() - started, 3)
    _echo(study, record)
    return dataclasses.replace(figures, references=record)


def _compare(study: Study, figures: Evaluation, baseline: Baseline) -> dict[str, Any]:
    skipped = _why_skipped(study, figures)
    if skipped:
        return {"note": skipped}
    spec, data = study.plan.spec, study.data
    family = load_family(spec.trainable)
    test = data.splits["test"]
    sides = {CHOSEN: _trial_predictions(study, family, figures.best, {})}
    if baseline.trial is not None:
        sides[REPORT_CONFIG] = _trial_predictions(study, family, baseline.trial, report_protocol(spec))
    models = {}
    for reference in spec.references:
        predicted, models[reference.name] = fit_reference(reference, data, study.plan.options.seed)
        if predicted is not None:
            sides[reference.name] = predicted
    key = as_test(spec.metric)
    compared = paired_differences(
        lambda rows, pred: family.score_predictions(data, rows, pred, "test"),
        test,
        sides,
        key,
        spec.mode,
        study.plan.options.seed,
    )
    for name, model in models.items():
        if name in sides:
            model.update(test=compared["figures"][name], interval=compared["intervals"].get(name, {}))
    return {"metric": key, "mode": spec.mode, "split_size": len(test), "level": LEVEL,
            "resamples": compared["resamples"], "chosen": compared["figures"][CHOSEN], "models": models,
            "differences": compared["differences"], "power": compared["power"]}  # fmt: skip


def _why_skipped(study: Study, figures: Evaluation) -> str:
    spec, data = study.plan.spec, study.data
    if not study.plan.options.references:
        return "skipped (--no-references)"
    if not spec.references:
        return f"none declared for the space {spec.name}"
    if figures.test is None:
        return "skipped: the data has no test split"
    if not isinstance(load_family(spec.trainable), ScoringFamily):
        return f"skipped: the model family {spec.trainable} does not score predictions (score_predictions)"
    if "x" not in data.arrays:
        return "skipped: the data holds no x array of model inputs"
    return ""


def _trial_predictions(study: Study, family, trial, overrides: dict[str, Any]) -> np.ndarray:
    """A trial's predictions for the test rows, by its family's ``predict`` from its best-epoch weights (the
    baseline's with the report's protocol: one model where the search trained K fold models)."""
    from tuner.trial import make_context

    data, config = study.data, trial.config
    ctx = (
        trial_context(study)
        if not overrides
        else make_context(
            study.plan.spec, study.plan.options.seed, "cpu", report=lambda row, ckpt: None, overrides=overrides
        )
    )
    with local_checkpoint(study.plan.options.storage, trial.checkpoint_path) as folder:
        state = family.inference_state(config, data, ctx)
        inputs = data.arrays["x"][data.splits["test"]]
        return np.asarray(family.predict(config, state, folder / CHECKPOINT_FILE, inputs))


def fit_reference(
    reference: Reference, data, seed: int, budget_s: float = REFERENCE_BUDGET_S
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Train ``reference`` on the data's non-test rows (flattened ``x``) and predict the test rows, in a thread
    given ``budget_s`` seconds: its predictions (None past the budget, or when it failed) and its record."""
    test = data.splits["test"]
    rows = np.sort(np.concatenate([r for name, r in data.splits.items() if name != "test"]))
    x = data.arrays["x"].reshape(len(data.arrays["x"]), -1)
    record: dict[str, Any] = {"estimator": reference.estimator, "params": dict(reference.params)}
    result: dict[str, Any] = {}

    def work() -> None:
        from threadpoolctl import threadpool_limits

        try:  # one thread: OpenMP's spinning workers on a busy machine made a 1-second fit take 30 (measured)
            with threadpool_limits(limits=1):
                model = build_reference(reference, seed)
                model.fit(x[rows], data.arrays["y"][rows])
                result["predicted"] = np.asarray(model.predict(x[test]))
        except Exception as exc:  # a reference that fails is said, not fatal: the study's answer stands
            result["error"] = f"{type(exc).__name__}: {exc}"[:300]

    started = time.monotonic()
    worker = threading.Thread(target=work, name=f"reference-{reference.name}", daemon=True)
    worker.start()
    worker.join(budget_s)
    record["seconds"] = round(time.monotonic() - started, 3)
    if worker.is_alive():  # a thread cannot be stopped: it is left to finish unseen (daemon: it never holds exit)
        record["note"] = f"left out: still training after its {budget_s:g} s cap"
    elif "error" in result:
        record["note"] = f"left out: {result['error']}"
    return result.get("predicted"), record


def build_reference(reference: Reference, seed: int):
    """The reference's estimator (a pipeline with a ``StandardScaler`` first when ``scaled``); ``random_state``
    defaults to the study's seed where the estimator takes one and the spec left it out."""
    module, _, name = reference.estimator.rpartition(".")
    estimator_class = getattr(importlib.import_module(module), name)
    params = dict(reference.params)
    if "random_state" in estimator_class().get_params() and "random_state" not in params:
        params["random_state"] = seed
    model = estimator_class(**params)
    if not reference.scaled:
        return model
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), model)


def paired_differences(
    score, rows: np.ndarray, sides: dict[str, np.ndarray], key: str, mode: str, seed: int
) -> dict[str, Any]:
    """Each side's figures on ``rows`` and their intervals, and ``key``'s difference between the ``chosen`` side
    and every other one with its paired interval: every resample scores all sides on the same rows.
    ``score(rows, predicted)`` gives a side's figures; ``sides`` maps a name to its predictions, one per row.

    ``power`` is the smallest difference in ``key`` this split tells apart: a difference counts when its interval
    leaves 0 out, i.e. when it exceeds about the interval's half-width (half of high - low); the half-widths of the
    paired intervals (the smallest and the largest) are that figure for each comparison."""
    figures = {name: score(rows, predicted) for name, predicted in sides.items()}

    def resampled(positions: np.ndarray) -> dict[str, float]:
        scored = {name: score(rows[positions], predicted[positions]) for name, predicted in sides.items()}
        out = {f"{name}\0{k}": v for name, s in scored.items() for k, v in s.items()}
        out.update({f"diff\0{name}": scored[CHOSEN][key] - s[key] for name, s in scored.items() if name != CHOSEN})
        return out

    interval, count = bootstrap_interval(resampled, np.arange(len(rows)), seed)
    intervals: dict[str, dict[str, list[float]]] = {}
    for joined, bounds in interval.items():
        name, k = joined.split("\0")
        if name != "diff":
            intervals.setdefault(name, {})[k] = list(bounds)
    differences = {}
    for name in sides:
        if name != CHOSEN and f"diff\0{name}" in interval:
            low, high = interval[f"diff\0{name}"]
            differences[name] = {"value": figures[CHOSEN][key] - figures[name][key], "interval": [low, high],
                                 "verdict": verdict(low, high, mode, len(rows))}  # fmt: skip
    return {"figures": figures, "intervals": intervals, "differences": differences, "resamples": count,
            "power": _power(differences, figures[CHOSEN][key], len(rows))}  # fmt: skip


def verdict(low: float, high: float, mode: str, n_rows: int) -> str:
    """``ahead`` when the paired interval of ``chosen - other`` lies wholly on the better side of 0 for the metric's
    ``mode``, ``behind`` when wholly on the worse side, otherwise ``not distinguishable on N rows``."""
    better, worse = (low > 0, high < 0) if mode == "max" else (high < 0, low > 0)
    return "ahead" if better else "behind" if worse else f"not distinguishable on {n_rows} rows"


def _power(differences: dict[str, dict[str, Any]], chosen: float, n_rows: int) -> dict[str, Any] | None:
    widths = [(d["interval"][1] - d["interval"][0]) / 2 for d in differences.values()]
    widths = [w for w in widths if w > 0]
    if not widths:
        return None
    return {"half_width_min": min(widths), "half_width_max": max(widths), "split_size": n_rows,
            "small": max(widths) > SMALL_SPLIT * max(abs(chosen), 1e-12)}  # fmt: skip


def _echo(study: Study, record: dict[str, Any]) -> None:
    if "models" not in record:
        study.echo(f"references: {record['note']}")
        return
    for name, model in record["models"].items():
        said = model.get("note") or f"{model['test'].get(record['metric'], float('nan')):.4f} {record['metric']}"
        study.echo(f"reference {name} ({model['estimator'].rpartition('.')[2]}): {said}, {model['seconds']:.1f} s")


__all__ = ["CHOSEN", "REFERENCE_BUDGET_S", "REPORT_CONFIG", "build_reference", "difference_metric", "fit_reference",
           "paired_differences", "reference_metric", "reference_metrics", "references", "verdict"]  # fmt: skip

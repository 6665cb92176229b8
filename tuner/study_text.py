"""What a study prints (its header and final summary) and its per-trial CSV."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING

from trainables.cv import CV_FOLDS
from tuner.analysis import ANALYSIS_FOLDER, PAGE_FILE, read_summary
from tuner.run_files import BEST_CONFIG_FILE
from tuner.spec import SpaceSpec

if TYPE_CHECKING:  # tuner.monitor imports Ray Tune, which the summary does not need
    from tuner.monitor import TrialLedger


def tally(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in counts.items()) or "no trials"


def trials_csv(spec: SpaceSpec, ledger: TrialLedger) -> str:
    out = io.StringIO()
    params = list(spec.param_names)
    writer = csv.writer(out)
    writer.writerow(["trial", "trial_id", "status", f"best_{spec.metric}", "best_epoch", "epochs", *params, "message"])
    for o in sorted(ledger.outcomes.values(), key=lambda o: o.number):
        writer.writerow(
            [
                o.number,
                o.trial_id,
                o.status,
                o.score,
                o.best_epoch,
                o.epochs,
                *[o.config.get(p, "") for p in params],
                o.message,
            ]
        )
    return out.getvalue()


def print_header(echo, plan, data, cluster, ui: str) -> None:
    """The study's opening lines: what it runs on which data, where its results, MLflow and Ray are."""
    spec, opts = plan.spec, plan.options
    echo(f"tuner run {spec.name}  (run {plan.name})  - report {spec.report}")
    echo(f"  space     : {plan.space.source.origin}")
    if data is None:
        echo("  data      : none (this space needs no dataset)")
    elif data.synthetic:
        echo(f"  data      : SYNTHETIC - generated in the real file layout at {data.source}")
        echo("              figures are NOT comparable to the report's; pass --data PATH for the real dataset")
    else:
        echo(f"  data      : {data.source} (fingerprint {data.fingerprint})")
    if data is not None:
        echo(f"              {data.summary}")
    echo(f"  results   : {plan.run_dir}")
    if opts.storage is not None:
        echo(f"  storage   : {plan.study_root}/ray (checkpoints, Ray Tune's state)")
    echo(f"  mlflow    : {plan.tracking_uri}")
    echo(f"              UI: {ui}")
    echo(f"  ray       : {cluster.describe()}")
    echo(f"  dashboard : {cluster.dashboard_help()}")
    if plan.fixed_config is not None:
        choice = str(opts.config_file)
        source = f"the report's config ({choice})" if choice.startswith("report") else f"the config in {choice}"
        echo(f"  mode      : one trial of {source}, then the test split")
    else:
        echo(
            f"  search    : {opts.trials} trials, searcher {opts.searcher}, scheduler {opts.scheduler}, "
            f"{spec.max_epochs} max epochs, {opts.cpus_per_trial:g} CPU + {cluster.gpus_per_trial:g} GPU per trial, "
            f"seed {opts.seed}" + (f", time budget {opts.time_budget:g}s" if opts.time_budget else "")
        )
    echo(f"  objective : {objective(spec)}")


def objective(spec: SpaceSpec) -> str:
    """What a trial's score is measured on: the validation split, or folds (``cv_folds`` of trainables.cv, a
    loader's own ``cv_folds``, or a family's own ``folds``)."""
    direction = "highest" if spec.mode == "max" else "lowest"
    folds = int(spec.fixed.get(CV_FOLDS, 1))
    if folds > 1:
        return (
            f"{direction} {spec.metric}, mean over {folds} folds of the non-test rows ({CV_FOLDS}={folds}; "
            f"--set {CV_FOLDS}=1: the single validation split)"
        )
    own = spec.data_options.get(CV_FOLDS) or spec.fixed.get("folds")
    if own:
        return f"{direction} {spec.metric}, mean over the space's own {own} folds of the non-test rows"
    return f"{direction} {spec.metric} on the validation split"


def print_summary(echo, spec, ledger: TrialLedger, export, run_dir, wall) -> None:
    counts = ledger.counts()
    echo("")
    echo(
        f"finished in {wall:.1f}s: {tally(dict(counts))}; "
        f"first trial started {ledger.first_trial_after or 0:.1f}s after the command started"
    )
    scored = ledger.ranked()
    if spec.score == "last_epoch":
        echo(f"top trials by final {spec.metric} (trials that ran all {spec.max_epochs} epochs first):")
        if scored and scored[0].epochs < spec.max_epochs:
            echo(f"  warning: no trial ran all {spec.max_epochs} epochs; the best score below is partial")
    else:
        echo(f"top trials by best {spec.metric}:")
    echo(f"  {'trial':>5}  {'status':<13} {spec.metric:>20}  {'best ep':>7}  config")
    for o in scored[:5]:
        shown = json.dumps(o.config, separators=(",", ":"))
        echo(f"  {o.number:>5}  {o.status:<13} {o.score:>20.4f}  {o.best_epoch:>7}  {shown[:120]}")
    echo(f"best config: {json.dumps(export['config'])}")
    report = export["report"]["results"]
    if spec.metric in report:
        echo(f"best {spec.metric}: ours {export['metric']['value']:.4f}, report {report[spec.metric]:.4f}")
    print_verification(echo, export)
    if export.get("test"):
        print_test_figures(echo, export, report)
    ensemble = export.get("ensemble")
    if ensemble and "note" in ensemble:
        echo(f"ensemble: {ensemble['note']}")
    elif ensemble:
        title = f"ensemble of the top {int(ensemble['ensemble_members'])} trials (mean of predictions)"
        echo(f"{title:<42} {'ours':>12}  {'report':>12}")
        for key, value in ensemble.items():
            if isinstance(value, float) and key != "ensemble_members":
                echo(_figure_line(key, value, report.get(key)))
    echo(f"best config written to {run_dir / BEST_CONFIG_FILE}")
    _print_model(echo, export.get("model"))
    analysis = read_summary(run_dir)
    if analysis is not None:
        echo(analysis)
        echo(f"analysis written to {run_dir / ANALYSIS_FOLDER} (open {run_dir / ANALYSIS_FOLDER / PAGE_FILE})")


def _print_model(echo, model: dict | None) -> None:
    """Where the chosen model is in MLflow and how to load it (nothing when the publish phase said why not)."""
    if not model or not model.get("uri"):
        return
    registered = model.get("registered")
    named = f"; registered as {registered['name']} version {registered['version']}" if registered else ""
    echo(f"MLflow model: {model['uri']}{named}  (mlflow.pyfunc.load_model('{model['uri']}').predict(x))")


def print_test_figures(echo, export: dict, report: dict) -> None:
    """The chosen config on the test split with its interval, beside the report's config on the same split and
    the report's published figure (measured on another split: not comparable to the first two)."""
    uncertainty = export.get("test_uncertainty") or {}
    baseline = export.get("report_baseline") or {}
    echo(
        f"test split ({uncertainty.get('split_size', '?')} rows; [{uncertainty.get('level', 0.95):.0%} bootstrap "
        f"interval, {uncertainty.get('resamples', 0)} resamples]): ours (chosen config, best-epoch weights) | "
        f"report config, this split | report as published"
    )
    base_values = baseline.get("test") or {}
    base_interval = (baseline.get("uncertainty") or {}).get("interval", {})
    models = {name: m for name, m in ((export.get("references") or {}).get("models") or {}).items() if "test" in m}
    if models:
        echo(f"  {'':<26} {'':>28} | {'':>28} | {'':<9} | " + " | ".join(f"{name:>28}" for name in models))
    for key, value in export["test"].items():
        ours = _with_interval(value, uncertainty.get("interval", {}).get(key))
        base = _with_interval(base_values[key], base_interval.get(key)) if key in base_values else "-"
        published = _figure(report[key]).strip() if key in report else "-"
        shown = [
            _with_interval(m["test"][key], m["interval"].get(key)) if key in m["test"] else "-" for m in models.values()
        ]
        echo((f"  {key:<26} {ours:>28} | {base:>28} | {published:<9}" + "".join(f" | {r:>28}" for r in shown)).rstrip())
    if not base_values:
        echo(f"  report config on this split: {baseline.get('note', 'not measured')}")
    print_references(echo, export.get("references"))
    if export["data"]["synthetic"]:
        echo("  (synthetic data: the report's published figures are shown for reference only)")


def print_references(echo, record: dict | None) -> None:
    """Under the test table: the chosen config's paired difference with each reference (and the report config)
    with its interval and verdict, the references left out, and the smallest difference the split tells apart."""
    if not record:
        return
    if "models" not in record:
        echo(f"  references: {record['note']}")
        return
    for name, model in record["models"].items():
        if "note" in model:
            echo(f"  reference {name}: {model['note']}")
    differences = record["differences"]
    if differences:
        echo(
            f"  chosen - other in {record['metric']} (paired {record['level']:.0%} bootstrap, the same "
            f"{record['resamples']} resamples of the {record['split_size']} test rows for both):"
        )
    for name, diff in differences.items():
        low, high = diff["interval"]
        echo(f"    {name:<24} {diff['value']:+.4f} [{low:+.4f}, {high:+.4f}]  {diff['verdict']}")
    power = record.get("power")
    if power and power["small"]:
        echo(
            f"  power: on {power['split_size']} test rows a difference in {record['metric']} smaller than about "
            f"{power['half_width_min']:.4f}-{power['half_width_max']:.4f} (the paired intervals' half-widths) "
            f"cannot be told apart at {record['level']:.0%}"
        )


def print_verification(echo, export: dict) -> None:
    """How the chosen config was chosen: its mean over fresh seeds beside its search score (nothing when the study
    did not re-verify)."""
    verification = export.get("verification")
    if not verification:
        return
    candidates = verification["candidates"]
    chosen = next((c for c in candidates if c["trial_number"] == verification["chosen_trial_number"]), None)
    if chosen is None or chosen["mean"] is None:
        echo(f"re-verified: {len(candidates)} config(s); none scored with fresh seeds, the search's best kept")
        return
    sd = "" if chosen["sd"] is None else f" +- {chosen['sd']:.4f}"
    echo(
        f"chosen: trial {chosen['trial_number']}, {export['metric']['name']} {chosen['mean']:.4f}{sd} over fresh "
        f"seeds {chosen['seeds']} (search {chosen['search_score']:.4f}); best mean of {len(candidates)} "
        f"re-verified config(s)"
    )


def _with_interval(value: float, interval: list[float] | None) -> str:
    shown = _figure(value).strip()
    if not interval:
        return shown
    return f"{shown} [{_figure(interval[0]).strip()}, {_figure(interval[1]).strip()}]"


def _figure(value: float) -> str:
    return f"{value:>12.4f}" if abs(value) < 1e5 else f"{value:>12.0f}"


def _figure_line(key: str, ours: float, theirs: float | None) -> str:
    """One row of the ours-vs-report table (large figures, e.g. squared dollars, without decimals)."""
    return f"  {key:<40} {_figure(ours)}  {_figure(theirs) if theirs is not None else ''}".rstrip()

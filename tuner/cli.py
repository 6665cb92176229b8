"""``python -m tuner list | show SPACE | run SPACE | resume SPACE | status SPACE | export SPACE``.

Errors the user can fix are printed as one line (``error: ...``) with exit status 2; nothing else is printed.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path

import search_spaces
from tuner.errors import TunerError, first_line
from tuner.packing import AUTO as AUTO_GPUS
from tuner.spec import SCHEDULERS, SEARCHERS, SpaceSpec

EXIT_USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the bad value (no usage block)."""

    def error(self, message: str):  # noqa: D102 - argparse hook
        raise TunerError(f"{self.prog}: {message}")


def _gpus(text: str) -> float | str:
    if text.strip().lower() == AUTO_GPUS:
        return AUTO_GPUS
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or {AUTO_GPUS!r} (e.g. 0, 0.25, 1, auto)") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tuner", description="Hyperparameter search for the report models on Ray Tune + MLflow.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", help="list the search spaces")

    show = sub.add_parser("show", help="a space's parameters, defaults and the report's best config")
    show.add_argument("space")

    run = sub.add_parser("run", help="search a space (or train one config with --config)")
    run.add_argument("space")
    run.add_argument("--trials", type=int, default=20, help="number of trials (default 20)")
    run.add_argument("--searcher", choices=SEARCHERS, help="default: the space's")
    run.add_argument("--scheduler", choices=SCHEDULERS, help="default: the space's")
    run.add_argument("--max-epochs", type=int, help="epoch budget per trial (default: the space's)")
    run.add_argument("--cpus-per-trial", type=float, help="CPUs per trial (default: the space's)")
    run.add_argument(
        "--gpus-per-trial",
        type=_gpus,
        help="GPUs per trial, fractions allowed: 0.25 = 4 per GPU; auto = measure one probe trial's GPU memory "
        "and pack as many trials per GPU as fit with a 15%% margin",
    )
    run.add_argument("--max-concurrent", type=int, help="most trials at once (default: as many as fit)")
    run.add_argument("--time-budget", type=float, help="stop the study after this many seconds")
    run.add_argument("--seed", type=int, help="seeds the searcher and the trials (default 0, or the --config file's)")
    run.add_argument("--data", type=Path, help="the real dataset (default: generated synthetic data)")
    run.add_argument("--address", help="an existing Ray cluster: auto, ray://host:10001 or host:port")
    run.add_argument("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI or results/mlflow.db)")
    run.add_argument("--name", help="run name (default: date-time)")
    run.add_argument(
        "--config",
        type=Path,
        dest="config_file",
        help="train and test exactly this config once: a JSON file, or 'report' for the report's own config",
    )
    run.add_argument("--results-dir", type=Path, default=Path("results"), help="default: ./results")
    run.add_argument("--no-dashboard", action="store_true", help="start local Ray without its dashboard")
    run.add_argument("--no-report-start", action="store_true", help="do not evaluate the report's config first")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        dest="settings",
        metavar="KEY=VALUE",
        help="override a fixed setting or data option of the space (see `show`), e.g. --set image_scale=1.0",
    )
    run.add_argument("--num-cpus", type=int, help="CPUs of the local Ray instance (default: all)")
    run.add_argument(
        "--max-retries", type=int, default=2, help="retries of a trial whose worker or node was lost (default 2)"
    )
    run.add_argument(
        "--progress-every",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="print a table of the running trials this often (default 30; 0: never)",
    )
    run.add_argument(
        "--storage",
        default=None,
        metavar="DIR|URI",
        help="where Ray Tune keeps checkpoints and its state: a folder every node mounts at the same path (NFS) or a "
        "URI such as s3://bucket/prefix; needed on multi-node clusters (default: the run's folder in --results-dir)",
    )
    run.add_argument(
        "--checkpoint-every",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="save a trial's training state at least this often, besides at every new best epoch, so a retried or "
        "resumed trial continues from there (default 60; 0: every epoch)",
    )
    run.add_argument(
        "--num-gpus",
        type=int,
        help="GPUs the local Ray instance declares (default: those Ray detects; not with --address). On a machine "
        "without GPUs they are bookkeeping only: trials share them as --gpus-per-trial says and train on the CPU",
    )

    resume = sub.add_parser("resume", help="continue a study whose driver stopped (killed, machine restarted)")
    resume.add_argument("space")
    resume.add_argument("--name", help="run name (default: the latest run)")
    resume.add_argument("--results-dir", type=Path, default=Path("results"))

    export = sub.add_parser("export", help="write the best config of the latest (or --name) finished run as JSON")
    export.add_argument("space")
    export.add_argument("--name", help="run name (default: the latest finished run)")
    export.add_argument("--out", type=Path, help="output file (default: print to stdout)")
    export.add_argument("--results-dir", type=Path, default=Path("results"))

    status = sub.add_parser("status", help="a running or finished study, from its results folder")
    status.add_argument("space")
    status.add_argument("--name", help="run name (default: the latest run)")
    status.add_argument("--results-dir", type=Path, default=Path("results"))
    return parser


def cmd_list() -> None:
    rows = [("space", "report", "model", "metric", "searcher", "scheduler")]
    for name in search_spaces.names():
        spec = search_spaces.get(name)
        rows.append((name, spec.report.split(" (")[0], spec.model, f"{spec.metric} ({spec.mode})",
                     spec.default_searcher, spec.default_scheduler))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def describe_space(spec: SpaceSpec) -> str:
    lines = [
        f"{spec.name}: {spec.summary}",
        f"  report     : {spec.report}",
        f"  model      : {spec.model}  (trainable {spec.trainable})",
        f"  metric     : {spec.metric} ({spec.mode}); reported per epoch: {', '.join(spec.metrics)}",
        f"  budget     : {spec.max_epochs} epochs, ASHA/median grace {spec.grace_period} epochs",
        f"  defaults   : searcher {spec.default_searcher}, scheduler {spec.default_scheduler}, "
        f"{spec.resources.cpus:g} CPU + {spec.resources.gpus:g} GPU per trial",
    ]
    if spec.early_stopping:
        es = spec.early_stopping
        lines.append(f"  early stop : {es.monitor} ({es.mode}), patience {es.patience}, min delta {es.min_delta:g}")
    if spec.fixed:
        lines.append(f"  fixed      : {json.dumps(spec.fixed)}  (run --set KEY=VALUE overrides)")
    lines.append("  parameters :")
    width = max(len(p.name) for p in spec.params)
    for p in spec.params:
        cond = f"  [only if {p.active_if[0]} in {list(p.active_if[1])}]" if p.active_if else ""
        report = spec.report_config.get(p.name, "-")
        lines.append(f"    {p.name:<{width}}  {p.domain.describe():<42} report={report!s:<9} {p.doc}{cond}")
    lines.append(f"  report best config : {json.dumps(spec.active_config(spec.report_config))}")
    for variant, config in spec.report_variants.items():
        lines.append(f"  report {variant + ' config':<12}: {json.dumps(spec.active_config(config))}")
        if variant in spec.report_variant_results:
            lines.append(f"  report {variant + ' results':<12}: {json.dumps(spec.report_variant_results[variant])}")
    lines.append(f"  report results     : {json.dumps(spec.report_results)}")

    if spec.notes:
        lines.append(f"  notes      : {spec.notes}")
    return "\n".join(lines)


def cmd_run(args: argparse.Namespace) -> int:
    from tuner.driver import RunOptions, run_study

    spec = search_spaces.get(args.space)
    opts = RunOptions(
        trials=args.trials, searcher=args.searcher, scheduler=args.scheduler, max_epochs=args.max_epochs,
        cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial, max_concurrent=args.max_concurrent,
        time_budget=args.time_budget, seed=args.seed, data=args.data, address=args.address,
        tracking_uri=args.tracking_uri, name=args.name, config_file=args.config_file, results_dir=args.results_dir,
        dashboard=not args.no_dashboard, report_start=not args.no_report_start, num_cpus=args.num_cpus,
        num_gpus=args.num_gpus, settings=tuple(args.settings), max_retries=args.max_retries,
        progress_every=args.progress_every, checkpoint_every=args.checkpoint_every, storage=args.storage,
    )  # fmt: skip
    return _exit_status(run_study(spec, opts))


def cmd_resume(args: argparse.Namespace) -> int:
    from tuner.driver import resume_study

    search_spaces.get(args.space)
    return _exit_status(resume_study(args.space, args.name, args.results_dir))


def _exit_status(result) -> int:
    failed = result.counts.get("failed", 0)
    if failed:
        print(f"{failed} trial(s) failed: see their MLflow runs (tag tuner.end_message) and {result.run_dir}")
        return 1
    return 0


def cmd_export(args: argparse.Namespace) -> None:
    from tuner.export import find_best_config, read_json, write_json

    search_spaces.get(args.space)
    source = find_best_config(args.results_dir.resolve(), args.space, args.name)
    payload = read_json(source, "best config")
    if args.out is None:
        print(json.dumps(payload, indent=2))
        return
    try:
        write_json(args.out, payload)
    except OSError as exc:
        raise TunerError(f"--out {args.out}: cannot write ({exc.strerror})") from None
    print(f"wrote {args.out} (space {payload['space']}, run {payload['run']}, "
          f"{payload['metric']['name']}={payload['metric']['value']:.4f})")  # fmt: skip


def cmd_status(args: argparse.Namespace) -> None:
    from tuner.status import describe, find_run

    search_spaces.get(args.space)  # an unknown space is an error listing the valid ones
    print(describe(find_run(args.results_dir.resolve(), args.space, args.name)))


def main(argv: list[str] | None = None) -> int:
    args = None
    try:
        args = build_parser().parse_args(argv)
        if args.command == "list":
            cmd_list()
        elif args.command == "show":
            print(describe_space(search_spaces.get(args.space)))
        elif args.command == "run":
            return cmd_run(args)
        elif args.command == "resume":
            return cmd_resume(args)
        elif args.command == "export":
            cmd_export(args)
        elif args.command == "status":
            cmd_status(args)
        return 0
    except TunerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.errno not in STORAGE_ERRORS:
            return _unexpected(exc)
        where = f" writing {exc.filename}" if exc.filename else ""
        space = getattr(args, "space", None) or "SPACE"
        print(f"error: {exc.strerror or exc}{where}; free space (or fix permissions), then continue the study with "
              f"`tuner resume {space}` (what finished before is kept)", file=sys.stderr)  # fmt: skip
        return 1
    except Exception as exc:  # a bug or an environment failure: one line here, the traceback in a file
        return _unexpected(exc)


STORAGE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
"""Errors of the disk under the results folder or the MLflow store, met after the start-up checks passed."""


def _unexpected(exc: BaseException) -> int:
    log = Path(tempfile.gettempdir()) / f"tuner-error-{os.getpid()}.log"
    log.write_text(traceback.format_exc())
    first = first_line(exc, default="")
    print(f"error: {type(exc).__name__}: {first[:300]} (traceback in {log})", file=sys.stderr)
    return 1

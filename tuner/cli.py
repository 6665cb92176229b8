"""The ``tuner`` command line (``python -m tuner COMMAND``): every command is declared once, in ``build_parser``;
``tuner --help`` lists them and the commands reference page of the docs is generated from the same parser.

SPACE is a space reference (``tuner.spaces``): a registered name, a module path or a file path. Errors the user can
fix are printed as one line (``error: ...``) with exit status 2; nothing else is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path

from tuner import spaces
from tuner.errors import TunerError, first_line, storage_error
from tuner.options import RunOptions, add_option, add_run_arguments
from tuner.schema import TrialStatus

EXIT_USER_ERROR = 2
SPACE_HELP = "a registered name (tuner list), a module path (my_pkg.space[:ATTR]) or a file (./space.py[:ATTR])"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the bad value (no usage block)."""

    def error(self, message: str):  # noqa: D102 - argparse hook
        raise TunerError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tuner", description="Hyperparameter search for the report models on Ray Tune + MLflow.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", help="list the search spaces")

    show = sub.add_parser("show", help="a space's parameters, defaults and the report's best config")
    show.add_argument("space", help=SPACE_HELP)

    run = sub.add_parser("run", help="search a space (or train one config with --config)")
    run.add_argument("space", help=SPACE_HELP)
    add_run_arguments(run)

    _study_command(sub, "resume", "continue a study whose driver stopped (killed, machine restarted)", "latest")
    export = _study_command(sub, "export", "write the best config of a finished run as JSON", "latest finished")
    export.add_argument("--out", type=Path, help="output file (default: print to stdout)")
    _study_command(sub, "status", "a running or finished study, from its results folder", "latest")
    verify = _study_command(
        sub,
        "verify",
        "train the top configs of a finished study again with fresh seeds and "
        "choose the best mean; rewrites its export",
        "latest",
    )
    _study_command(sub, "sync", "write to MLflow what a study could not while its store was down", "latest")
    extend = _study_command(
        sub,
        "extend",
        "run more trials in a finished study: same MLflow parent run, trial "
        "numbers go on, the searcher continues from what it learnt",
        "latest",
    )
    extend.add_argument("--trials", type=int, required=True, metavar="N", help="how many more trials")
    add_option(verify, "verify_top", "--top")
    add_option(verify, "verify_seeds", "--seeds")
    _study_command(sub, "analyze", "why a finished study found what it found: importance, figures, summary", "latest")
    compare = sub.add_parser("compare", help="finished studies side by side: a table and best-so-far curves")
    compare.add_argument("refs", nargs="+", metavar="REF", help="SPACE (its latest finished run) or SPACE:RUN")
    new = sub.add_parser("new", help="write a small working project of your own space, model and data to start from")
    new.add_argument("name", help="the space's name (a folder NAME is made)")
    new.add_argument("--dir", type=Path, default=Path("."), help="where the project folder goes (default: here)")
    compare.add_argument("--out", type=Path, help="the PNG of best-so-far curves (default: under the results folder)")
    add_option(compare, "results_dir")
    _ui_command(sub)
    return parser


def _ui_command(sub) -> None:
    from tuner.ui import DEFAULT_HOST, DEFAULT_PORT

    ui = sub.add_parser("ui", help="the MLflow UI on a study's store, until Ctrl-C; prints the runs table's address")
    ui.add_argument("space", nargs="?", help=f"{SPACE_HELP}; default: every space in the results folder's store")
    ui.add_argument("--name", help="run name (default: the latest run; its store is served)")
    add_option(ui, "results_dir")
    ui.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    ui.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"interface to listen on (default {DEFAULT_HOST}: this machine only; 0.0.0.0: every interface)",
    )


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return int(text)


def _study_command(sub, command: str, help: str, default_run: str) -> argparse.ArgumentParser:
    """A command about one study of a space: ``SPACE [--name RUN] [--results-dir DIR]``."""
    parser = sub.add_parser(command, help=help)
    parser.add_argument("space", help=SPACE_HELP)
    parser.add_argument("--name", help=f"run name (default: the {default_run} run)")
    add_option(parser, "results_dir")
    return parser


def cmd_list() -> None:
    rows = [("space", "report", "model", "metric", "searcher", "scheduler", "from")]
    for name, registration in spaces.registered().items():
        spec = spaces.get(name)
        rows.append(
            (
                name,
                spec.report.split(" (")[0],
                spec.model,
                f"{spec.metric} ({spec.mode})",
                spec.default_searcher,
                spec.default_scheduler,
                registration.distribution,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def describe_space(space: spaces.Space) -> str:
    spec = space.spec
    lines = [
        f"{spec.name}: {spec.summary}",
        f"  from       : {space.source.origin}",
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
    if spec.report_config:
        lines.append(f"  report best config : {json.dumps(spec.active_config(spec.report_config))}")
    if spec.report_fixed:
        lines.append(f"  report trains with : {json.dumps(spec.report_fixed)}  (--config report, the baseline phase)")
    for variant, config in spec.report_variants.items():
        lines.append(f"  report {variant + ' config':<12}: {json.dumps(spec.active_config(config))}")
        if variant in spec.report_variant_results:
            lines.append(f"  report {variant + ' results':<12}: {json.dumps(spec.report_variant_results[variant])}")
    if spec.report_results:
        lines.append(f"  report results     : {json.dumps(spec.report_results)}")
    shown = ", ".join(r.name for r in spec.references) or "none declared"
    lines.append(f"  references : {shown}  (untuned, on the same test split; --no-references skips them)")

    if spec.notes:
        lines.append(f"  notes      : {spec.notes}")
    return "\n".join(lines)


def cmd_run(args: argparse.Namespace) -> int:
    from tuner.study import run_study

    return _exit_status(run_study(args.space, RunOptions.from_namespace(args)))


def cmd_resume(args: argparse.Namespace) -> int:
    from tuner.study import resume_study

    return _exit_status(resume_study(args.space, args.name, args.results_dir))


def cmd_extend(args: argparse.Namespace) -> int:
    from tuner.study.extend import extend_study

    return _exit_status(extend_study(args.space, args.name, args.results_dir, args.trials))


def cmd_verify(args: argparse.Namespace) -> int:
    from tuner.study import verify_study

    return _exit_status(verify_study(args.space, args.name, args.results_dir, args.verify_top, args.verify_seeds))


def _exit_status(result) -> int:
    failed = result.counts.get(TrialStatus.FAILED, 0)
    if failed:
        print(f"{failed} trial(s) failed: see their MLflow runs (tag tuner.end_message) and {result.run_dir}")
        return 1
    return 0


def cmd_export(args: argparse.Namespace) -> None:
    from tuner.run_files import find_best_config, read_json, write_json

    results_dir = args.results_dir.resolve()
    source = find_best_config(results_dir, spaces.space_name(args.space, results_dir), args.name)
    payload = read_json(source, "best config")
    if args.out is None:
        print(json.dumps(payload, indent=2))
        return
    try:
        write_json(args.out, payload)
    except OSError as exc:
        raise TunerError(f"--out {args.out}: cannot write ({exc.strerror})") from None
    print(
        f"wrote {args.out} (space {payload['space']}, run {payload['run']}, "
        f"{payload['metric']['name']}={payload['metric']['value']:.4f})"
    )


def cmd_status(args: argparse.Namespace) -> None:
    from tuner.status import describe
    from tuner.study import find_study

    print(describe(find_study(args.space, args.name, args.results_dir)))


def main(argv: list[str] | None = None) -> int:
    args = None
    try:
        args = build_parser().parse_args(argv)
        if args.command == "list":
            cmd_list()
        elif args.command == "show":
            print(describe_space(spaces.load(args.space)))
        elif args.command == "run":
            return cmd_run(args)
        elif args.command == "resume":
            return cmd_resume(args)
        elif args.command == "export":
            cmd_export(args)
        elif args.command == "status":
            cmd_status(args)
        elif args.command == "extend":
            return cmd_extend(args)
        elif args.command == "verify":
            return cmd_verify(args)
        elif args.command == "analyze":
            from tuner.study.analyze import analyze_study

            analyze_study(args.space, args.name, args.results_dir)
        elif args.command == "compare":
            from tuner.compare import compare

            compare(args.refs, args.results_dir, args.out)
        elif args.command == "sync":
            from tuner.study import sync_study

            sync_study(args.space, args.name, args.results_dir)
        elif args.command == "ui":
            from tuner.ui import serve

            return serve(args.space, args.name, args.results_dir, args.host, args.port)
        elif args.command == "new":
            from tuner.scaffold import new_project

            new_project(args.name, args.dir)
        return 0
    except TunerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as exc:  # a StudyInterrupted says what was kept and how to continue
        print(str(exc) or "interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug or an environment failure: one line here, the traceback in a file
        storage = storage_error(exc)
        if storage is None:
            return _unexpected(exc)
        log = _traceback_file()
        where = f" writing {storage.filename}" if storage.filename else ""
        space = getattr(args, "space", None) or "SPACE"
        print(
            f"error: {storage.strerror or storage}{where}; free space (or fix permissions), then continue the "
            f"study with `tuner resume {space}` (what finished before is kept; traceback in {log})",
            file=sys.stderr,
        )
        return 1


def _traceback_file() -> Path:
    """The traceback of the exception being handled, in a file in the temporary folder (not the results folder,
    which may be the disk that is full)."""
    log = Path(tempfile.gettempdir()) / f"tuner-error-{os.getpid()}.log"
    try:
        log.write_text(traceback.format_exc())
    except OSError:
        pass
    return log


def _unexpected(exc: BaseException) -> int:
    log = _traceback_file()
    first = first_line(exc, default="")
    print(f"error: {type(exc).__name__}: {first[:300]} (traceback in {log})", file=sys.stderr)
    return 1

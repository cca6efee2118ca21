"""The command line: parse, call the library, print, map errors to exit codes.

Exit codes: 0 completed; 1 completed with misses (only with --fail-on miss); 2 plan or
usage error; 3 input data error; 4 store locked or busy; 5 store error (one line; the traceback
with --debug) or unexpected internal error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import errno
import json
import sys
import traceback
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from carrier_sla import __version__, vocabulary
from carrier_sla.cli import config
from carrier_sla.errors import CarrierSlaError, InputDataError, PlanError, StoreBusy, StoreError, UsageError
from carrier_sla.inputs import spill
from carrier_sla.store.layout import describe_os_error

if TYPE_CHECKING:  # the CLI imports the engine only when a command needs it
    from carrier_sla.engine.pipeline import RunResult
    from carrier_sla.plan.versions import PlanVersions

EXIT_OK, EXIT_MISS, EXIT_USAGE, EXIT_DATA, EXIT_BUSY, EXIT_INTERNAL = 0, 1, 2, 3, 4, 5


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse exits 2 on usage errors, as we do
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"carrier-sla: error: {message}\n")


class _HelpFormatter(argparse.HelpFormatter):
    """Descriptions wrapped to the terminal; the example epilog kept as written (one command a line)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("example:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def _non_negative(text: str) -> int:
    try:
        value = int(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not at least 1")
    return value


def _share(text: str) -> float:
    """A share from 0 to 1 (NaN and infinities are none: NaN would disable the reject gate)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share from 0 to 1 (e.g. 0.01 for 1%)")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="carrier-sla", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"carrier-sla {__version__}")
    parser.add_argument("--debug", action="store_true", help="print the traceback of every error")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="check one period and publish results to the store")
    run.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object summing up the run(s) on stdout (keys in the README); no human summary",
    )
    run.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="the log lines on stderr: readable text (default), or the JSON lines the store's log.jsonl holds",
    )
    run.add_argument(
        "--plan",
        required=True,
        help="plan file, the id of a bundled plan (e.g. example-qc), or a folder of the plan's versions "
        "(each month is judged under the version in force for it)",
    )
    run.add_argument("--data", required=True, type=Path, help="input directory (orders, troubles, lines)")
    run.add_argument(
        "--period",
        required=True,
        help="reporting month YYYY-MM; a range YYYY-MM..YYYY-MM (the months in order, under one lock, stopping at "
        "the first that fails); or 'auto': the current month to date, and within the first "
        "--final-within-days days of a month first the final run of the previous month",
    )
    run.add_argument(
        "--as-of",
        type=_date,
        help="use the data known at the end of this day (YYYY-MM-DD); provisional before the month's last day",
    )
    run.add_argument(
        "--final-within-days",
        type=int,
        default=5,
        help="with --period auto: days into a month during which the previous month is also run, final (default 5)",
    )
    run.add_argument(
        "--today", type=_date, help="the date taken as today (default: the UTC date), for replays and tests"
    )
    run.add_argument("--out", required=True, type=Path, help="the output store")
    run.add_argument(
        "--max-reject-rate",
        type=_share,
        default=0.01,
        help="fail (exit 3) when more than this share (0 to 1) of a record type is rejected (default 0.01)",
    )
    run.add_argument(
        "--partition-rows",
        type=_non_negative,
        default=spill.DEFAULT_PARTITION_ROWS,
        metavar="N",
        help="input of more orders and troubles than N is spread over partitions on disk first, and "
        f"checked one partition at a time, in bounded memory (default {spill.DEFAULT_PARTITION_ROWS:,}; 0: never)",
    )
    run.add_argument(
        "--workers",
        type=_positive,
        metavar="N",
        help="check the partitions and judge the cells on N worker processes (a Dask LocalCluster); 1: in this "
        "process, without Dask (default: the machine's cores when the input spans more than one partition, else 1)",
    )
    run.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the partitions and statistics on an existing Dask cluster (tcp://HOST:8786); the data, the "
        "store and its staging area must then be on storage every worker sees",
    )
    run.add_argument(
        "--allow-empty",
        action="store_true",
        help="run even when a record type the plan reads has no record of the month (month to date: none at all); "
        "without it that is an input error (exit 3), as an export that failed would give",
    )
    run.add_argument("--fail-on", choices=["miss"], help="exit 1 when any verdict is a miss")
    run.add_argument("--quiet", action="store_true", help="print only errors")

    val = sub.add_parser(
        "validate",
        help="check a plan (and with --data the inputs' columns and the years of holidays their records need) "
        "without computing results",
    )
    val.add_argument("--plan", required=True, help="plan file, bundled plan id, or folder of the plan's versions")
    val.add_argument("--data", type=Path, help="input directory: also check its files, columns and holiday years")
    val.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of text lines")

    ret = sub.add_parser(
        "retract",
        help="remove a month from the store's current view (kept in history; the month can be run again)",
        description="Publish the store's current view without a month: its results, records, rejects and "
        "remedies. The month stays readable in history (runs/RUN_ID/view) and the retract is listed by "
        "`history`. Refused while a later month depends on it (its remedies escalate from it, or its "
        "verdicts used its misses), unless --cascade.",
    )
    ret.add_argument("--store", required=True, type=Path, help="the output store")
    ret.add_argument("--period", required=True, help="the published month to retract, YYYY-MM")
    ret.add_argument(
        "--cascade", action="store_true", help="retract the later months that depend on it too (listed when refused)"
    )
    ret.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of text")

    gen = sub.add_parser("generate", help="write deterministic synthetic input data")
    gen.add_argument("--out", required=True, type=Path, help="the folder to write the input files to")
    gen.add_argument("--period", required=True, help="last month to generate, YYYY-MM")
    gen.add_argument("--periods", type=int, default=3, help="number of months ending with --period (default 3)")
    gen.add_argument("--scale", type=int, default=20_000, help="about this many orders+troubles per month")
    gen.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same files (default 0)")
    gen.add_argument("--format", choices=["csv", "parquet"], default="csv", help="file format (default csv)")
    gen.add_argument("--files-per-type", type=int, default=1, help="split each record type over N files (default 1)")
    gen.add_argument("--clecs", type=int, default=12, help="number of CLECs (default 12; a real population: 200)")
    gen.add_argument(
        "--zipf", type=float, default=1.1, help="CLEC sizes fall as rank ** -ZIPF (default 1.1; real population: 1.3)"
    )

    hist = sub.add_parser("history", help="list the runs of a store: time, plan, inputs, status, verdicts")
    hist.add_argument("--store", required=True, type=Path, help="the output store")
    hist.add_argument("--period", help="only runs that published this month, YYYY-MM")
    hist.add_argument("--json", action="store_true", help="JSON lines instead of a table")

    plans = sub.add_parser("plans", help="list the bundled plans, or with --versions DIR the versions of a plan folder")
    plans.add_argument("--versions", type=Path, metavar="DIR", help="a folder of a plan's versions: list them")

    hol = sub.add_parser(
        "holidays",
        help="print a country's holidays from the holidays package, per year, as JSON to paste into a plan",
        description="Print the holidays the installed holidays package gives for a country (and subdivision), "
        "per year, as the JSON value of a plan's calendar.holidays (or a state's holidays). Review it, leave "
        "out the days the ILEC works, and paste it: the engine reads only the plan's list.",
    )
    hol.add_argument("--country", required=True, help="country code of the holidays package, e.g. US")
    hol.add_argument("--subdivision", help="subdivision code, e.g. CO: its holidays as well as the country's")
    hol.add_argument("--years", required=True, help="a year or a range, e.g. 2026 or 2020-2035")
    for module in _reader_commands():
        module.add_parser(sub)
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help=f"the config file of defaults (default: ./{config.FILENAME} when present)",
    )
    for (
        name,
        command,
    ) in sub.choices.items():  # --debug and --config after the command too (SUPPRESS: not over the first)
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        command.add_argument("--config", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        command.formatter_class = _HelpFormatter
        command.epilog = f"example:\n  {EXAMPLES[name]}" if name in EXAMPLES else None
    parser.epilog = "example:\n  carrier-sla run --period auto   (plan, data and store from ./carrier-sla.toml)"
    parser.formatter_class = _HelpFormatter
    parser.commands = dict(sub.choices)  # type: ignore[attr-defined]  # for the config file
    return parser


EXAMPLES = {
    "run": "carrier-sla run --plan example-qc --data demo-data --period 2026-10 --out store",
    "validate": "carrier-sla validate --plan example-qc --data demo-data --json",
    "retract": "carrier-sla retract --store store --period 2026-10 --cascade",
    "generate": "carrier-sla generate --out demo-data --period 2026-10 --periods 3 --scale 20000",
    "history": "carrier-sla history --store store --period 2026-10",
    "plans": "carrier-sla plans --versions plans/qc/",
    "holidays": "carrier-sla holidays --country US --subdivision CO --years 2026-2027",
    "report": "carrier-sla report --store store --period 2026-10 --out report-2026-10",
    "package": "carrier-sla package --store store --period 2026-10 --carrier CLEC03 --out clec03-2026-10",
    "explain": "carrier-sla explain --store store --period 2026-10 --measure OP-3 --carrier CLEC01",
    "diff": "carrier-sla diff --store store --run RUN_A --run RUN_B",
    "what-if": "carrier-sla what-if --store store --period 2026-10 --data demo-data --plan my-plan.json",
    "verify": "carrier-sla verify --store store",
    "serve": "carrier-sla serve --store store --users portal-users.toml --port 8400",
    "user": "carrier-sla user add ana --users portal-users.toml --carrier CLEC03",
}


# Commands for the people who read the results: each module of carrier_sla.cli has add_parser(sub) (adding
# its subcommand, with set_defaults(command_module=<module name>)) and command(args) -> exit code; the library
# functions they call (carrier_sla.readers, carrier_sla.store.verify) take plain arguments and return data or text.
READER_COMMANDS = (
    "carrier_sla.cli.report",
    "carrier_sla.cli.package",
    "carrier_sla.cli.explain",
    "carrier_sla.cli.diff",
    "carrier_sla.cli.whatif",
    "carrier_sla.cli.verify",
    "carrier_sla.cli.portal",  # serve, user add
)


def _reader_commands() -> list:
    import importlib

    modules = []
    for name in READER_COMMANDS:
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:  # while the commands are being built: only those present
            if exc.name != name:
                raise
    return modules


def _print_summary(result, out: Path) -> None:
    from carrier_sla.engine.pipeline import describe_without_records

    frame = result.results
    print(
        f"run {result.run_id}: period {result.period}, plan {result.manifest['plan']['id']} "
        f"{result.manifest['plan']['version']}"
    )
    rows = sum(i["rows_read"] for i in result.manifest["inputs"])
    rejected = sum(i["rows_rejected"] for i in result.manifest["inputs"])
    print(f"inputs: {rows:,} rows read, {rejected:,} rejected")
    if result.manifest.get("provisional"):
        later = sum(result.manifest.get("records_after_as_of", {}).values())
        print(
            f"PROVISIONAL: month to date as of {result.manifest['provisional_as_of']}"
            + (f" ({later:,} records received after it left out)" if later else "")
        )
    excused = result.manifest.get("excusals")
    if excused and (excused["cells"] or excused["records"]):
        references = sorted({c["reference"] for c in excused["cells"]} | {r[9:] for r in excused["records"]})
        print(
            f"excused by the commission ({', '.join(references)}): {len(excused['cells'])} cell(s) (verdict kept, "
            f"nothing paid), {sum(excused['records'].values())} record(s) excluded as approved"
        )
    for gap in result.manifest.get("measures_without_records", []):
        print(f"not reported: {describe_without_records(gap)}")
    if frame.empty:
        print("no results")
        return
    clec = frame[frame["scope"] == "clec"]
    table = clec.groupby(["measure_id", "status"]).size().unstack(fill_value=0)
    table = table.reindex(columns=[c for c in vocabulary.STATUSES if c in table.columns])
    order = list(dict.fromkeys(frame["measure_id"]))
    table = table.reindex(order)
    print("\nverdicts per CLEC cell (state x product x submeasure x CLEC):")
    print(table.to_string())
    misses = clec[clec["status"] == "miss"].copy()
    if len(misses):
        # strongest evidence first: parity misses by p-value, then benchmark misses
        misses["against"] = misses["retail_value"].fillna(misses["benchmark"]).round(2)
        misses["p"] = misses["p_value"].map(lambda p: "" if p != p else f"{p:.2g}")
        show = misses.sort_values(["p_value", "measure_id"], na_position="last").head(10)
        columns = [
            "measure_id",
            "state",
            "product",
            "submeasure",
            "carrier_id",
            "clec_n",
            "clec_value",
            "against",
            "method",
            "p",
        ]
        print(f"\nstrongest misses ({len(misses)} in all; 'against' is the retail value or the benchmark):")
        print(show[columns].round(2).to_string(index=False))
    tables = "results/, records/, rejects/"
    if "remedies" in result.manifest:
        _print_remedies(result.manifest["remedies"], result.period)
        tables += ", remedies/, escalation/, statements/, adjustments/"
    print(f"\noutputs in {out}: {tables} (period={result.period}); manifest {result.manifest_path}")


def _print_remedies(summary: dict, period: str) -> None:
    this = summary["periods"][period]
    payees = this["totals_by_payee"]
    start = summary["escalation_from"] or "zero: first month in the store"
    print(
        f"\nremedies {period}: {vocabulary.money(this['total'], summary['currency'])} to {len(payees)} payees "
        f"({this['lines']} ledger lines; escalation from {start})"
    )
    for payee, amount in sorted(payees.items(), key=lambda item: (-Decimal(item[1]), item[0]))[:5]:
        print(f"  {payee:<20} {vocabulary.money(amount, summary['currency']):>18}")
    later = [p for p, month in summary["periods"].items() if month["recomputed_after_restatement"]]
    if later:
        plans = ", ".join(f"{p} under {summary['periods'][p]['plan']['version']}" for p in later)
        print(f"  remedies of later months recomputed: {plans}")
    for month, this in summary["periods"].items():
        restated = this.get("restatement")
        if restated:
            note = "" if restated["within_lookback"] else " (outside restatement.lookback_months: no money changes)"
            cur = summary["currency"]
            print(
                f"  restatement of {month}: paid {vocabulary.money(restated['paid'], cur)} "
                f"(run {restated['paid_run_id']}), restated {vocabulary.money(restated['restated'], cur)}, "
                f"adjustment {vocabulary.money(restated['adjustment'], cur, sign=True)}{note}"
            )
    if "warning" in summary:
        print(f"  warning: {summary['warning']}")


def _config_path(argv: list[str]) -> Path | None:
    """The value of --config wherever it stands (before the command or after it)."""
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if arg.startswith("--config="):
            return Path(arg.split("=", 1)[1])
    return None


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse the command line over the config file's defaults (the command line wins)."""
    parser = build_parser()
    path = config.find(_config_path(argv))
    if path is not None:
        commands = parser.commands  # type: ignore[attr-defined]
        for name, values in config.defaults(path, config.read(path), commands).items():
            command = commands[name]
            for action in command._actions:
                if action.dest in values:
                    action.required = False  # given by the file
            command.set_defaults(**values)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parse(argv)
    except SystemExit as exc:  # --help, --version and usage errors: return the code, never exit
        return int(exc.code or 0)
    except UsageError as exc:  # the config file
        print(f"carrier-sla: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _dispatch(args)
    except CarrierSlaError as exc:
        if args.debug:
            traceback.print_exc()
        code = _error_code(exc)
        if getattr(args, "json", False) and args.command in JSON_ERRORS:
            print(json.dumps({"command": args.command, "exit_code": code, "error": str(exc)}))
        return code
    except BrokenPipeError:  # output piped into head and the like: not an error of ours
        sys.stderr.close()
        return EXIT_OK
    except OSError as exc:
        if exc.errno not in DISK_ERRNOS:
            traceback.print_exc()
            print("carrier-sla: unexpected internal error (exit 5)", file=sys.stderr)
            return EXIT_INTERNAL
        if args.debug:
            traceback.print_exc()
        print(f"carrier-sla: {describe_os_error(exc)}", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception:
        traceback.print_exc()
        print("carrier-sla: unexpected internal error (exit 5)", file=sys.stderr)
        return EXIT_INTERNAL


JSON_ERRORS = ("run", "validate", "report", "retract")  # with --json, an error is a JSON object on stdout too
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS)  # one line, no traceback


# errors raised on purpose: exit code and the prefix of their one line (PlanError lists every problem)
ERRORS: tuple[tuple[type[CarrierSlaError], int, str], ...] = (
    (PlanError, EXIT_USAGE, ""),
    (UsageError, EXIT_USAGE, ""),
    (InputDataError, EXIT_DATA, "input error: "),
    (StoreBusy, EXIT_BUSY, "store busy: "),
    (StoreError, EXIT_INTERNAL, "store error: "),
)


def _error_code(exc: CarrierSlaError) -> int:
    """Print an error raised on purpose (one line, or a plan's problems one per line); its exit code."""
    code, prefix = next(((c, p) for kind, c, p in ERRORS if isinstance(exc, kind)), (EXIT_INTERNAL, ""))
    print(f"carrier-sla: {prefix}{exc}", file=sys.stderr)
    return code


def _dispatch(args: argparse.Namespace) -> int:
    from carrier_sla.plan import load as planmod

    if args.command == "plans":
        if args.versions is not None:
            return _plan_versions(args.versions)
        for plan_id in planmod.bundled_plan_ids():
            p = planmod.load_plan(plan_id)
            print(f"{p.id}\t{p.version}\t{p.title}  [{p.notice}]")
        return EXIT_OK
    if args.command == "generate":
        from carrier_sla.synthetic.generate import generate

        if args.scale < 1 or args.periods < 1:
            raise UsageError("--scale and --periods must be at least 1")
        from carrier_sla.plan.periods import check_period

        check_period(args.period)
        counts = generate(
            args.out,
            args.period,
            periods=args.periods,
            scale=args.scale,
            seed=args.seed,
            fmt=args.format,
            files_per_type=args.files_per_type,
            clecs=args.clecs,
            zipf=args.zipf,
        )
        print(f"wrote {', '.join(f'{v:,} {k}' for k, v in counts.items())} to {args.out}")
        return EXIT_OK
    if args.command == "history":
        return _history(args)
    if args.command == "holidays":
        from carrier_sla.plan import holiday_lists

        first, last = holiday_lists.parse_years(args.years)
        table = holiday_lists.holiday_table(args.country, args.subdivision, first, last)
        print(holiday_lists.format_table(table))
        where = args.country + (f"/{args.subdivision}" if args.subdivision else "")
        print(
            f"carrier-sla: {sum(map(len, table.values()))} holidays of {where} {first}-{last} from holidays "
            f"{holiday_lists.package_version()}; paste as calendar.holidays and leave out the days the ILEC works",
            file=sys.stderr,
        )
        return EXIT_OK
    if getattr(args, "command_module", None):
        import importlib

        return int(importlib.import_module(args.command_module).command(args))
    from carrier_sla.plan.versions import load_versions

    if args.command == "retract":
        return _retract(args)
    versions = load_versions(args.plan)
    if args.command == "validate":
        from carrier_sla.engine.validate import validate_versions

        lines = validate_versions(versions, args.data)
        if args.json:
            plans = [{"id": p.id, "version": p.version, "sha256": p.sha256} for p in versions.versions]
            print(json.dumps({"command": "validate", "exit_code": EXIT_OK, "plans": plans, "checks": lines}))
        else:
            for line in lines:
                print(line)
        return EXIT_OK
    return _run(args, versions)


def _run(args: argparse.Namespace, versions: PlanVersions) -> int:
    """run --period MONTH, FIRST..LAST or auto (carrier_sla.engine.months.run_period): each month
    reported as it ends; a range announced, and where it stopped when a month fails (main maps
    the error to the exit code); auto's choice of months announced."""
    from carrier_sla.engine import months

    today = args.today or dt.datetime.now(dt.UTC).date()
    is_range = months.is_range(args.period)
    done: list[RunResult] = []
    periods: list[str] = []

    def chosen(jobs: months.Jobs) -> None:
        periods.extend(month for month, _ in jobs)
        if is_range and not args.quiet:
            print(
                f"carrier-sla: --period {periods[0]}..{periods[-1]}: {len(periods)} month(s) in order, one lock",
                file=sys.stderr,
            )
        elif not is_range:
            picked = ", ".join(f"{p} ({'provisional as of ' + str(a) if a else 'final'})" for p, a in jobs)
            print(f"carrier-sla: --period auto on {today}: {picked}", file=sys.stderr)

    def report(result: RunResult) -> None:
        done.append(result)
        _report_run(args, result)
        if is_range and not args.quiet:
            print(f"carrier-sla: {result.period} completed (run {result.run_id})", file=sys.stderr)

    log = _run_log(args)
    try:
        months.run_period(
            versions,
            args.data,
            args.period,
            args.out,
            as_of=args.as_of,
            today=today,
            final_within_days=args.final_within_days,
            done=report,
            chosen=chosen,
            log=log,
            **_run_options(args),
        )
    except Exception:
        if is_range and periods:
            first, last = periods[0], periods[-1]
            stopped = periods[len(done)] if len(done) < len(periods) else last
            left = periods[len(done) + 1 :]
            print(
                f"carrier-sla: --period {first}..{last} stopped at {stopped}"
                + (f"; completed: {', '.join(r.period for r in done)}" if done else "; no month completed")
                + (f"; not run: {', '.join(left)}" if left else ""),
                file=sys.stderr,
            )
        raise
    finally:
        log.detach()
    return _run_exit(args, done)


def _run_log(args: argparse.Namespace):
    from carrier_sla.engine.runlog import RunLog

    return RunLog(
        console=None if args.quiet else sys.stderr,
        interactive=sys.stderr.isatty(),
        console_format=args.log_format,
    )


def _report_run(args: argparse.Namespace, result: RunResult) -> None:
    """After each month: the human summary on stdout (not with --json or --quiet)."""
    if args.json:
        return
    if not args.quiet:
        _print_summary(result, args.out)
    else:  # the log lines are off: damage found on the way is still worth a line
        for warning in result.manifest.get("warnings", []):
            print(f"carrier-sla: warning: {warning}", file=sys.stderr)


def _run_exit(args: argparse.Namespace, done: list[RunResult]) -> int:
    """The exit code of `run` (1 with --fail-on miss and a miss), and with --json the machine summary."""
    misses = sum(int((r.results["status"] == "miss").sum()) for r in done if len(r.results))
    code = EXIT_MISS if args.fail_on == "miss" and misses else EXIT_OK
    if args.json:
        print(json.dumps({"command": "run", "exit_code": code, "runs": [run_summary(r) for r in done]}))
    return code


def run_summary(result: RunResult) -> dict:
    """The machine summary of one month's run (`run --json`; keys in the README)."""
    m = result.manifest
    remedies = m.get("remedies")
    paid = None
    if remedies:
        paid = {"currency": remedies["currency"], "total": remedies["periods"][result.period]["total"]}
    return {
        "run_id": result.run_id,
        "period": result.period,
        "status": m["status"],
        "provisional": m["provisional"],
        "provisional_as_of": m["provisional_as_of"],
        "plan": {"id": m["plan"]["id"], "version": m["plan"]["version"], "sha256": m["plan"]["sha256"]},
        "rows_read": sum(i["rows_read"] for i in m["inputs"]),
        "rows_rejected": sum(i["rows_rejected"] for i in m["inputs"]),
        "verdicts": m["verdicts"],
        "misses": int(m["verdicts"].get("miss", 0)),
        "measures_without_records": m.get("measures_without_records", []),
        "remedies": paid,
        "warnings": m.get("warnings", []),
        "manifest": str(result.manifest_path),
    }


def _retract(args: argparse.Namespace) -> int:
    from carrier_sla.store.retract import retract

    done = retract(args.store, args.period, cascade=args.cascade)
    if args.json:
        summary = {"command": "retract", "exit_code": EXIT_OK, "run_id": done.run_id, "retracted": list(done.periods)}
        print(json.dumps(summary | {"manifest": str(done.manifest_path)}))
    else:
        print(
            f"retracted {', '.join(done.periods)} from {args.store} (run {done.run_id}); the earlier views stay "
            f"under {args.store}/runs/; run the month again to publish it anew"
        )
    return EXIT_OK


def _run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of `run` a month and a range of months take alike."""
    return {
        "max_reject_rate": args.max_reject_rate,
        "partition_rows": args.partition_rows,
        "allow_empty": args.allow_empty,
        "workers": args.workers,
        "scheduler": args.scheduler,
    }


def _plan_versions(folder: Path) -> int:
    """plans --versions DIR: each version, its dates and months, file and sha256."""
    from carrier_sla.plan.versions import describe, load_versions

    if not folder.is_dir():
        raise UsageError(f"--versions {folder}: not a folder")
    versions = load_versions(folder)
    for line in describe(versions):
        print(line)
    return EXIT_OK


def _history(args: argparse.Namespace) -> int:
    import json

    from carrier_sla.plan.periods import check_period
    from carrier_sla.readers import history

    if args.period:
        check_period(args.period)
    warnings: list[str] = []
    rows = history.runs(args.store, args.period, warnings)
    for warning in warnings:
        print(f"carrier-sla: warning: {warning}", file=sys.stderr)
    if args.json:
        for row in rows:
            print(json.dumps(row, sort_keys=True))
    elif rows:
        print(history.format_rows(rows))
        print(
            "\ncurrent: the tables of the published view that come from the run; every run's view stays "
            f"readable under {args.store}/runs/RUN_ID/view"
        )
    else:
        print(f"no runs in {args.store}" + (f" for period {args.period}" if args.period else ""))
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""`carrier-sla report`: the monthly filing report (carrier_sla.readers.report), written to a folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from carrier_sla.readers import report, report_restated
from carrier_sla.store import verify


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("report", help="the monthly filing report: one HTML file and its tables as CSV")
    p.add_argument("--store", required=True, type=Path)
    p.add_argument("--period", required=True, help="YYYY-MM")
    p.add_argument("--state", help="only this state")
    p.add_argument("--out", required=True, type=Path, help="folder for report.html and the CSV tables")
    p.set_defaults(command_module=__name__)
    return p


def command(args: argparse.Namespace) -> int:
    verify.refuse_inside(args.out, args.store)
    built = report.build(args.store, args.period, args.state)
    files = report.write(built, args.out)
    state = f" {built.state}" if built.state else ""
    kind = f"PROVISIONAL as of {built.provisional_as_of}" if built.provisional else "final"
    print(f"report {built.period}{state} ({kind}), run {built.run_id}: {len(built.misses)} CLEC misses, "
          f"{built.total_paid:,.2f} paid{report_restated.summary(built)}")  # fmt: skip
    for path in files:
        print(f"  {path}")
    return 0

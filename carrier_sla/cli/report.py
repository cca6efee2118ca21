"""`carrier-sla report`: the monthly filing report (carrier_sla.readers.report), written to a folder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from carrier_sla import vocabulary
from carrier_sla.readers import report, report_restated
from carrier_sla.store import verify


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("report", help="the monthly filing report: one HTML file and its tables as CSV")
    p.add_argument("--store", required=True, type=Path, help="the output store")
    p.add_argument("--period", required=True, help="the published month to report, YYYY-MM")
    p.add_argument("--state", help="only this state")
    p.add_argument("--out", required=True, type=Path, help="folder for report.html and the CSV tables")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of text (README)")
    p.set_defaults(command_module=__name__)
    return p


def command(args: argparse.Namespace) -> int:
    verify.refuse_inside(args.out, args.store)
    built = report.build(args.store, args.period, args.state)
    files = report.write(built, args.out)
    if getattr(args, "json", False):
        summary = {
            "command": "report",
            "exit_code": 0,
            "period": built.period,
            "state": built.state,
            "run_id": built.run_id,
            "provisional": bool(built.provisional),
            "provisional_as_of": str(built.provisional_as_of) if built.provisional_as_of else None,
            "misses": len(built.misses),
            "total_paid": str(built.total_paid),
            "files": [str(path) for path in files],
        }
        print(json.dumps(summary))
        return 0
    state = f" {built.state}" if built.state else ""
    kind = f"PROVISIONAL as of {built.provisional_as_of}" if built.provisional else "final"
    print(f"report {built.period}{state} ({kind}), run {built.run_id}: {len(built.misses)} CLEC misses, "
          f"{vocabulary.money(built.total_paid, built.currency)} paid{report_restated.summary(built)}")  # fmt: skip
    for path in files:
        print(f"  {path}")
    return 0

"""`carrier-sla diff`: what changed between two runs, two stores' current views (carrier_sla.readers.diff,
written by carrier_sla.readers.diff_report), or two plan versions (carrier_sla.plan.diff)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from carrier_sla.errors import UsageError
from carrier_sla.readers.diff import diff_stores
from carrier_sla.readers.diff_report import format_text, summarize, write_out
from carrier_sla.store import verify


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "diff",
        help="what changed between two runs of a store, the current views of two stores, or two plan versions",
        description="Compare verdicts, figures, payments and input records of two runs (one --store, two --run) "
        "or of the current views of two stores (two --store); or, with two --plan, list what changed between "
        "two versions of a plan in words. Exit 0 with or without differences.",
    )
    p.add_argument("--store", action="append", type=Path, help="the store; twice: two stores")
    p.add_argument("--plan", action="append", help="a plan file or bundled id; twice: the two versions to compare")
    p.add_argument("--run", action="append", help="a run id of the store (give two)")
    p.add_argument(
        "--period",
        action="append",
        help="compare this month, YYYY-MM (repeatable); default: the months both views hold when the runs computed "
        "different months, else every month of either view",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the text report")
    p.add_argument("--out", type=Path, help="write verdicts.csv, figures.csv, payments.csv, records.csv, summary.json")
    p.add_argument("--top", type=int, default=20, help="record ids and text rows shown per kind (default 20)")
    p.set_defaults(command_module=__name__)
    return p


def command(args: argparse.Namespace) -> int:
    """Compare, print the text report (or the JSON object), write --out; 0 with or without differences."""
    if args.top < 0:
        raise UsageError("--top must be 0 or more")
    if args.plan:
        return _plans(args)
    if not args.store:
        raise UsageError("diff needs --store (a store and two --run, or two stores), or two --plan")
    if args.out:
        verify.refuse_inside(args.out, *args.store)
    a, b, diffs = diff_stores(args.store, args.run or [], args.period)
    report = summarize(a, b, diffs, args.top)
    written = write_out(args.out, diffs, report) if args.out else []
    if args.json:
        print(json.dumps(report, default=str, allow_nan=False))
    else:
        print(format_text(report, diffs, args.top))
        if written:
            print(f"\nwrote {', '.join(p.name for p in written)} to {args.out}")
    return 0


def _plans(args: argparse.Namespace) -> int:
    """diff --plan A --plan B: the changes between two plan versions, in words (or JSON)."""
    from carrier_sla.plan import diff as plan_diff
    from carrier_sla.plan.load import load_plan

    if len(args.plan) != 2 or args.store or args.run:
        raise UsageError("diff --plan compares two plans: give --plan twice, without --store or --run")
    a, b = (load_plan(p) for p in args.plan)
    found = plan_diff.changes(a.document, b.document)
    print(json.dumps(plan_diff.as_json(a, b, found)) if args.json else plan_diff.render(a, b, found))
    return 0

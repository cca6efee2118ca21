"""`carrier-sla what-if`: a published month recomputed under a changed plan (carrier_sla.readers.whatif)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from carrier_sla.errors import UsageError
from carrier_sla.readers import whatif


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("what-if", help="recompute a published month under a changed plan, publishing nothing")
    p.add_argument("--store", required=True, type=Path, help="the store holding the published month (read only)")
    p.add_argument("--period", required=True, help="the published month to recompute, YYYY-MM")
    p.add_argument("--data", required=True, type=Path, help="input directory (orders, troubles, lines)")
    p.add_argument(
        "--plan",
        help="another plan file, bundled plan id, or folder of plan versions (the version in force in the month; "
        "default: the baseline run's plan)",
    )
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="SPEC",
        help="change the plan: exclusion.CODE=off, MEASURE.exclusion.CODE=off or /json/pointer=VALUE (repeatable, "
        "applied in order; to the --plan document when given)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--out", type=Path, help="also write verdicts.csv, payments.csv and summary.json to this folder")
    p.set_defaults(command_module=__name__)
    return p


def command(args: argparse.Namespace) -> int:
    """Compare the published month with the month recomputed under the changed plan; print it."""
    if args.out is not None and args.out.resolve().is_relative_to(args.store.resolve()):
        raise UsageError(f"--out {args.out} is inside the store: what-if never writes into a store")
    summary, cells, lines = whatif.what_if(args.store, args.period, args.data, args.plan, args.sets)
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(whatif.format_text(summary))
    if args.out is not None:
        paths = whatif.write_files(args.out, summary, cells, lines)
        if not args.json:
            print(f"\nwrote {', '.join(str(p) for p in paths)}")
    return 0

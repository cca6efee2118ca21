"""`carrier-sla explain`: one verdict end to end (carrier_sla.readers.explain), as text or JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from carrier_sla import vocabulary
from carrier_sla.readers import explain


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "explain",
        help="one verdict end to end: rule, population, test, remedies, worst records",
        description=(explain.__doc__ or "").split("\n\n")[1].replace("\n", " "),
    )
    p.add_argument("--store", required=True, type=Path, help="the output store")
    p.add_argument("--period", required=True, help="reporting month YYYY-MM")
    p.add_argument("--measure", required=True, help="measure id, e.g. OP-3")
    p.add_argument("--carrier", required=True, help=f"CLEC id, or {vocabulary.AGGREGATE} for the all-CLEC aggregate")
    p.add_argument("--state", help="narrow down to this state, e.g. CO")
    p.add_argument("--product", help="narrow down to this CLEC product, e.g. resale_pots")
    p.add_argument("--submeasure", help="e.g. all, dispatch=true")
    p.add_argument("--run", help="read this run's view (STORE/runs/RUN_ID/view) instead of the current one")
    p.add_argument("--json", action="store_true", help="one JSON object with the same content")
    p.add_argument("--top", type=int, default=10, help="records behind the gap to list (default 10)")
    p.add_argument("--excluded", type=int, default=50, help="excluded CLEC records to list (default 50)")
    p.set_defaults(command_module=__name__)
    return p


def command(args: argparse.Namespace) -> int:
    """Print the explanation of one cell; UsageError (exit 2) when the key matches none or several cells."""
    result = explain.explain(
        args.store,
        args.period,
        args.measure,
        args.carrier,
        state=args.state,
        product=args.product,
        submeasure=args.submeasure,
        run_id=args.run,
        top=args.top,
        excluded=args.excluded,
    )
    print(json.dumps(result, indent=1, default=str) if args.json else explain.render(result))
    return 0

"""`carrier-sla package`: one CLEC's confidential package of a month (carrier_sla.readers.package)."""

from __future__ import annotations

import argparse
from pathlib import Path

from carrier_sla import vocabulary
from carrier_sla.readers.package import build_package
from carrier_sla.store import verify


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("package", help="write a confidential package of one CLEC's results, records and remedies")
    p.add_argument("--store", required=True, type=Path, help="the output store")
    p.add_argument("--period", required=True, help="reporting month YYYY-MM")
    p.add_argument("--carrier", required=True, help="the CLEC's carrier id, e.g. CLEC03")
    p.add_argument("--out", required=True, type=Path, help="the package folder (must not exist, or be empty)")
    p.add_argument("--run", help="read the view of this run (STORE/runs/RUN_ID/view) instead of the current one")
    p.set_defaults(command_module=__name__)
    return p


def command(args: argparse.Namespace) -> int:
    """Write the package and print what it holds; returns 0."""
    verify.refuse_inside(args.out, args.store)
    manifest = build_package(args.store, args.period, args.carrier, args.out, run_id=args.run)
    runs = sorted(set(manifest["source"]["runs"].values()))
    print(f"package of {manifest['carrier_id']} for {manifest['period']} in {args.out} (runs {', '.join(runs)})")
    for item in manifest["files"]:
        rows = "" if item["rows"] is None else f"{item['rows']:>9,} rows"
        print(f"  {item['path']:<34} {rows:>14} {item['bytes']:>12,} bytes")
    print("  manifest.json")
    if manifest["remedies"] is not None:
        remedies = manifest["remedies"]
        print(f"remedies to {manifest['carrier_id']}: {vocabulary.money(remedies['total'], remedies['currency'])}")
    return 0

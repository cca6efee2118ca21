"""`carrier-sla verify`: every published run's files against its manifest (carrier_sla.store.verify)."""

from __future__ import annotations

import argparse
from pathlib import Path

from carrier_sla.store.verify import format_verification, verify_store

EXIT_CLEAN, EXIT_DAMAGED = 0, 5


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "verify",
        help="check every published run's files against its manifest (presence, rows, sha256); exit 5 when damaged",
    )
    p.add_argument("--store", required=True, type=Path, help="the output store")
    p.set_defaults(command_module=__name__)
    return p


def command(args: argparse.Namespace) -> int:
    """Print what verify_store found; 0 when the store is whole, 5 when anything is damaged."""
    result = verify_store(args.store)
    print(format_verification(result))
    return EXIT_DAMAGED if result.problems else EXIT_CLEAN

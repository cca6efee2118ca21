"""Builders for tests: a few hand-made records written in the input contract, and a run."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from carrier_sla.engine import pipeline
from carrier_sla.plan.load import PLANS_DIR, load_plan, plan_from_document
from carrier_sla.vocabulary import AGGREGATE

ORDER_DEFAULTS: dict[str, Any] = {
    "carrier_id": "CLEC01",
    "state": "CO",
    "product": "resale_pots",
    "order_type": "new",
    "dispatch": "false",
    "received_at": "2026-10-05 09:00:00",
    "due_date": "2026-10-08",
    "completed_at": "2026-10-08 12:00:00",
    "foc_at": "2026-10-05 10:00:00",
    "requested_due_date": "",
    "cancelled": "false",
    "miss_reason": "",
    "channel": "electronic",
    "circuit_id": "",
    "test": "false",
    "quantity": "1",
}
TROUBLE_DEFAULTS: dict[str, Any] = {
    "carrier_id": "CLEC01",
    "state": "CO",
    "product": "resale_pots",
    "circuit_id": "C1",
    "dispatch": "false",
    "received_at": "2026-10-13 09:00:00",
    "cleared_at": "2026-10-13 11:00:00",
    "disposition": "network",
    "no_access_hours": "",
    "test": "false",
}
LINE_DEFAULTS: dict[str, Any] = {
    "period": "2026-10",
    "carrier_id": "CLEC01",
    "state": "CO",
    "product": "resale_pots",
    "lines_in_service": "100",
}


def _rows(
    defaults: dict[str, Any], id_field: str | None, prefix: str, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    out = []
    for i, row in enumerate(rows, start=1):
        full = {**({id_field: f"{prefix}{i}"} if id_field else {}), **defaults, **row}
        out.append({k: "" if v is None else (str(v).lower() if isinstance(v, bool) else v) for k, v in full.items()})
    return out


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str] | None = None) -> Path:
    columns = columns or list(rows[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_inputs(
    folder: Path,
    orders: list[dict[str, Any]] | None = None,
    troubles: list[dict[str, Any]] | None = None,
    lines: list[dict[str, Any]] | None = None,
) -> Path:
    """Write orders.csv, troubles.csv and lines.csv; each row overrides the defaults above.

    Ids default to O1, O2 ... / T1, T2 ...; an empty list still writes the header, so a
    run sees the file with no rows.
    """
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(
        folder / "orders.csv", _rows(ORDER_DEFAULTS, "order_id", "O", orders or []), ["order_id", *ORDER_DEFAULTS]
    )
    write_csv(
        folder / "troubles.csv",
        _rows(TROUBLE_DEFAULTS, "ticket_id", "T", troubles or []),
        ["ticket_id", *TROUBLE_DEFAULTS],
    )
    write_csv(folder / "lines.csv", _rows(LINE_DEFAULTS, None, "", lines or []), list(LINE_DEFAULTS))
    return folder


def example_document() -> dict[str, Any]:
    return json.loads((PLANS_DIR / "example-qc.json").read_text())


def keep_measures(doc: dict[str, Any], ids: tuple[str, ...]) -> dict[str, Any]:
    """Cut a plan document down to some measures (and their remedy rules)."""
    doc["measures"] = [m for m in doc["measures"] if m["id"] in ids]
    if "remedies" in doc:
        doc["remedies"]["measures"] = {k: v for k, v in doc["remedies"]["measures"].items() if k in ids}
    return doc


PLAIN_STATISTICS = {"parity_method": "modified_z", "critical_value": 1.645}


@pytest.fixture
def plan():
    """example-qc with its statistics held at the plain modified z and 1.645, so that tests of
    measure rules and figures do not depend on small-sample routing (tested on its own)."""
    doc = example_document()
    doc["statistics"] = dict(PLAIN_STATISTICS)
    return plan_from_document(doc, "example-qc (plain modified z)")


@pytest.fixture
def bundled_plan():
    """example-qc exactly as bundled."""
    return load_plan("example-qc")


@pytest.fixture
def make_plan():
    """Build a plan from example-qc with a change applied to its document."""

    def build(change) -> Any:
        doc = example_document()
        doc["statistics"] = dict(PLAIN_STATISTICS)
        change(doc)
        return plan_from_document(doc)

    return build


class Run:
    """A finished run with its outputs read back."""

    def __init__(self, result: pipeline.RunResult, out: Path):
        self.result = result
        self.out = out
        self.results = result.results

    def records(self, measure_id: str) -> pd.DataFrame:
        period = self.result.period
        return pd.read_parquet(self.out / "records" / f"period={period}" / f"measure_id={measure_id}")

    def rejects(self) -> pd.DataFrame:
        return pd.read_parquet(self.out / "rejects" / f"period={self.result.period}" / "part-0.parquet")

    def remedies(self) -> pd.DataFrame:
        from carrier_sla.store.view import read_table

        return read_table(self.out, "remedies", self.result.period).to_pandas()

    def cell(self, measure_id: str, carrier_id: str | None = "CLEC01", **keys: Any) -> pd.Series:
        frame = self.results[self.results["measure_id"] == measure_id]
        frame = frame[frame["carrier_id"] == (AGGREGATE if carrier_id is None else carrier_id)]
        for k, v in keys.items():
            frame = frame[frame[k] == v]
        assert len(frame) == 1, f"expected one {measure_id} cell for {carrier_id} {keys}, found {len(frame)}"
        return frame.iloc[0]

    def record(self, measure_id: str, record_id: str) -> pd.Series:
        frame = self.records(measure_id)
        frame = frame[frame["record_id"] == record_id]
        assert len(frame) == 1, f"expected record {record_id} once in {measure_id}, found {len(frame)}"
        return frame.iloc[0]


@pytest.fixture
def run_checker(tmp_path, plan):
    """Write the given records and run the checker on them for a period.

    A record type given no rows is written header-only: such a run has none of that type on
    purpose (a test of order measures writes no troubles), so it runs with allow_empty, which
    a run over an empty export would need (tests/test_presence.py tests that guard)."""
    counter = {"n": 0}

    def go(orders=None, troubles=None, lines=None, period="2026-10", use_plan=None, **kwargs) -> Run:
        counter["n"] += 1
        data = write_inputs(tmp_path / f"data{counter['n']}", orders, troubles, lines)
        out = tmp_path / f"store{counter['n']}"
        kwargs.setdefault("max_reject_rate", 1.0)
        kwargs.setdefault("allow_empty", not (orders and troubles and lines))
        result = pipeline.run(use_plan or plan, data, period, out, **kwargs)
        return Run(result, out)

    return go


GENERATED_MONTHS = ("2026-08", "2026-09", "2026-10")


@pytest.fixture(scope="session")
def generated_store(tmp_path_factory):
    """Three generated months (scale 3,000, seed 5) run in order under the bundled example-qc:
    (store, data folder, the manifest of each month's run). Shared by the test session: read only."""
    from carrier_sla.cli.main import main
    from carrier_sla.synthetic.generate import generate

    root = tmp_path_factory.mktemp("generated")
    generate(root / "data", "2026-10", periods=3, scale=3_000, seed=5, fmt="parquet")
    manifests = []
    for period in GENERATED_MONTHS:
        assert (
            main(
                [
                    "run",
                    "--plan",
                    "example-qc",
                    "--data",
                    str(root / "data"),
                    "--period",
                    period,
                    "--out",
                    str(root / "store"),
                    "--quiet",
                ]
            )
            == 0
        )
        runs = sorted((root / "store" / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
        manifests.append(json.loads((runs[-1] / "manifest.json").read_text()))
    return root / "store", root / "data", manifests


@pytest.fixture(scope="session")
def portal_store(generated_store, tmp_path_factory):
    """A copy of the generated store for the portal's tests, which write its audit log
    (STORE/portal/access.jsonl) and must leave the shared store as it is."""
    import shutil

    target = tmp_path_factory.mktemp("portal") / "store"
    shutil.copytree(generated_store[0], target, symlinks=True)  # the links are relative: they stay in the copy
    return target

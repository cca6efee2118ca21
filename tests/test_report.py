"""The filing report: tables that add up to the store, an HTML file that a real browser renders."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from decimal import Decimal

import pandas as pd
import pytest

from carrier_sla import store
from carrier_sla.cli import main

MONTHS = ("2026-08", "2026-09", "2026-10")
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture(scope="module")
def reported(generated_store, tmp_path_factory):
    """The shared generated store (three months under example-qc) and the report of its last month."""
    store_dir = generated_store[0]
    rep = tmp_path_factory.mktemp("report") / "rep"
    assert main(["report", "--store", str(store_dir), "--period", "2026-10", "--out", str(rep)]) == 0
    return store_dir, rep


def test_report_tables_add_up_to_the_store(reported):
    """summary.csv counts the CLEC cells per state and status; payments.csv sums to the ledger, per payee."""
    out, rep = reported
    results = store.read_table(out, "results", "2026-10").to_pandas()
    clec = results[results["scope"] == "clec"]
    summary = pd.read_csv(rep / "summary.csv").set_index("state")
    expected = clec.groupby(["state", "status"]).size()
    for (state, status), count in expected.items():
        assert summary.loc[state, status] == count
    ledger = store.read_table(out, "remedies", "2026-10").to_pandas()
    payments = pd.read_csv(rep / "payments.csv", dtype=str)
    paid = {p: Decimal(a) for p, a in zip(payments["payee"], payments["amount"], strict=True)}
    assert paid == {p: a for p, a in ledger.groupby("payee")["amount"].sum().items()}
    misses = pd.read_csv(rep / "misses.csv")
    assert len(misses) == (clec["status"] == "miss").sum() > 0
    trend = pd.read_csv(rep / "trend.csv")
    assert sorted(set(trend["month"])) == list(MONTHS)


def test_report_html_is_self_contained(reported):
    """No script, no external resource: nothing to fetch when the file is opened offline."""
    _, rep = reported
    text = (rep / "report.html").read_text()
    assert "<script" not in text.lower()
    assert not re.search(r"""(src|href)\s*=""", text, re.I)
    assert not re.search(r"url\(", text, re.I)
    assert text.count("<svg") >= 9  # the misses chart and one trend chart per measure


@pytest.mark.skipif(
    BROWSER is None and not os.environ.get("CARRIER_SLA_REQUIRE_BROWSER"),
    reason="no Chromium here (.ci/run installs it and requires this test)",
)
def test_report_renders_in_a_headless_browser_without_console_errors(reported, tmp_path):
    """Chromium renders the report (DOM and screenshot), logs nothing to its console, and the total
    it shows equals the ledger's total in the store."""
    assert BROWSER is not None, "CARRIER_SLA_REQUIRE_BROWSER is set but Chromium is not installed"
    out, rep = reported
    flags = [
        BROWSER,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    url = (rep / "report.html").as_uri()
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "CONSOLE" not in dom.stderr, [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    total = sum(store.read_table(out, "remedies", "2026-10").to_pandas()["amount"], Decimal("0.00"))
    assert re.search(r'id="total-paid">([0-9,.]+)<', dom.stdout).group(1) == f"{total:,.2f}"
    assert dom.stdout.count("<svg") >= 9 and "Results by measure" in dom.stdout
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [*flags, "--window-size=1300,2000", f"--screenshot={shot}", url], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and shot.stat().st_size > 20_000  # a page with tables and charts, not blank


def test_report_for_one_state(reported, tmp_path):
    """--state keeps that state's cells and payments only."""
    out, _ = reported
    assert main(["report", "--store", str(out), "--period", "2026-10", "--state", "CO", "--out", str(tmp_path)]) == 0
    assert set(pd.read_csv(tmp_path / "measures.csv")["state"]) == {"CO"}
    ledger = store.read_table(out, "remedies", "2026-10").to_pandas()
    payments = pd.read_csv(tmp_path / "payments.csv", dtype=str)
    assert sum(map(Decimal, payments["amount"])) == sum(ledger.loc[ledger["state"] == "CO", "amount"], Decimal(0))


def test_report_refuses_an_unknown_period_or_state(reported, tmp_path, capsys):
    """An unpublished period or a state without results exits 2 with the reason."""
    out, _ = reported
    assert main(["report", "--store", str(out), "--period", "2027-01", "--out", str(tmp_path / "a")]) == 2
    assert "no published results for period 2027-01" in capsys.readouterr().err
    assert (
        main(["report", "--store", str(out), "--period", "2026-10", "--state", "TX", "--out", str(tmp_path / "b")]) == 2
    )

"""The portal in a real browser: headless Chromium from the system packages, driven by Playwright.

A CLEC signs in, opens a missed cell and checks its numbers against the store, downloads its package,
and fails to reach another carrier's page by editing the URL. The screenshots go to a temporary
folder, and with CARRIER_SLA_UPDATE_SCREENSHOTS=1 into docs/portal-*.png, which the README shows
(not on every run: the run ids on the pages change with every store, and a test run should not
change the working tree).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import threading
import time
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest

from carrier_sla import vocabulary

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
REQUIRED = bool(os.environ.get("CARRIER_SLA_REQUIRE_BROWSER"))
DOCS = Path(__file__).resolve().parents[1] / "docs"
C, OTHER, P, PASSWORD = "CLEC03", "CLEC07", "2026-10", "browser-test-password"

pytestmark = pytest.mark.skipif(
    BROWSER is None and not REQUIRED, reason="no Chromium here (.ci/run installs it and requires this test)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(portal_store, tmp_path_factory):
    """The portal served by uvicorn in a thread on a free port, with one CLEC user (ana, CLEC03)."""
    uvicorn = pytest.importorskip("uvicorn")
    from carrier_sla.portal.app import create_app
    from carrier_sla.portal.users import add_user, load_users

    users = tmp_path_factory.mktemp("users") / "users.toml"
    add_user(users, "ana", PASSWORD, carrier=C)
    port = _free_port()
    config = uvicorn.Config(
        create_app(portal_store, load_users(users)), host="127.0.0.1", port=port, log_level="warning"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the portal did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    assert BROWSER is not None, "CARRIER_SLA_REQUIRE_BROWSER is set but Chromium is not installed"
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=BROWSER, args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


def _shot(page, name: str, folder: Path) -> None:
    page.screenshot(path=str(folder / f"portal-{name}.png"))
    if os.environ.get("CARRIER_SLA_UPDATE_SCREENSHOTS"):
        shutil.copyfile(folder / f"portal-{name}.png", DOCS / f"portal-{name}.png")


def test_a_clec_signs_in_checks_a_missed_cell_downloads_and_cannot_reach_another_carrier(
    server, browser, portal_store, tmp_path
):
    from carrier_sla.store.view import open_store

    view = open_store(portal_store)
    results = view.results(P)
    own = results[(results["scope"] == "clec") & (results["carrier_id"] == C)]
    ledger = view.remedies(P)
    owed = sum(ledger.loc[ledger["payee"] == C, "amount"], Decimal(0))

    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    # signed out, a month's page sends to the sign-in form
    page.goto(f"{server}/c/{C}/{P}")
    assert "/login" in page.url
    _shot(page, "login", tmp_path)
    page.fill("#name", "ana")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/c/{C}/{P}")
    assert page.inner_text("#signed-in-as") == f"ana ({C})"
    assert page.inner_text("#owed") == f"USD {owed:,.2f}"
    _shot(page, "summary", tmp_path)

    # the first missed cell: its figures are the store's
    link = page.locator("#cells tr.miss a.cell-link").first
    link.click()
    page.wait_for_load_state()
    assert "/cell?" in page.url
    assert page.inner_text("#verdict").startswith("Verdict: miss")
    cells = page.locator("#fig-clec td").all_inner_texts()
    key = {k: v for k, v in (part.split("=", 1) for part in page.url.split("?", 1)[1].split("&"))}
    from urllib.parse import unquote_plus

    key = {k: unquote_plus(v) for k, v in key.items()}
    row = own
    agg = results[results["carrier_id"] == vocabulary.AGGREGATE]
    for k in vocabulary.MEASURE_CELL:
        row = row[row[k].astype(str) == key[k]]
        agg = agg[agg[k].astype(str) == key[k]]
    assert len(row) == 1 and row["status"].iloc[0] == "miss"
    assert cells[0] == C and int(cells[1].replace(",", "")) == int(row["clec_n"].iloc[0])
    aggregate = page.locator("#fig-aggregate td").all_inner_texts()  # the cell's _all row, beside the CLEC's
    assert len(agg) == 1 and int(aggregate[1].replace(",", "")) == int(agg["clec_n"].iloc[0])
    assert float(cells[3].rstrip("%").split()[0].replace(",", "")) == pytest.approx(row["clec_value"].iloc[0], abs=1e-4)
    assert page.locator("figure.trend svg").count() == 1
    _shot(page, "cell", tmp_path)

    # the package: the zip of `carrier-sla package` for CLEC03, 2026-10
    page.goto(f"{server}/c/{C}/{P}")
    with page.expect_download() as info:
        page.click("#download-package")
    target = tmp_path / "package.zip"
    info.value.save_as(target)
    with zipfile.ZipFile(target) as archive:
        manifest = json.loads(archive.read(f"package-{C}-{P}/manifest.json"))
        names = set(archive.namelist())
    assert manifest["carrier_id"] == C and manifest["period"] == P
    assert manifest["remedies"]["total"] == f"{owed}"
    assert {f"package-{C}-{P}/{f['path']}" for f in manifest["files"]} | {f"package-{C}-{P}/manifest.json"} == names

    page.goto(f"{server}/c/{C}/trends")
    assert page.locator("figure.trend").count() >= 5
    _shot(page, "trends", tmp_path)

    # editing the URL to another carrier, or to the aggregate's _all: 404, and nothing of it shown
    agg_id = vocabulary.AGGREGATE
    for url in (f"{server}/c/{OTHER}/{P}", page.url.replace(f"/c/{C}/", f"/c/{OTHER}/"), f"{server}/c/{agg_id}/{P}"):
        response = page.goto(url)
        assert response is not None and response.status == 404, url
        assert page.inner_text("h1") == "Not found"
        assert OTHER not in page.content()
    _shot(page, "not-found", tmp_path)
    # no CSP violation and no script error (the 404s asked for above are logged as failed loads)
    assert [m for m in problems if not m.startswith("Failed to load resource")] == []
    context.close()


def test_the_download_is_a_zip_of_files(server, browser, tmp_path):
    """Without a session the package link leads to the sign-in form, not to a file."""
    context = browser.new_context()
    page = context.new_page()
    response = page.goto(f"{server}/c/{C}/{P}/download/package.zip")
    assert response is not None and response.status == 200 and "/login" in page.url
    assert "zip" not in (response.headers.get("content-type") or "")
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(response.body()))
    context.close()

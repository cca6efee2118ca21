"""The CLEC portal (carrier-sla serve): each carrier sees only its own data, through every route.

Run with Starlette's test client over a copy of the generated store (three months, 12 CLECs).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from decimal import Decimal
from urllib.parse import urlencode

import pytest

pytest.importorskip("starlette")
pytest.importorskip("argon2")

from starlette.testclient import TestClient

from carrier_sla import vocabulary
from carrier_sla.cli.main import main
from carrier_sla.portal import throttle as throttle_mod
from carrier_sla.portal.access import AccessLog
from carrier_sla.portal.app import create_app
from carrier_sla.portal.throttle import LoginThrottle
from carrier_sla.portal.users import User, add_user, hash_password, load_users
from carrier_sla.store.verify import verify_store
from carrier_sla.store.view import open_store

C, OTHER, P = "CLEC03", "CLEC07", "2026-10"
PASSWORDS = {
    "ana": "ana-password",
    "olga": "olga-password",
    "sam": "sam-password",
    "ivy": "ivy-password",
    "zed": "zed-password",
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def users():
    return {
        "ana": User("ana", "clec", C, hash_password(PASSWORDS["ana"])),
        "olga": User("olga", "clec", OTHER, hash_password(PASSWORDS["olga"])),
        "sam": User("sam", "staff", None, hash_password(PASSWORDS["sam"])),
        "ivy": User("ivy", "ilec", None, hash_password(PASSWORDS["ivy"])),
        "zed": User("zed", "clec", "CLEC99", hash_password(PASSWORDS["zed"])),
    }


@pytest.fixture(scope="module")
def app(portal_store, users):
    return create_app(portal_store, users, secret_key="test-secret", throttle=LoginThrottle(Clock()))


def csrf_of(client: TestClient) -> str:
    page = client.get("/login")
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def login(client: TestClient, name: str, password: str | None = None, next_: str = "/"):
    return client.post(
        "/login",
        data={"name": name, "password": password or PASSWORDS[name], "csrf": csrf_of(client), "next": next_},
        follow_redirects=False,
    )


@pytest.fixture
def as_user(app):
    def make(name: str) -> TestClient:
        client = TestClient(app)
        assert login(client, name).status_code == 303
        return client

    return make


@pytest.fixture(scope="module")
def store_facts(portal_store):
    """What the store says, read through the store view: cells, a missed cell, records of each carrier."""
    view = open_store(portal_store)
    results = view.results(P)
    own = results[(results["scope"] == "clec") & (results["carrier_id"] == C)]
    missed = own[own["status"] == "miss"].sort_values(list(vocabulary.READING_ORDER)).iloc[0]
    key = {k: str(missed[k]) for k in vocabulary.MEASURE_CELL}
    other_cells = results[(results["scope"] == "clec") & (results["carrier_id"] == OTHER)]
    own_keys = {tuple(str(r[k]) for k in key) for r in own.to_dict("records")}
    only_other = next(r for r in other_cells.to_dict("records") if tuple(str(r[k]) for k in key) not in own_keys)
    records = view.records(P, key["measure_id"])
    carriers = sorted(results.loc[results["scope"] == "clec", "carrier_id"].dropna().unique())
    return {
        "view": view,
        "results": results,
        "missed": missed,
        "key": key,
        "other_key": {k: str(only_other[k]) for k in key},
        "own_record": str(records.loc[records["carrier_id"] == C, "record_id"].iloc[0]),
        "other_record": str(records.loc[records["carrier_id"] == OTHER, "record_id"].iloc[0]),
        "carriers": carriers,
    }


def routes(carrier: str, facts: dict, run: str | None = None) -> list[str]:
    """Every route of the portal that shows or hands out a carrier's data."""
    key, m = facts["key"], facts["key"]["measure_id"]
    record = facts["own_record"] if carrier == C else facts["other_record"]
    base = f"/c/{carrier}"
    urls = [
        base,
        f"{base}/trends",
        f"{base}/{P}",
        f"{base}/{P}/cell?{urlencode(key)}",
        f"{base}/{P}/record/{m}/{record}",
        f"{base}/{P}/download/package.zip",
        f"{base}/{P}/download/results.csv",
        f"{base}/{P}/download/remedies.csv",
        f"{base}/{P}/download/rejects.csv",
        f"{base}/{P}/download/statement.csv",
        f"{base}/{P}/download/records/{m}.csv",
    ]
    if run:
        urls = [u + ("&" if "?" in u else "?") + f"run={run}" for u in urls]
    return urls


def texts(response) -> str:
    """A response's text; a zip's files, every one decoded (Parquet files: their bytes as latin-1)."""
    if response.headers["content-type"] == "application/zip":
        archive = zipfile.ZipFile(io.BytesIO(response.content))
        return "\n".join(archive.read(n).decode("latin-1") for n in archive.namelist())
    return response.text


# ---------------------------------------------------------------------- who sees what


def test_anonymous_requests_are_redirected_to_login(app, store_facts):
    """Every data route, asked without a session, answers 303 to /login with the page to come back to."""
    client = TestClient(app)
    for url in ["/", *routes(C, store_facts)]:
        r = client.get(url, follow_redirects=False)
        assert r.status_code == 303, url
        assert r.headers["location"].startswith("/login?next="), url
    assert "Sign in" in client.get("/login").text


def test_a_clec_user_gets_its_own_data_on_every_route_and_no_other_carrier(as_user, store_facts):
    """Every route answers 200 for the CLEC's own carrier, and no other carrier's id appears in any page or file."""
    client = as_user("ana")
    others = [c for c in store_facts["carriers"] if c != C]
    for url in routes(C, store_facts):
        r = client.get(url)
        assert r.status_code == 200, url
        body = texts(r)
        leaked = [c for c in others if c in body]
        assert not leaked, f"{url} names {leaked}"


def test_a_clec_user_gets_404_for_every_route_of_another_carrier(as_user, store_facts):
    """Another carrier's months, cells, records, downloads: 404, the same as for what does not exist."""
    client = as_user("ana")
    for url in routes(OTHER, store_facts):
        r = client.get(url)
        assert r.status_code == 404, url
        assert OTHER not in r.text.replace(url, "")
    missing = client.get("/c/NOSUCH/2026-10")
    assert missing.status_code == 404
    assert re.sub(r"<title>.*?</title>", "", missing.text) == re.sub(
        r"<title>.*?</title>", "", client.get(f"/c/{OTHER}/{P}").text
    )  # the same page: a 404 does not tell whether the carrier exists


def test_another_carriers_cell_record_and_run_are_404_under_the_own_carrier(as_user, store_facts):
    """A cell only another carrier has, another carrier's record id, an unknown run, a month not published:
    404 also when asked under the user's own carrier."""
    client = as_user("ana")
    m = store_facts["key"]["measure_id"]
    assert client.get(f"/c/{C}/{P}/cell?{urlencode(store_facts['other_key'])}").status_code == 404
    assert client.get(f"/c/{C}/{P}/record/{m}/{store_facts['other_record']}").status_code == 404
    assert client.get(f"/c/{C}/{P}?run=20990101T000000Z-000000").status_code == 404
    assert client.get(f"/c/{C}/2026-11").status_code == 404
    assert client.get(f"/c/{C}/{P}/download/escalation.csv").status_code == 404
    assert client.get(f"/c/{C}/{P}/download/records/NOPE.csv").status_code == 404
    assert client.get(f"/c/{C}/{P}/cell?measure_id={m}").status_code == 404  # an incomplete key
    assert client.get("/", follow_redirects=False).headers["location"] == f"/c/{C}"
    assert client.get("/?go=CLEC07", follow_redirects=False).headers["location"] == f"/c/{C}"  # no switch for a CLEC


def test_the_aggregate_is_no_carrier_of_its_own(as_user, store_facts):
    """The all-CLEC aggregate's carrier_id `_all` is not a carrier: /c/_all/... is a 404 on every route for a
    CLEC user (as for another carrier) and for staff alike, the switch refuses it, and no page lists it
    among the carriers; its figures appear only beside a CLEC's own cells."""
    agg = vocabulary.AGGREGATE
    assert (store_facts["results"]["carrier_id"] == agg).any()  # the store does hold _all rows
    for name in ("ana", "sam"):
        client = as_user(name)
        for url in routes(agg, dict(store_facts, other_record=store_facts["own_record"])):
            assert client.get(url).status_code == 404, (name, url)
    staff = as_user("sam")
    assert staff.get(f"/?go={agg}").status_code == 404
    assert f"/c/{agg}" not in staff.get("/").text and agg not in store_facts["carriers"]


@pytest.mark.parametrize(
    "url",
    [
        f"/c/{C}/..%2F..%2Fetc%2Fpasswd",
        f"/c/{C}/{P}/download/..%2Fmanifest.csv",
        f"/c/{C}/{P}/record/..%2F..%2F/x",
        f"/c/..%2F{C}/{P}",
        f"/c/{C}/{P}/download/statement.csv?run=..%2F..",
        f"/c/{C}/{P}?run=%2Fetc",
    ],
)
def test_names_from_the_url_are_looked_up_never_joined_into_a_path(as_user, url):
    """Path-like names in a URL are unknown names: 404."""
    assert as_user("ana").get(url).status_code == 404


def test_a_published_run_is_served_to_its_carriers(as_user, store_facts, portal_store):
    """?run=RUN_ID shows the store as that run published it (the run of 2026-09 holds August and September
    only), for every route of the own carrier; another carrier's routes under that run are 404."""
    view = store_facts["view"]
    run = view.run_of("2026-09")
    client = as_user("ana")
    months = client.get(f"/c/{C}?run={run}")
    assert months.status_code == 200
    assert "2026-09" in months.text and f"/c/{C}/2026-10" not in months.text
    facts = dict(store_facts)
    p = "2026-09"
    for url in [u.replace(P, p) for u in routes(C, facts, run)]:
        if "/cell?" in url or "/record/" in url:
            continue  # the key and the record come from 2026-10
        assert client.get(url).status_code == 200, url
    for url in routes(OTHER, facts, run):
        assert client.get(url).status_code == 404, url
    cell = client.get(f"/c/{C}/{P}/cell?{urlencode(facts['key'])}&run={view.run_of(P)}")
    assert cell.status_code == 200 and f"the view of run {view.run_of(P)}" in cell.text
    back = re.search(r'<a href="([^"]+)" id="current-view">', cell.text).group(1).replace("&amp;", "&")
    assert back == f"/c/{C}/{P}/cell?{urlencode(facts['key'])}"  # the same page in the current view


def test_staff_and_ilec_users_see_every_carrier_and_can_switch(as_user, store_facts):
    """Staff and ILEC users get 200 on every carrier's routes, a list of every carrier, and the switch."""
    for name in ("sam", "ivy"):
        client = as_user(name)
        home = client.get("/")
        assert home.status_code == 200
        assert all(f"/c/{c}" in home.text for c in store_facts["carriers"])
        for url in routes(OTHER, store_facts) + routes(C, store_facts):
            assert client.get(url).status_code == 200, url
        switched = client.get(f"/?go={OTHER}", follow_redirects=False)
        assert switched.headers["location"] == f"/c/{OTHER}"
        assert client.get("/?go=NOSUCH").status_code == 404


def test_a_clec_without_results_sees_the_months_and_nothing_else(as_user, store_facts):
    """A CLEC user whose carrier has no row in the store: the months (0 cells, 0.00 owed), and 404 for a
    month's page, its package and its files (nothing of the carrier to show)."""
    client = as_user("zed")
    months = client.get("/c/CLEC99")
    assert months.status_code == 200 and months.text.count('<td class="n">0.00</td>') == 3
    for url in routes("CLEC99", store_facts)[2:]:
        assert client.get(url).status_code == 404, url


# ---------------------------------------------------------------------- the numbers on the pages


def test_summary_lists_misses_first_and_the_money_owed(as_user, store_facts):
    """The month's page: the missed cells before every other, and the ledger total paid to the carrier."""
    page = as_user("ana").get(f"/c/{C}/{P}").text
    rows = re.findall(rf'<tr class="({"|".join(vocabulary.STATUSES)})">', page)
    results = store_facts["results"]
    own = results[(results["scope"] == "clec") & (results["carrier_id"] == C)]
    misses = int((own["status"] == "miss").sum())
    assert misses > 0 and len(rows) == len(own)
    assert rows[:misses] == ["miss"] * misses and "miss" not in rows[misses:]
    ledger = store_facts["view"].remedies(P)
    owed = sum(ledger.loc[ledger["payee"] == C, "amount"], Decimal(0))
    assert re.search(r'id="owed">USD ([\d,.]+)<', page).group(1) == f"{owed:,.2f}"


def test_cell_page_shows_the_explanation_with_the_stores_figures(as_user, store_facts):
    """A missed cell's page: the verdict, the CLEC's and the aggregate's n and value as in results, the
    payment, the rule, population and test sections, and a trend chart."""
    missed, key = store_facts["missed"], store_facts["key"]
    page = as_user("ana").get(f"/c/{C}/{P}/cell?{urlencode(key)}").text
    assert re.search(r'id="verdict">Verdict: <strong>miss</strong>', page)
    clec = re.search(r'<tr id="fig-clec"><td>CLEC03</td><td class="n">([\d,]+)</td>', page).group(1)
    assert int(clec.replace(",", "")) == int(missed["clec_n"])
    results = store_facts["results"]
    agg = results[(results["scope"] == "clec_aggregate")]
    for k, v in key.items():
        agg = agg[agg[k].astype(str) == v]
    assert list(agg["carrier_id"]) == [vocabulary.AGGREGATE]  # the aggregate row of the cell, spelt _all
    agg_n = re.search(r'<tr id="fig-aggregate"><td>all CLECs</td><td class="n">([\d,]+)</td>', page).group(1)
    assert int(agg_n.replace(",", "")) == int(agg["clec_n"].iloc[0])
    assert f"{missed['clec_value']:,.4f}" in page
    for section in ("Plan rule", "Population", "Test", "Payment", "Records that weighed most", "Excluded records"):
        assert f"<h2>{section}</h2>" in page
    ledger = store_facts["view"].remedies(P)
    line = ledger[(ledger["payee"] == C) & (ledger["measure_id"] == key["measure_id"]) & (ledger["state"] == key["state"])
                  & (ledger["product"] == key["product"]) & (ledger["submeasure"] == key["submeasure"])]  # fmt: skip
    for amount in line["amount"]:
        assert f'<span class="amount">{amount}</span>' in page
    assert '<figure class="trend"><svg' in page


def test_a_record_page_shows_the_records_rows(as_user, store_facts):
    """The record page lists the record's row of the measure, with its carrier."""
    m, rid = store_facts["key"]["measure_id"], store_facts["own_record"]
    page = as_user("ana").get(f"/c/{C}/{P}/record/{m}/{rid}").text
    assert f"<th>record_id</th><td>{rid}</td>" in page and f"<th>carrier_id</th><td>{C}</td>" in page


def test_trends_draw_one_chart_per_measure_over_the_months(as_user, store_facts):
    """Trends: an SVG per measure with the carrier's activity, and the misses per month, over the 3 months."""
    page = as_user("ana").get(f"/c/{C}/trends").text
    assert page.count('<figure class="trend">') >= 5
    assert '<figure class="bars">' in page
    assert all(m in page for m in ("2026-08", "2026-09", "2026-10"))
    assert "<script" not in page and "style=" not in page


# ---------------------------------------------------------------------- downloads


def test_the_package_download_is_the_package_command_s_package(as_user, store_facts, portal_store, tmp_path):
    """The zip holds the files of `carrier-sla package` for the same carrier and month, byte for byte, and
    the same manifest (its creation time aside)."""
    r = as_user("ana").get(f"/c/{C}/{P}/download/package.zip")
    assert r.status_code == 200 and r.headers["content-disposition"] == f'attachment; filename="package-{C}-{P}.zip"'
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    prefix = f"package-{C}-{P}/"
    zipped = {n.removeprefix(prefix): archive.read(n) for n in archive.namelist()}
    out = tmp_path / "pkg"
    assert main(["package", "--store", str(portal_store), "--period", P, "--carrier", C, "--out", str(out)]) == 0
    made = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert sorted(zipped) == sorted(made)
    portal_manifest, cli_manifest = json.loads(zipped.pop("manifest.json")), json.loads(made.pop("manifest.json"))
    times = portal_manifest.pop("created_at"), cli_manifest.pop("created_at")
    for manifest in (portal_manifest, cli_manifest):  # README.txt names the creation time, so its sha256 differs
        readme = next(f for f in manifest["files"] if f["path"] == "README.txt")
        readme.pop("sha256")
    assert portal_manifest == cli_manifest
    assert zipped.pop("README.txt").decode().replace(times[0], times[1]) == made.pop("README.txt").decode()
    for name in made:
        assert zipped[name] == made[name], name


def test_csv_downloads_hold_the_package_s_rows(as_user, store_facts, tmp_path, portal_store):
    """results.csv and remedies.csv equal the package's files of the same name; records/ID.csv holds the
    carrier's records of that measure only."""
    client = as_user("ana")
    out = tmp_path / "pkg"
    assert main(["package", "--store", str(portal_store), "--period", P, "--carrier", C, "--out", str(out)]) == 0
    for name in ("results", "remedies"):
        assert client.get(f"/c/{C}/{P}/download/{name}.csv").content == (out / f"{name}.csv").read_bytes(), name
    assert client.get(f"/c/{C}/{P}/download/statement.csv").content == (out / "statement.csv").read_bytes()
    m = store_facts["key"]["measure_id"]
    lines = client.get(f"/c/{C}/{P}/download/records/{m}.csv").text.splitlines()
    header = lines[0].replace('"', "").split(",")
    carrier_col = header.index("carrier_id")
    records = store_facts["view"].records(P, m)
    assert len(lines) - 1 == int((records["carrier_id"] == C).sum())
    assert {line.split(",")[carrier_col].strip('"') for line in lines[1:]} == {C}


# ---------------------------------------------------------------------- logins


def test_a_wrong_password_is_refused(app):
    """A wrong password answers 401 with the form again, and gives no session."""
    client = TestClient(app)
    r = login(client, "olga", "not-her-password")
    assert r.status_code == 401 and "Wrong name or password." in r.text
    assert client.get(f"/c/{OTHER}", follow_redirects=False).status_code == 303
    assert login(client, "nobody", "whatever-password").status_code == 401  # an unknown name: the same answer


def test_repeated_failures_are_slowed(portal_store, users):
    """After 3 failures for a name, the next attempt is refused (429, not even checked) until 1 s after the
    last failure, then 2 s, 4 s ...; a success clears the name's count."""
    clock = Clock()
    client = TestClient(create_app(portal_store, users, secret_key="k", throttle=LoginThrottle(clock)))
    for _ in range(3):
        assert login(client, "ana", "wrong-password").status_code == 401
    r = login(client, "ana")  # the right password, too soon: not checked
    assert r.status_code == 429 and r.headers["retry-after"] == "2"
    clock.now += 1.01
    assert login(client, "ana", "wrong-password").status_code == 401  # the 4th failure: next wait 2 s
    clock.now += 1.5
    assert login(client, "ana").status_code == 429
    clock.now += 0.6
    assert login(client, "ana").status_code == 303  # signed in; the name's count is cleared
    assert throttle_mod.FREE == 3


def test_one_address_trying_many_names_is_slowed(portal_store, users):
    """Failures count per client address as well: three names tried wrong, then a fourth is refused."""
    client = TestClient(create_app(portal_store, users, secret_key="k", throttle=LoginThrottle(Clock())))
    for name in ("ana", "olga", "sam"):
        assert login(client, name, "wrong-password").status_code == 401
    assert login(client, "ivy").status_code == 429


def test_the_login_form_needs_its_csrf_token(app):
    """A login POST without the session's token is refused (400) and signs no one in."""
    client = TestClient(app)
    client.get("/login")
    r = client.post("/login", data={"name": "ana", "password": PASSWORDS["ana"], "csrf": "forged"})
    assert r.status_code == 400
    assert client.get(f"/c/{C}", follow_redirects=False).status_code == 303


def test_login_returns_to_a_local_page_only(app):
    """next= may name a page of this site only: //evil.example and https://... go to /."""
    for target, expected in ((f"/c/{C}/{P}", f"/c/{C}/{P}"), ("//evil.example/", "/"), ("https://evil.example", "/")):
        client = TestClient(app)
        assert login(client, "ana", next_=target).headers["location"] == expected


def test_logout_ends_the_session(as_user):
    client = as_user("ana")
    token = re.search(r'name="csrf" value="([^"]+)"', client.get(f"/c/{C}").text).group(1)
    assert client.post("/logout", data={"csrf": token}, follow_redirects=False).status_code == 303
    assert client.get(f"/c/{C}", follow_redirects=False).status_code == 303


def test_a_session_cookie_is_signed_httponly_and_samesite(app, portal_store, users):
    """The session cookie: HttpOnly, SameSite=Lax, Secure when served with https; a tampered cookie is no session."""
    client = TestClient(app)
    cookie = login(client, "ana").headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower() and "secure" not in cookie.lower()
    secure = TestClient(create_app(portal_store, users, secret_key="k", https=True), base_url="https://testserver")
    r = login(secure, "ana")
    assert "secure" in r.headers["set-cookie"].lower()
    assert r.headers["strict-transport-security"].startswith("max-age=")
    value = client.cookies.get("carrier_sla_session")
    forged = TestClient(app)
    forged.cookies.set("carrier_sla_session", value[:-4] + "AAAA")
    assert forged.get(f"/c/{C}", follow_redirects=False).status_code == 303


# ---------------------------------------------------------------------- headers, errors, audit


def test_security_headers_on_pages_files_errors_and_static(as_user, store_facts):
    client = as_user("ana")
    for url in (f"/c/{C}/{P}", f"/c/{C}/{P}/download/results.csv", f"/c/{OTHER}", "/static/portal.css", "/login"):
        h = client.get(url).headers
        assert h["content-security-policy"].startswith("default-src 'self'"), url
        assert "frame-ancestors 'none'" in h["content-security-policy"], url
        assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff", url
        assert h["referrer-policy"] == "no-referrer", url


def test_no_page_holds_an_inline_script_or_style(as_user, store_facts):
    """CSP allows no inline script or style: the pages hold none (no <script>, no style= or <style>)."""
    client = as_user("sam")
    for url in ["/", "/login", *(u for u in routes(C, store_facts) if "download" not in u)]:
        text = client.get(url).text
        assert "<script" not in text and "style=" not in text and "<style" not in text, url


def test_a_server_error_shows_no_traceback(portal_store, users, monkeypatch):
    """An unexpected error answers 500 with the portal's page: no traceback, no exception text, the headers."""
    app = create_app(portal_store, users, secret_key="k")

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals at /srv/store")

    monkeypatch.setattr(app.state.site.portal, "summary", broken)
    client = TestClient(app, raise_server_exceptions=False)
    assert login(client, "ana").status_code == 303
    r = client.get(f"/c/{C}/{P}")
    assert r.status_code == 500
    assert "Traceback" not in r.text and "secret internals" not in r.text and "RuntimeError" not in r.text
    assert "Something went wrong" in r.text
    assert r.headers["x-frame-options"] == "DENY"


def test_the_audit_log_names_who_saw_and_downloaded_what(portal_store, users):
    """STORE/portal/access.jsonl: a line per login, page viewed, file downloaded and 404, with user and subject."""
    log = AccessLog(portal_store)
    before = len(log.entries())
    client = TestClient(create_app(portal_store, users, secret_key="k"))
    login(client, "ana")
    client.get(f"/c/{C}/{P}")
    client.get(f"/c/{C}/{P}/download/results.csv")
    client.get(f"/c/{OTHER}/{P}")
    new = log.entries()[before:]
    assert [e["event"] for e in new] == ["login", "view", "download", "not_found"]
    assert all(e["user"] == "ana" and e["carrier"] == C for e in new)
    assert new[1]["subject_carrier"] == C and new[1]["period"] == P and new[1]["detail"] == "summary"
    assert new[2]["detail"] == "results.csv" and new[3]["path"] == f"/c/{OTHER}/{P}" and new[3]["status"] == 404
    assert log.path == portal_store / "portal" / "access.jsonl"


def test_the_portal_folder_is_none_of_verify_s_or_a_run_s_business(portal_store, tmp_path, generated_store):
    """With STORE/portal/access.jsonl written, verify finds no problem and no note, and a run publishes
    beside it, leaving it as it was."""
    import shutil

    store = tmp_path / "store"
    shutil.copytree(portal_store, store, symlinks=True)
    AccessLog(store).write("view", user="x")
    found = verify_store(store)
    assert found.problems == [] and found.notes == []
    before = (store / "portal" / "access.jsonl").read_bytes()
    data = generated_store[1]
    assert (
        main(["run", "--plan", "example-qc", "--data", str(data), "--period", P, "--out", str(store), "--quiet"]) == 0
    )
    assert (store / "portal" / "access.jsonl").read_bytes() == before
    assert verify_store(store).problems == []
    assert "portal" not in open_store(store).periods() and not (store / "current" / "portal").exists()


# ---------------------------------------------------------------------- the users file


def test_user_add_writes_argon2_hashes_and_roles(tmp_path, monkeypatch, capsys):
    """`carrier-sla user add` with --password-stdin: a CLEC user and a staff user, hashes only, file mode 0600."""
    users = tmp_path / "users.toml"
    monkeypatch.setattr("sys.stdin", io.StringIO("first-password\n"))
    assert main(["user", "add", "ana", "--users", str(users), "--carrier", "CLEC07", "--password-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("second-password\n"))
    assert main(["user", "add", "sam", "--users", str(users), "--role", "staff", "--password-stdin"]) == 0
    loaded = load_users(users)
    assert loaded["ana"].role == "clec" and loaded["ana"].carrier == "CLEC07"
    assert loaded["sam"].role == "staff" and loaded["sam"].carrier is None
    text = users.read_text()
    assert "first-password" not in text and text.count("$argon2id$") == 2
    assert users.stat().st_mode & 0o777 == 0o600
    from carrier_sla.portal.users import check_password

    assert check_password(loaded["ana"], "first-password") and not check_password(loaded["ana"], "second-password")


@pytest.mark.parametrize(
    "argv, stdin, message",
    [
        (["--carrier", "CLEC07"], "short\n", "at least 8 characters"),
        (["--carrier", "../x"], "long-enough\n", "not a carrier id"),
        (["--role", "admin"], "long-enough\n", "invalid choice"),
        ([], "long-enough\n", "one of the arguments --carrier --role is required"),
    ],
)
def test_user_add_refuses_bad_input(tmp_path, monkeypatch, capsys, argv, stdin, message):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(["user", "add", "ana", "--users", str(tmp_path / "u.toml"), *argv, "--password-stdin"])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "u.toml").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        ('[users.a]\nrole = "root"\npassword = "$argon2id$x"\n', "role must be one of"),
        ('[users.a]\nrole = "clec"\npassword = "$argon2id$x"\n', "needs a carrier id"),
        ('[users.a]\nrole = "staff"\ncarrier = "C1"\npassword = "$argon2id$x"\n', "has no carrier"),
        ('[users.a]\nrole = "staff"\npassword = "plain"\n', "must be an Argon2 hash"),
        ('[users."a b"]\nrole = "staff"\npassword = "$argon2id$x"\n', "not a user name"),
        ("users = 3\n", "expected a [users] table"),
        ("[users\n", "not a valid users file"),
    ],
)
def test_a_bad_users_file_is_one_clear_error(tmp_path, content, message):
    from carrier_sla.errors import UsageError

    path = tmp_path / "users.toml"
    path.write_text(content)
    with pytest.raises(UsageError, match=re.escape(message)):
        load_users(path)


def test_serve_refuses_a_missing_users_file(portal_store, tmp_path, capsys):
    assert main(["serve", "--store", str(portal_store), "--users", str(tmp_path / "none.toml")]) == 2
    assert "no users file" in capsys.readouterr().err


def test_add_user_replaces_a_user(tmp_path):
    path = tmp_path / "u.toml"
    add_user(path, "ana", "password-one", carrier="CLEC01")
    add_user(path, "ana", "password-two", role="ilec")
    assert load_users(path)["ana"].role == "ilec" and len(load_users(path)) == 1


def test_a_measure_without_published_records_is_404_not_an_error(as_user, store_facts, monkeypatch):
    """A measure of the plan with no records published for the month (OP-5 in a data set's first month):
    its record page and its records CSV answer 404, like any id the store does not hold, not a 500."""
    from carrier_sla.store.view import StoreView

    m, rid = store_facts["key"]["measure_id"], store_facts["own_record"]
    client = as_user("ana")
    assert client.get(f"/c/{C}/{P}/record/{m}/{rid}").status_code == 200
    assert client.get(f"/c/{C}/{P}/download/records/{m}.csv").status_code == 200
    published = StoreView.measures
    monkeypatch.setattr(StoreView, "measures", lambda self, period: [x for x in published(self, period) if x != m])
    assert client.get(f"/c/{C}/{P}/record/{m}/{rid}").status_code == 404
    assert client.get(f"/c/{C}/{P}/download/records/{m}.csv").status_code == 404

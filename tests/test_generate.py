"""Tests of carrier_sla.synthetic.generate: synthetic data in the input contract, deterministic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carrier_sla.errors import UsageError
from carrier_sla.synthetic.generate import generate
from carrier_sla.synthetic.world import (
    PRODUCTS,
    STATE_ZONES,
    STATES,
    Zone,
    add_business_hours,
    add_elapsed,
    business_calendar,
)

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas" / "records"
KINDS = ("orders", "troubles", "lines")
DST_STATES = {s: z for s, z in zip(STATES, STATE_ZONES, strict=True) if s != "AZ"}
SMALL = {"period": "2024-03", "periods": 2, "scale": 3000, "seed": 7}


def _schema(kind: str) -> dict:
    return json.loads((SCHEMA_DIR / f"{kind}.schema.json").read_text())


def _read_csv(folder: Path, kind: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{kind}.csv", dtype=str, keep_default_na=False)


def _ts(text: pd.Series) -> pd.Series:
    return pd.to_datetime(text.replace("", None), format="%Y-%m-%d %H:%M:%S", errors="coerce")


def _problems(df: pd.DataFrame, end_column: str) -> pd.DataFrame:
    """One boolean column per malformed kind, computed independently of the generator."""
    received = _ts(df.received_at)
    end = _ts(df[end_column])
    found = {
        "text": received.isna(),
        "product": ~df["product"].isin(list(PRODUCTS)),
        "state": ~df.state.isin(STATES),
        "before": end < received,
        "duplicate": df.duplicated(),
        "dst": pd.Series(False, index=df.index),
    }
    if "no_access_hours" in df:
        found["negative_no_access"] = pd.to_numeric(df.no_access_hours.replace("", None)) < 0
    for state, zone in DST_STATES.items():
        rows = (df.state == state) & received.notna()
        local = received[rows].dt.tz_localize(zone, nonexistent="NaT", ambiguous=np.ones(rows.sum(), bool))
        found["dst"][rows] = local.isna()
    return pd.DataFrame(found)


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("csv")
    return out, generate(out, **SMALL)


@pytest.fixture(scope="module")
def small_parquet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("parquet")
    return out, generate(out, **SMALL, fmt="parquet", files_per_type=3)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_arguments_give_identical_files(tmp_path: Path, small_csv) -> None:
    """Generating twice with the same arguments writes byte-identical CSV files."""
    folder, _ = small_csv
    generate(tmp_path, **SMALL)
    assert _files(tmp_path) == _files(folder)


def test_same_arguments_give_identical_parquet(tmp_path: Path, small_parquet) -> None:
    """Generating Parquet part folders twice writes byte-identical files."""
    folder, _ = small_parquet
    generate(tmp_path, **SMALL, fmt="parquet", files_per_type=3)
    assert _files(tmp_path) == _files(folder)


def test_another_seed_gives_other_data(tmp_path: Path, small_csv) -> None:
    """A different seed changes the records, so determinism is not a constant output."""
    folder, _ = small_csv
    generate(tmp_path, **{**SMALL, "seed": 8})
    assert (tmp_path / "orders.csv").read_bytes() != (folder / "orders.csv").read_bytes()


def test_csv_layout_counts_and_columns(small_csv) -> None:
    """CSV files hold the schema's columns in order (all required ones) and the returned counts."""
    folder, counts = small_csv
    assert sorted(p.name for p in folder.iterdir()) == ["lines.csv", "orders.csv", "troubles.csv"]
    for kind in KINDS:
        schema = _schema(kind)
        df = _read_csv(folder, kind)
        assert list(df.columns) == list(schema["properties"])
        assert set(schema["required"]) <= set(df.columns)
        assert len(df) == counts[kind]


def test_csv_value_formats(small_csv) -> None:
    """CSV booleans are true/false, dates YYYY-MM-DD, valid timestamps wall-clock without offset."""
    folder, _ = small_csv
    for kind in ("orders", "troubles"):
        schema, df = _schema(kind), _read_csv(folder, kind)
        for name, prop in schema["properties"].items():
            values = df[name][df[name] != ""]
            if prop["type"] == "boolean":
                assert set(values) == {"true", "false"}, name
            elif prop.get("format") == "date":
                assert values.str.fullmatch(r"\d{4}-\d{2}-\d{2}").all(), name
            elif prop.get("format") == "date-time" and name != "received_at":
                assert values.str.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}").all(), name
            if "null" not in np.atleast_1d(prop["type"]) and "default" not in prop:
                assert (df[name] != "").all(), name


def test_parquet_layout_and_types(small_parquet, small_csv) -> None:
    """Parquet part folders hold typed columns (naive timestamps, date32, bool, int64, float64)."""
    folder, counts = small_parquet
    assert sorted(p.name for p in (folder / "orders").iterdir()) == [
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]
    assert (folder / "lines.parquet").is_file()
    assert counts == small_csv[1]
    for kind in KINDS:
        path = folder / ("lines.parquet" if kind == "lines" else kind)
        table = pq.read_table(path)
        assert table.num_rows == counts[kind]
        props = _schema(kind)["properties"]
        assert table.schema.names == list(props)
        for field in table.schema:
            prop = props[field.name]
            kinds = set(np.atleast_1d(prop["type"])) - {"null"}
            if prop.get("format") == "date-time":  # Parquet stores seconds as milliseconds
                assert pa.types.is_timestamp(field.type) and field.type.tz is None, field.name
            elif prop.get("format") == "date":
                assert field.type == pa.date32(), field.name
            else:
                expected = {
                    "string": pa.string(),
                    "boolean": pa.bool_(),
                    "integer": pa.int64(),
                    "number": pa.float64(),
                }[kinds.pop()]
                assert field.type == expected, field.name


def test_parquet_and_csv_carry_the_same_records(tmp_path: Path, small_csv) -> None:
    """Both formats hold the same rows in the same order; only CSV has unparseable text."""
    generate(tmp_path, **SMALL, fmt="parquet")
    csv = _read_csv(small_csv[0], "orders")
    par = pq.read_table(tmp_path / "orders.parquet").to_pandas()
    assert (csv.order_id.to_numpy() == par.order_id.to_numpy()).all()
    parsed = _ts(csv.received_at)
    assert parsed.isna().sum() > 0
    assert (parsed[parsed.notna()] == par.received_at[parsed.notna()]).all()


def test_ids_unique_apart_from_intended_duplicates(small_csv) -> None:
    """Order and ticket ids repeat only in exact copies of a whole row."""
    folder, _ = small_csv
    for kind, key in (("orders", "order_id"), ("troubles", "ticket_id")):
        df = _read_csv(folder, kind)
        repeated = df[df[key].duplicated(keep=False)]
        assert len(repeated) > 0
        assert repeated.duplicated(keep=False).all()


def test_each_malformed_kind_once_a_month_and_under_one_percent(small_csv) -> None:
    """At 1,500 rows a month each bad kind occurs once a month (DST gap: March), < 1 % in all."""
    folder, _ = small_csv
    for kind, end, extra in (("orders", "completed_at", {}), ("troubles", "cleared_at", {"negative_no_access": 2})):
        found = _problems(_read_csv(folder, kind), end)
        expected = {"text": 2, "product": 2, "state": 2, "before": 2, "duplicate": 2, "dst": 1, **extra}
        assert found.sum().to_dict() == expected, kind
        assert found.any(axis=1).mean() < 0.01
    lines = _read_csv(folder, "lines")
    bad = ~lines["product"].isin(list(PRODUCTS)) | ~lines.state.isin(STATES)
    bad |= lines.lines_in_service.astype(int) < 0
    assert 1 <= bad.sum() < 0.01 * len(lines)


def test_malformed_false_writes_clean_data(tmp_path: Path) -> None:
    """With malformed=False no row of any record type breaks the contract."""
    generate(tmp_path, "2024-03", periods=2, scale=3000, seed=7, malformed=False)
    for kind, end in (("orders", "completed_at"), ("troubles", "cleared_at")):
        assert not _problems(_read_csv(tmp_path, kind), end).any(axis=None), kind
    lines = _read_csv(tmp_path, "lines")
    assert (lines.lines_in_service.astype(int) >= 0).all()


@pytest.mark.parametrize("period", ["2024-03", "2024-11"])
def test_clean_times_around_dst_changes(tmp_path: Path, period: str) -> None:
    """In DST-change months no time falls in the spring gap and no clear precedes its receipt."""
    generate(tmp_path, period, periods=1, scale=100_000, seed=1, fmt="parquet", malformed=False)
    troubles = pq.read_table(tmp_path / "troubles.parquet").to_pandas()
    assert (troubles.cleared_at.dropna() >= troubles.received_at[troubles.cleared_at.notna()]).all()
    for state, zone in DST_STATES.items():
        received = troubles.received_at[troubles.state == state]
        local = received.dt.tz_localize(zone, nonexistent="NaT", ambiguous=np.ones(len(received), bool))
        assert local.notna().all(), state


def test_no_event_after_the_last_month(small_csv) -> None:
    """Completions, clears and FOCs after the last month are null; pending orders are recent."""
    folder, _ = small_csv
    end = pd.Timestamp("2024-04-01")
    orders = _read_csv(folder, "orders")
    for column in ("completed_at", "foc_at"):
        assert (_ts(orders[column]).dropna() < end).all()
    pending = orders[(orders.completed_at == "") & (orders.cancelled == "false")]
    assert len(pending) > 0
    assert (_ts(pending.received_at).dropna() >= pd.Timestamp("2024-02-15")).all()
    troubles = _read_csv(folder, "troubles")
    assert (_ts(troubles.cleared_at).dropna() < end).all()
    assert (troubles.cleared_at == "").sum() > 0


def test_retail_is_the_majority(small_csv) -> None:
    """ILEC retail holds about two thirds of orders and of troubles."""
    folder, _ = small_csv
    for kind in ("orders", "troubles"):
        share = (_read_csv(folder, kind).carrier_id == "ILEC").mean()
        assert 0.6 < share < 0.75, kind


def test_rows_are_shuffled(small_csv) -> None:
    """Rows are shuffled: consecutive rows rise in carrier, id or time only about half the time."""
    folder, _ = small_csv
    for kind, key in (("orders", "order_id"), ("troubles", "ticket_id")):
        df = _read_csv(folder, kind)
        for column in ("carrier_id", key, "received_at"):
            values = df[column].to_numpy()
            rising = (values[1:] > values[:-1]).mean()
            assert rising < (0.7 if column == "carrier_id" else 0.6), (kind, column)


def test_a_real_clec_population_has_200_zipf_sized_clecs(tmp_path: Path) -> None:
    """clecs=200, zipf=1.3: orders from CLEC001..CLEC200 (ids three digits wide), the shares of the CLEC
    volume falling as rank ** -1.3 (the largest about 30 %, the median CLEC under 0.3 %), lines for each."""
    counts = generate(tmp_path, "2024-03", periods=1, scale=200_000, seed=3, malformed=False, clecs=200, zipf=1.3)
    assert counts["orders"] == 100_000
    orders, lines = _read_csv(tmp_path, "orders"), _read_csv(tmp_path, "lines")
    clecs = orders[~orders.carrier_id.isin(["ILEC", "TESTCLEC"])].carrier_id
    assert set(clecs) <= {f"CLEC{k:03d}" for k in range(1, 201)} and clecs.nunique() > 190
    share = clecs.value_counts(normalize=True)
    expected = np.arange(1, 201) ** -1.3 / (np.arange(1, 201) ** -1.3).sum()
    assert share["CLEC001"] == pytest.approx(expected[0], rel=0.05)
    assert share["CLEC010"] == pytest.approx(expected[9], rel=0.15)
    assert share.median() < 0.003
    assert set(lines.carrier_id) == {"ILEC", "TESTCLEC", *(f"CLEC{k:03d}" for k in range(1, 201))}


def test_lines_cover_every_cell_with_troubles(small_csv) -> None:
    """Every (period, carrier, state, product) with troubles has exactly one lines row."""
    folder, _ = small_csv
    lines = _read_csv(folder, "lines")
    lines = lines[lines["product"].isin(list(PRODUCTS)) & lines.state.isin(STATES)]
    key = ["period", "carrier_id", "state", "product"]
    assert not lines.duplicated(key).any()
    troubles = _read_csv(folder, "troubles")
    troubles = troubles[~_problems(troubles, "cleared_at").any(axis=1)]
    troubles["period"] = troubles.received_at.str[:7]
    cells = troubles[key].drop_duplicates().merge(lines, on=key, how="left")
    assert cells.lines_in_service.notna().all()


def _intervals(orders: pd.DataFrame) -> pd.DataFrame:
    """Valid measured orders with their interval in business days (OP-4 style)."""
    orders = orders[~_problems(orders, "completed_at").any(axis=1)]
    orders = orders[
        (orders.test == "false")
        & (orders.cancelled == "false")
        & (orders.completed_at != "")
        & (orders.miss_reason != "customer")
        & orders.order_type.isin(["new", "change", "transfer"])
    ].copy()
    received = _ts(orders.received_at)
    cal = business_calendar([2023 * 12, 2024 * 12 + 11])
    late = (received.dt.hour >= 15).to_numpy()
    day = received.dt.normalize().to_numpy().astype("M8[D]") + late.astype("m8[D]")
    effective = np.busday_offset(day, 0, roll="forward", busdaycal=cal)
    completed = _ts(orders.completed_at).dt.normalize().to_numpy().astype("M8[D]")
    orders["interval"] = np.busday_count(effective, completed, busdaycal=cal)
    standard = np.busday_offset(effective, orders["product"].map(lambda p: PRODUCTS[p][0]), busdaycal=cal)
    requested = pd.to_datetime(orders.requested_due_date.replace("", None)).to_numpy()
    return orders[~(requested.astype("M8[D]") > standard)]


def test_worse_served_clec_waits_longer_for_installs(small_csv) -> None:
    """CLEC03's resale POTS in CO take over a business day longer than retail POTS in CO."""
    orders = _intervals(_read_csv(small_csv[0], "orders"))
    co = orders[orders.state == "CO"]
    clec = co[(co.carrier_id == "CLEC03") & (co["product"] == "resale_pots")].interval
    retail = co[(co.carrier_id == "ILEC") & (co["product"] == "pots")].interval
    assert len(clec) >= 5
    assert clec.mean() > retail.mean() + 1


def test_parity_clec_is_served_like_retail(small_csv) -> None:
    """The largest CLEC's resale POTS intervals stay within half a day of retail POTS."""
    orders = _intervals(_read_csv(small_csv[0], "orders"))
    clec = orders[(orders.carrier_id == "CLEC01") & (orders["product"] == "resale_pots")].interval
    retail = orders[(orders.carrier_id == "ILEC") & (orders["product"] == "pots")].interval
    assert abs(clec.mean() - retail.mean()) < 0.5


@pytest.fixture(scope="module")
def clean_default(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("default")
    generate(out, "2024-05", periods=2, scale=20_000, seed=3, malformed=False)
    return out


def _network(folder: Path) -> pd.DataFrame:
    """Non-test network troubles with their received time."""
    troubles = _read_csv(folder, "troubles")
    troubles = troubles[(troubles.disposition == "network") & (troubles.test == "false")].copy()
    troubles["received"] = _ts(troubles.received_at)
    return troubles


def test_worse_served_clec_waits_longer_for_repairs(clean_default: Path) -> None:
    """CLEC05's network troubles in UT take well over 1.5 times as long as retail's there."""
    troubles = _network(clean_default)
    troubles = troubles[(troubles.cleared_at != "") & (troubles.state == "UT")]
    hours = (_ts(troubles.cleared_at) - troubles.received).dt.total_seconds() / 3600
    hours -= pd.to_numeric(troubles.no_access_hours)
    clec = hours[troubles.carrier_id == "CLEC05"]
    assert len(clec) >= 30
    assert clec.mean() > 1.5 * hours[troubles.carrier_id == "ILEC"].mean()


def test_repeat_troubles(clean_default: Path) -> None:
    """About a tenth of network troubles repeat a circuit within 30 days; CLEC05 in UT far more."""
    troubles = _network(clean_default)
    troubles = troubles[troubles.circuit_id != ""].sort_values(["circuit_id", "received"])
    gap = troubles.received - troubles.groupby("circuit_id").received.shift()
    troubles["repeat"] = gap <= pd.Timedelta(days=30)
    late = troubles[troubles.received >= pd.Timestamp("2024-05-01")]  # a full 30-day lookback
    slow = (late.carrier_id == "CLEC05") & (late.state == "UT")
    assert 0.07 < late.repeat[~slow].mean() < 0.13
    assert late.repeat[slow].mean() > 2 * late.repeat[~slow].mean()


def test_some_new_installs_get_early_troubles(clean_default: Path) -> None:
    """A few percent of new installs get a network trouble within 30 days of completion."""
    orders = _read_csv(clean_default, "orders")
    new = orders[
        (orders.order_type == "new")
        & (orders.completed_at != "")
        & (orders.circuit_id != "")
        & (orders.test == "false")
    ].copy()
    new["completed"] = _ts(new.completed_at)
    pairs = new.merge(_network(clean_default), on="circuit_id")
    after = pairs.received - pairs.completed
    hit = pairs[(after > pd.Timedelta(0)) & (after <= pd.Timedelta(days=30))].circuit_id
    assert 0.01 < new.circuit_id.isin(hit).mean() < 0.06


def test_trouble_rate_per_100_lines(clean_default: Path) -> None:
    """Retail network troubles per 100 lines in service per month are between 1 and 2."""
    troubles = _network(clean_default)
    troubles = troubles[troubles.carrier_id == "ILEC"]
    lines = _read_csv(clean_default, "lines")
    lines = lines[lines.carrier_id == "ILEC"]
    base = lines.groupby("period").lines_in_service.apply(lambda x: x.astype(int).sum())
    rate = 100 * troubles.groupby(troubles.received_at.str[:7]).size() / base
    assert ((rate > 1) & (rate < 2)).all() and len(rate) == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"period": "2024-13"},
        {"period": "2024-3"},
        {"periods": 0},
        {"fmt": "xlsx"},
        {"files_per_type": 0},
        {"clecs": 0},
        {"zipf": -1.0},
    ],
)
def test_bad_arguments_raise_usage_error(tmp_path: Path, kwargs: dict) -> None:
    """Bad arguments raise UsageError before anything is written."""
    with pytest.raises(UsageError):
        generate(tmp_path / "out", **{"period": "2024-03", **kwargs})
    assert not (tmp_path / "out").exists()


def _secs(text: str) -> np.ndarray:
    return np.array([np.datetime64(text, "s").astype(np.int64)])


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        ("2024-03-08T16:00", 2.0, "2024-03-11T09:00"),  # Friday afternoon to Monday
        ("2024-03-09T11:00", 1.5, "2024-03-11T09:30"),  # Saturday counts from Monday's opening
        ("2024-07-03T16:00", 2.0, "2024-07-05T09:00"),  # over the Independence Day holiday
        ("2024-03-11T07:00", 9.0, "2024-03-11T17:00"),  # a whole business day
    ],
)
def test_add_business_hours_examples(start: str, hours: float, expected: str) -> None:
    """Business hours skip nights, weekends and federal holidays."""
    cal = business_calendar([2024 * 12])
    result = add_business_hours(_secs(start), np.array([hours]), cal)
    assert result[0] == _secs(expected)[0]


@settings(max_examples=200, deadline=None)
@given(start=st.integers(1_700_000_000, 1_760_000_000), hours=st.floats(0, 200))
def test_add_business_hours_lands_in_business_hours(start: int, hours: float) -> None:
    """The result never precedes the start and lies within 08:00-17:00 of a business day."""
    cal = business_calendar([2023 * 12, 2025 * 12 + 11])
    result = int(add_business_hours(np.array([start]), np.array([hours]), cal)[0])
    day, seconds = divmod(result, 86_400)
    assert result >= start
    assert np.is_busday(np.datetime64(day, "D"), busdaycal=cal)
    assert 8 * 3600 <= seconds <= 17 * 3600


@pytest.mark.parametrize(
    ("state", "start", "hours", "expected"),
    [
        ("CO", "2024-06-03T10:00", 2.0, "2024-06-03T12:00"),
        ("CO", "2024-03-10T01:30", 1.0, "2024-03-10T03:30"),  # spring forward skips 02:00-03:00
        ("AZ", "2024-03-10T01:30", 1.0, "2024-03-10T02:30"),  # Arizona keeps standard time
        ("WA", "2024-11-03T00:30", 2.0, "2024-11-03T01:30"),  # fall back repeats 01:00-02:00
        ("CO", "2024-11-03T01:30", 0.75, "2024-11-03T02:15"),  # would read 01:15, before the start
    ],
)
def test_add_elapsed_across_dst(state: str, start: str, hours: float, expected: str) -> None:
    """Real elapsed time is added across DST changes, and never gives a time before the start."""
    zones = [Zone(z, int(_secs("2024-01-01T00:00")[0]), int(_secs("2025-01-01T00:00")[0])) for z in STATE_ZONES]
    result = add_elapsed(_secs(start), np.array([int(hours * 3600)]), np.array([STATES.index(state)]), zones)
    assert result[0] == _secs(expected)[0]

"""holiday_years: the years a measure's business-day computations need that the plan does not list.

missing_years first checks two dates (the records' earliest and latest) against every state's list;
only when some year in between is not listed does it look record by record. The shortcut must never
hide a year a record needs: its findings are those of the record-by-record look, always."""

from __future__ import annotations

import numpy as np
from conftest import example_document
from hypothesis import given, settings
from hypothesis import strategies as st

from carrier_sla.engine import holiday_years
from carrier_sla.inputs.contract import Records
from carrier_sla.plan.calendar import NULL
from carrier_sla.plan.load import plan_from_document

STATES = ["AZ", "CO", "OR"]
YEARS = list(range(2023, 2029))
NS_PER_DAY = 86_400 * 10**9


def _plan(listed: dict[str, list[int]]):
    """example-qc with a holiday list per state (each state's own `holidays`), listing `listed[state]`'s years."""
    doc = example_document()
    country = doc["calendar"]["holidays"]
    for state in doc["states"]:
        state["holidays"] = {str(y): country.get(str(y), []) for y in listed.get(state["code"], YEARS)}
    return plan_from_document(doc)


def _day(year: int, day_of_year: int) -> int:
    return int(np.datetime64(f"{year}-01-01", "D").astype(np.int64)) + day_of_year


dates = st.one_of(st.none(), st.tuples(st.sampled_from(YEARS), st.integers(0, 364)))


@st.composite
def cases(draw):
    listed = {s: draw(st.lists(st.sampled_from(YEARS), unique=True)) for s in STATES}
    n = draw(st.integers(1, 12))
    states = draw(st.lists(st.integers(0, len(STATES) - 1), min_size=n, max_size=n))
    spans = draw(st.lists(st.tuples(dates, dates, dates, dates), min_size=n, max_size=n))
    return listed, states, spans


def _as_days(values) -> np.ndarray:
    return np.array([NULL if v is None else _day(*v) for v in values], dtype=np.int64)


def _records(record_type: str, names: tuple[str, ...], states: list[int], spans, timestamp: bool) -> Records:
    cols = {}
    for i, name in enumerate(names):
        days = _as_days([span[i] for span in spans])
        if timestamp:  # a local time of that day, with seconds
            cols[f"{name}_local"] = np.where(days == NULL, NULL, days * NS_PER_DAY + 37_234 * 10**9)
        else:
            cols[name] = days
    n = len(states)
    return Records(
        record_type,
        n,
        cols=cols,
        codes={"state": np.array(states, dtype=np.int32)},
        cats={"state": list(STATES)},
        file_index=np.zeros(n, dtype=np.int64),
        row=np.arange(1, n + 1),
    )


@settings(max_examples=150, deadline=None)
@given(cases())
def test_the_shortcut_finds_what_the_record_by_record_look_finds(case):
    listed, states, spans = case
    plan = _plan(listed)
    for measure_id, timestamp in (("PO-5", True), ("OP-4", False)):
        measure = plan.measure(measure_id)
        names = holiday_years.business_day_fields(measure)
        rec = _records(measure.records, names, states, spans, timestamp)
        found = holiday_years.missing_years(plan, measure, rec)
        original = holiday_years._all_listed
        holiday_years._all_listed = lambda *args: False  # the record-by-record look alone
        try:
            expected = holiday_years.missing_years(plan, measure, rec)
        finally:
            holiday_years._all_listed = original
        assert found == expected
        if holiday_years._all_listed(plan, rec, names):
            assert expected == []


def test_the_shortcut_needs_every_year_between_the_extremes_in_every_state_named():
    """Records of 2024 and 2026: 2025 is needed by neither, but the shortcut cannot tell, so it leaves the
    records to the record-by-record look (which finds nothing missing); a state named only in the
    categories counts too. All listed: the shortcut answers."""
    plan = _plan({"AZ": [2024, 2026], "CO": [2024, 2025, 2026], "OR": [2024, 2025, 2026]})
    measure = plan.measure("OP-4")
    names = holiday_years.business_day_fields(measure)
    spans = [((2024, 10),) * 4, ((2026, 10),) * 4]
    rec = _records("orders", names, [1, 1], spans, timestamp=False)
    assert not holiday_years._all_listed(plan, rec, names)  # AZ lacks 2025
    assert holiday_years.missing_years(plan, measure, rec) == []
    full = _plan({s: [2024, 2025, 2026] for s in STATES})
    assert holiday_years._all_listed(full, rec, names)

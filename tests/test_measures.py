"""Per-measure rules of the example plan (example-qc), each on a handful of hand-made records.

Calendar used in the expectations (US federal holidays from the `holidays` package):
    October 2026: Thu 1, Fri 2, Mon 5 ... Fri 9, Mon 12 = Columbus Day (holiday), Tue 13 ...,
    Sat 31. November 2026: Sun 1 (clocks fall back 02:00 MDT -> 01:00 MST), Wed 11 =
    Veterans Day, Thu 26 = Thanksgiving. March 2026: Sun 8 (clocks spring forward 02:00 MST ->
    03:00 MDT). Denver is UTC-6 (MDT) before 2026-11-01 and UTC-7 (MST) after; Phoenix is
    UTC-7 all year; Los Angeles is UTC-7 (PDT) before 2026-11-01.
Business hours 08:00-17:00 (9 hours a business day); order cut-off 15:00.
"""

from __future__ import annotations

import math

import pytest
from scipy.stats import norm


def _mod_z(retail_mean: float, clec_mean: float, var: float, n_clec: int, n_retail: int, higher_better: bool) -> float:
    """Modified z by hand, positive = CLEC worse."""
    diff = retail_mean - clec_mean if higher_better else clec_mean - retail_mean
    return diff / math.sqrt(var * (1 / n_clec + 1 / n_retail))


def _ids(frame) -> set[str]:
    return set(frame["record_id"])


def _trouble(circuit: str, received: str, cleared: str | None = "", **kw) -> dict:
    """A trouble on `circuit`; cleared defaults to open (empty)."""
    return {"circuit_id": circuit, "received_at": received, "cleared_at": cleared, **kw}


def _duration_trouble(hours: float, day: int = 13, **kw) -> dict:
    """A trouble received 2026-10-DAY 08:00 and cleared `hours` whole hours later (same day)."""
    return {
        "received_at": f"2026-10-{day:02d} 08:00:00",
        "cleared_at": f"2026-10-{day:02d} {8 + int(hours):02d}:00:00",
        **kw,
    }


def _interval_order(completed_day: int, **kw) -> dict:
    """An order received Mon 2026-10-05 09:00 and completed 2026-10-DAY 12:00 (no FOC).

    OP-4 interval = business days in [Oct 5, completion): 7 -> 2, 8 -> 3, 9 -> 4, 13 -> 5
    (Mon 12 is Columbus Day), 14 -> 6, 15 -> 7.
    """
    return {
        "received_at": "2026-10-05 09:00:00",
        "foc_at": "",
        "completed_at": f"2026-10-{completed_day:02d} 12:00:00",
        **kw,
    }


# ------------------------------------------------------------------------------- PO-5


def test_po5_counts_business_hours_across_weekends_holidays_and_closed_hours(run_checker):
    """PO-5 measures business hours 08:00-17:00 on business days, and exactly 24/48 hours is within."""
    run = run_checker(
        orders=[
            # O1 Fri 16:00 -> Mon 10:00: Fri 1 h + Mon 2 h = 3 h <= 24 -> 1
            {"received_at": "2026-10-02 16:00:00", "foc_at": "2026-10-05 10:00:00", "completed_at": ""},
            # O2 Thu 14:00 -> Wed 11:00: Thu 3 + Fri 9 + Mon 12 (holiday) 0 + Tue 9 + Wed 3 = 24 h exactly -> 1
            {"received_at": "2026-10-08 14:00:00", "foc_at": "2026-10-14 11:00:00", "completed_at": ""},
            # O3 one second later: 24 h 1 s -> 0
            {"received_at": "2026-10-08 14:00:00", "foc_at": "2026-10-14 11:00:01", "completed_at": ""},
            # O4 Mon 20:00 (after hours) -> Thu 16:59: Tue 9 + Wed 9 + Thu 8 h 59 min = 26.98 h > 24 -> 0
            {"received_at": "2026-10-05 20:00:00", "foc_at": "2026-10-08 16:59:00", "completed_at": ""},
            # O5 the same manual order: 26.98 h <= 48 -> 1
            {
                "received_at": "2026-10-05 20:00:00",
                "foc_at": "2026-10-08 16:59:00",
                "completed_at": "",
                "channel": "manual",
            },
            # O6 manual Mon 07:00 (before opening) -> next Mon 11:00: 5 x 9 + 3 = 48 h exactly -> 1
            {
                "received_at": "2026-10-19 07:00:00",
                "foc_at": "2026-10-26 11:00:00",
                "completed_at": "",
                "channel": "manual",
            },
            # O7 one second later: 48 h 1 s -> 0
            {
                "received_at": "2026-10-19 07:00:00",
                "foc_at": "2026-10-26 11:00:01",
                "completed_at": "",
                "channel": "manual",
            },
            # O8 Sat 10:00 -> Thu 16:00: Sat, Sun, Mon (holiday) 0 + Tue 9 + Wed 9 + Thu 8 = 26 h -> 0
            {"received_at": "2026-10-10 10:00:00", "foc_at": "2026-10-15 16:00:00", "completed_at": ""},
            # O9 Fri 16:00 MDT -> Mon 10:00 MST across the fall-back: business hours are wall-clock, 1 + 2 = 3 h -> 1
            {"received_at": "2026-10-30 16:00:00", "foc_at": "2026-11-02 10:00:00", "completed_at": ""},
        ]
    )
    values = {r: run.record("PO-5", r)["value"] for r in ["O1", "O2", "O3", "O4", "O5", "O6", "O7", "O8"]}
    assert values == {"O1": 1, "O2": 1, "O3": 0, "O4": 0, "O5": 1, "O6": 1, "O7": 0, "O8": 0}
    assert "O9" not in _ids(run.records("PO-5"))  # FOC in November: not an October record
    november = run_checker(
        orders=[
            {"received_at": "2026-10-30 16:00:00", "foc_at": "2026-11-02 10:00:00", "completed_at": ""},
        ],
        period="2026-11",
    )
    assert november.record("PO-5", "O1")["value"] == 1


def test_po5_exclusions_and_period_by_local_foc_month(run_checker):
    """PO-5 keeps cancelled and all order types, excludes test orders and orders without channel, by local FOC month."""
    run = run_checker(
        orders=[
            {},  # O1 included (1 h)
            {"cancelled": True},  # O2 cancelled: still counted
            {"order_type": "disconnect"},  # O3 every order type counted
            {"order_type": "record", "completed_at": ""},  # O4
            {"test": True},  # O5 test_order
            {"carrier_id": "TESTCLEC"},  # O6 the plan's test carrier: test_order
            {"channel": ""},  # O7 no_channel
            {"foc_at": "2026-11-02 10:00:00", "completed_at": ""},  # O8 FOC in November: not in October
            {"foc_at": "", "completed_at": ""},  # O9 no FOC: in no period
            # O10 FOC 2026-11-01T05:00Z = Sat Oct 31 23:00 MDT: October; Fri 09:00 -> Fri 17:00 = 8 h -> 1
            {"received_at": "2026-10-30 09:00:00", "foc_at": "2026-11-01T05:00:00Z", "completed_at": ""},
            # O11 FOC 2026-09-30 23:30 local: September
            {"received_at": "2026-09-30 09:00:00", "foc_at": "2026-09-30 23:30:00", "completed_at": ""},
        ]
    )
    records = run.records("PO-5")
    assert _ids(records) == {f"O{i}" for i in (1, 2, 3, 4, 5, 6, 7, 10)}
    for r in ("O1", "O2", "O3", "O4", "O10"):
        row = run.record("PO-5", r)
        assert row["included"] and row["value"] == 1, r
    assert run.record("PO-5", "O5")["exclusion_reason"] == "test_order"
    assert run.record("PO-5", "O6")["exclusion_reason"] == "test_order"
    assert run.record("PO-5", "O7")["exclusion_reason"] == "no_channel"
    assert not run.record("PO-5", "O7")["included"]
    cell = run.cell("PO-5", submeasure="channel=electronic")
    assert cell["clec_n"] == 5 and cell["clec_numerator"] == 5


def test_po5_benchmark_is_stare_and_compare_with_equal_met(run_checker):
    """PO-5 judges 95% electronic and 90% manual by stare and compare; exactly the target is met."""
    on_time = {}  # 1 h
    late_electronic = {"foc_at": "2026-10-09 09:00:00"}  # Mon 09:00 -> Fri 09:00 = 8 + 9 + 9 + 9 + 1 = 36 h > 24
    late_manual = {"channel": "manual", "foc_at": "2026-10-19 09:00:00"}  # 8 + 3 x 9 + 4 x 9 + 1 = 81 h > 48
    orders = (
        [on_time] * 19
        + [late_electronic]  # CLEC01 electronic 19/20 = 95% -> met
        + [{"channel": "manual"}] * 9
        + [late_manual]  # CLEC01 manual 9/10 = 90% -> met
        + [{"carrier_id": "CLEC02"}] * 18
        + [{**late_electronic, "carrier_id": "CLEC02"}] * 2  # 18/20 = 90% -> miss
        + [{**late_manual, "carrier_id": "CLEC02"}]  # CLEC02 manual 0/1 -> miss
    )
    run = run_checker(orders=orders)
    cell = run.cell("PO-5", submeasure="channel=electronic")
    assert (cell["clec_n"], cell["clec_numerator"], cell["clec_value"]) == (20, 19, 95.0)
    assert cell["standard"] == "benchmark" and cell["benchmark"] == 95.0
    assert cell["method"] == "stare_and_compare" and cell["status"] == "met"
    assert cell["channel"] == "electronic"
    for col in ("retail_n", "retail_numerator", "retail_value", "retail_stdev", "statistic"):
        assert math.isnan(cell[col]), col
    manual = run.cell("PO-5", submeasure="channel=manual")
    assert (manual["clec_value"], manual["benchmark"], manual["status"]) == (90.0, 90.0, "met")
    other = run.cell("PO-5", "CLEC02", submeasure="channel=electronic")
    assert other["clec_value"] == 90.0 and other["status"] == "miss"
    assert run.cell("PO-5", "CLEC02", submeasure="channel=manual")["status"] == "miss"
    # all-CLEC electronic: (19 + 18) / 40 = 92.5% < 95 -> miss
    agg = run.cell("PO-5", None, submeasure="channel=electronic")
    assert agg["scope"] == "clec_aggregate" and agg["clec_n"] == 40 and agg["clec_value"] == 92.5
    assert agg["status"] == "miss"


def test_po5_cell_without_counted_records_is_no_activity(run_checker):
    """A PO-5 cell whose records are all excluded has status no_activity."""
    run = run_checker(orders=[{"test": True}, {"test": True, "channel": "manual"}])
    cell = run.cell("PO-5", submeasure="channel=electronic")
    assert cell["status"] == "no_activity" and cell["clec_n"] == 0 and cell["clec_records_evaluated"] == 1


# ------------------------------------------------------------------------------- OP-3


def test_op3_exclusions_and_local_completion_date(run_checker):
    """OP-3 measures new/change/transfer orders completed in the month, met when the local completion date <= due date."""
    run = run_checker(
        orders=[
            {},  # O1 completed Oct 8 = due Oct 8 -> 1
            {"completed_at": "2026-10-09 12:00:00"},  # O2 a day late -> 0
            {"completed_at": "2026-10-09 12:00:00", "miss_reason": "customer"},  # O3 customer_caused_miss
            {"miss_reason": "customer"},  # O4 on time, still customer_caused_miss
            {"completed_at": "2026-10-09 12:00:00", "miss_reason": "company"},  # O5 company miss -> 0
            {"cancelled": True},  # O6 cancelled
            {"order_type": "disconnect"},  # O7 order_type_not_measured
            {"order_type": "record"},  # O8 order_type_not_measured
            {"order_type": "change"},  # O9 -> 1
            {"order_type": "transfer", "completed_at": "2026-10-09 00:00:00"},  # O10 -> 0
            {"test": True},  # O11 test_order
            {"carrier_id": "TESTCLEC"},  # O12 test_order
            {"completed_at": "2026-11-02 12:00:00"},  # O13 completed in November: not October's
            {"completed_at": ""},  # O14 pending: in no period
            {"completed_at": "2026-10-09T05:30:00Z"},  # O15 = Oct 8 23:30 MDT -> on the due date -> 1
            {"state": "WA", "completed_at": "2026-10-08 23:30:00"},  # O16 local Oct 8 (Oct 9 in UTC) -> 1
        ]
    )
    assert _ids(run.records("OP-3")) == {f"O{i}" for i in range(1, 13)} | {"O15", "O16"}
    expected_values = {"O1": 1, "O2": 0, "O5": 0, "O9": 1, "O10": 0, "O15": 1, "O16": 1}
    for r, v in expected_values.items():
        row = run.record("OP-3", r)
        assert row["included"] and row["value"] == v, r
    reasons = {
        "O3": "customer_caused_miss",
        "O4": "customer_caused_miss",
        "O6": "cancelled",
        "O7": "order_type_not_measured",
        "O8": "order_type_not_measured",
        "O11": "test_order",
        "O12": "test_order",
    }
    for r, reason in reasons.items():
        row = run.record("OP-3", r)
        assert not row["included"] and row["exclusion_reason"] == reason and math.isnan(row["value"]), r
    # CO cell: O1 O2 O5 O9 O10 O15 -> 3 of 6
    cell = run.cell("OP-3", state="CO")
    assert cell["clec_n"] == 6 and cell["clec_numerator"] == 3 and cell["clec_value"] == 50.0


def test_op3_compares_each_product_with_its_retail_analog(run_checker):
    """OP-3 parity uses the plan's retail analogs: resale_pots and ubl_2w -> pots, ubl_ds1 and access_ds1 -> ds1, lis_trunk -> fgd_trunk."""
    late = {"completed_at": "2026-10-09 12:00:00"}
    retail = {"carrier_id": "ILEC"}
    run = run_checker(
        orders=[
            {"product": "resale_pots"},
            {"product": "ubl_2w"},
            {"product": "ubl_ds1"},
            {"product": "access_ds1"},
            {"product": "lis_trunk"},
            {**retail, "product": "pots"},
            {**retail, **late, "product": "pots"},  # pots 1/2 = 50%
            {**retail, "product": "ds1"},
            {**retail, "product": "ds1"},
            {**retail, **late, "product": "ds1"},  # ds1 2/3
            *[{**retail, "product": "fgd_trunk"}] * 3,
            {**retail, **late, "product": "fgd_trunk"},  # fgd_trunk 3/4 = 75%
        ]
    )
    expected = {
        "resale_pots": (2, 50.0),
        "ubl_2w": (2, 50.0),
        "ubl_ds1": (3, 200 / 3),
        "access_ds1": (3, 200 / 3),
        "lis_trunk": (4, 75.0),
    }
    for product, (n, value) in expected.items():
        cell = run.cell("OP-3", product=product)
        assert cell["standard"] == "parity" and cell["submeasure"] == "all"
        assert cell["retail_n"] == n and cell["retail_value"] == pytest.approx(value), product
    retail_rows = run.results[(run.results["measure_id"] == "OP-3") & (run.results["carrier_id"] == "ILEC")]
    assert retail_rows.empty  # retail records are the analog, never a cell of their own


def test_op3_modified_z_on_proportions(run_checker):
    """OP-3 parity: z = (p_retail - p_clec) / sqrt(p(1-p)(1/n_clec + 1/n_retail)), miss when z > 1.645."""
    met, late = {}, {"completed_at": "2026-10-09 12:00:00"}
    retail = [{"carrier_id": "ILEC", "product": "pots", **x} for x in [met] * 8 + [late] * 2]  # p = 0.8
    clec01 = [met] * 2 + [late] * 3  # 0.4: z = 0.4 / sqrt(0.16 * 0.3) = 1.8257 -> miss
    clec02 = [{"carrier_id": "CLEC02", **x} for x in [met] * 3 + [late] * 2]  # 0.6: z = 0.9129 -> met
    run = run_checker(orders=retail + clec01 + clec02)
    cell = run.cell("OP-3")
    z = _mod_z(0.8, 0.4, 0.16, 5, 10, True)
    assert z == pytest.approx(1.825742, abs=1e-6)
    assert cell["statistic"] == pytest.approx(z) and cell["p_value"] == pytest.approx(norm.sf(z))
    assert cell["critical_value"] == 1.645 and cell["method"] == "modified_z" and cell["status"] == "miss"
    assert (cell["clec_n"], cell["clec_value"], cell["retail_n"], cell["retail_value"]) == (5, 40.0, 10, 80.0)
    assert cell["retail_stdev"] == pytest.approx(40.0)  # sqrt(0.8 * 0.2) in percent
    other = run.cell("OP-3", "CLEC02")
    assert other["statistic"] == pytest.approx(_mod_z(0.8, 0.6, 0.16, 5, 10, True)) and other["status"] == "met"
    # all CLECs: 5 / 10 = 0.5: z = 0.3 / sqrt(0.16 * 0.2) = 1.6771 > 1.645 -> miss
    agg = run.cell("OP-3", None)
    assert agg["scope"] == "clec_aggregate" and agg["clec_n"] == 10 and agg["clec_value"] == 50.0
    assert agg["statistic"] == pytest.approx(1.677051, abs=1e-6) and agg["status"] == "miss"


def test_op3_statuses_without_a_usable_comparison(run_checker):
    """OP-3 with zero retail variance is decided by Fisher's exact test (the modified z is undefined),
    no_retail_analog without retail records, no_activity without CLEC records."""
    run = run_checker(
        orders=[
            {},
            {"carrier_id": "ILEC", "product": "pots"},
            {"carrier_id": "ILEC", "product": "pots"},  # retail p = 1
            {"product": "ubl_ds1"},  # no retail ds1 at all
            {"product": "lis_trunk", "cancelled": True},  # all lis_trunk excluded
            {"carrier_id": "ILEC", "product": "fgd_trunk"},
        ]
    )
    zero = run.cell("OP-3", product="resale_pots")
    # 1 of 1 on time against 2 of 2: P(X <= 1) = 1 for X ~ hypergeom(N=3, K=3, n=1)
    assert (zero["method"], zero["p_value"], zero["status"]) == ("fisher_exact", 1.0, "met")
    assert "zero retail variance" in zero["status_reason"] and "exact test" in zero["status_reason"]
    none = run.cell("OP-3", product="ubl_ds1")
    assert none["status"] == "no_retail_analog" and none["status_reason"]
    idle = run.cell("OP-3", product="lis_trunk")
    assert idle["status"] == "no_activity" and idle["clec_n"] == 0 and idle["clec_records_evaluated"] == 1


# ------------------------------------------------------------------------------- OP-4


def test_op4_interval_from_effective_received_date(run_checker):
    """OP-4 counts business days from the effective received date (next business day after 15:00 or on a non-business day) to completion."""
    run = run_checker(
        orders=[
            _interval_order(13),  # O1 Oct 5..9 (Mon 12 holiday) -> 5
            {**_interval_order(8), "received_at": "2026-10-05 15:00:00"},  # O2 at the cut-off: counts from Mon -> 3
            {**_interval_order(8), "received_at": "2026-10-05 15:00:01"},  # O3 after the cut-off: from Tue 6 -> 2
            {**_interval_order(15), "received_at": "2026-10-09 16:00:00"},  # O4 Fri after cut-off: from Tue 13 -> 2
            {**_interval_order(15), "received_at": "2026-10-10 10:00:00"},  # O5 Saturday morning: from Tue 13 -> 2
            {**_interval_order(14), "received_at": "2026-10-11 20:00:00"},  # O6 Sunday night: from Tue 13 -> 1
            {**_interval_order(13), "received_at": "2026-10-09 09:00:00"},  # O7 Fri 9 only (holiday Mon) -> 1
            # O8 received Mon 16:00 (from Tue 6), completed the same evening: -1 floored to 0
            {"received_at": "2026-10-05 16:00:00", "foc_at": "", "completed_at": "2026-10-05 18:00:00"},
            {**_interval_order(8), "state": "WA"},  # O9 same rule in another state -> 3
        ]
    )
    expected = {"O1": 5, "O2": 3, "O3": 2, "O4": 2, "O5": 2, "O6": 1, "O7": 1, "O8": 0, "O9": 3}
    assert {r: run.record("OP-4", r)["value"] for r in expected} == expected


def test_op4_cut_off_is_strictly_after_15_00_00_with_fractional_seconds(run_checker):
    """An order received at 15:00:00.5 is strictly after the 15:00 cut-off and counts from the next business day."""
    run = run_checker(
        orders=[
            {**_interval_order(8), "received_at": "2026-10-05 15:00:00.5"},  # from Tue 6: Tue, Wed -> 2
            {**_interval_order(8), "received_at": "2026-10-05 14:59:59.999"},  # from Mon 5 -> 3
        ]
    )
    assert run.record("OP-4", "O1")["value"] == 2
    assert run.record("OP-4", "O2")["value"] == 3


def test_op4_excludes_requests_later_than_the_standard_interval(run_checker):
    """OP-4 excludes orders whose requested due date is later than effective received date + the product's standard interval."""
    # From Mon Oct 5 (business days Oct 6 7 8 9 13 14 15 16 19 20 21 22 23 26 27 ...):
    # +3 = Thu 8, +5 = Tue 13, +7 = Thu 15, +15 = Tue 27.
    cases = [  # (carrier, product, last requested date still included)
        ("CLEC01", "resale_pots", "2026-10-08", "2026-10-09"),
        ("CLEC01", "ubl_2w", "2026-10-13", "2026-10-14"),
        ("CLEC01", "ubl_ds1", "2026-10-15", "2026-10-16"),
        ("CLEC01", "access_ds1", "2026-10-15", "2026-10-16"),
        ("CLEC01", "lis_trunk", "2026-10-27", "2026-10-28"),
        ("ILEC", "pots", "2026-10-08", "2026-10-09"),
        ("ILEC", "ds1", "2026-10-15", "2026-10-16"),
        ("ILEC", "fgd_trunk", "2026-10-27", "2026-10-28"),
    ]
    orders = []
    for carrier, product, ok, later in cases:
        base = {**_interval_order(30), "carrier_id": carrier, "product": product}
        orders += [{**base, "requested_due_date": ok}, {**base, "requested_due_date": later}]
    # received Mon 16:00 (after the cut-off): from Tue 6, +3 = Fri 9
    late = {"received_at": "2026-10-05 16:00:00", "foc_at": "", "completed_at": "2026-10-30 12:00:00"}
    orders += [{**late, "requested_due_date": "2026-10-09"}, {**late, "requested_due_date": "2026-10-13"}]
    run = run_checker(orders=orders)
    for i, (_, product, _, _) in enumerate(cases):
        kept, dropped = run.record("OP-4", f"O{2 * i + 1}"), run.record("OP-4", f"O{2 * i + 2}")
        assert kept["included"], product
        assert not dropped["included"] and dropped["exclusion_reason"] == "customer_requested_later_due_date", product
    assert run.record("OP-4", f"O{2 * len(cases) + 1}")["included"]
    assert run.record("OP-4", f"O{2 * len(cases) + 2}")["exclusion_reason"] == "customer_requested_later_due_date"
    # the exclusion is OP-4's only: OP-3 keeps the same order
    assert run.record("OP-3", "O2")["included"]


def test_op4_shares_op3_exclusions(run_checker):
    """OP-4 excludes test, cancelled, non-installation and customer-missed orders like OP-3."""
    run = run_checker(
        orders=[
            _interval_order(8, test=True),
            _interval_order(8, cancelled=True),
            _interval_order(8, order_type="disconnect"),
            _interval_order(9, miss_reason="customer"),
            _interval_order(8, carrier_id="TESTCLEC"),
            _interval_order(9, order_type="transfer"),
        ]
    )
    reasons = [run.record("OP-4", f"O{i}")["exclusion_reason"] for i in range(1, 6)]
    assert reasons == ["test_order", "cancelled", "order_type_not_measured", "customer_caused_miss", "test_order"]
    assert run.record("OP-4", "O6")["value"] == 4


def test_op4_ubl_2w_benchmark_mean_at_most_six_days(run_checker):
    """OP-4 for ubl_2w is a benchmark: mean at most 6.0 business days, equal is met, no retail columns."""
    run = run_checker(
        orders=[
            _interval_order(14, product="ubl_2w"),
            _interval_order(14, product="ubl_2w"),  # 6, 6 -> 6.0 met
            _interval_order(14, product="ubl_2w", carrier_id="CLEC02"),  # 6
            _interval_order(15, product="ubl_2w", carrier_id="CLEC02"),  # 7 -> 6.5 miss
            _interval_order(8, carrier_id="ILEC", product="pots"),  # retail pots is not used by a benchmark
        ]
    )
    cell = run.cell("OP-4", product="ubl_2w")
    assert cell["submeasure"] == "all" and cell["standard"] == "benchmark" and cell["benchmark"] == 6.0
    assert cell["clec_value"] == 6.0 and cell["status"] == "met"
    assert math.isnan(cell["retail_n"]) and math.isnan(cell["retail_value"])
    other = run.cell("OP-4", "CLEC02", product="ubl_2w")
    assert other["clec_value"] == 6.5 and other["status"] == "miss"
    assert run.cell("OP-4", None, product="ubl_2w")["clec_value"] == pytest.approx(25 / 4)  # 6.25 -> miss


def test_op4_resale_split_by_dispatch_with_the_same_split_of_retail_pots(run_checker):
    """OP-4 splits resale_pots and its retail pots by dispatch; mean parity uses the retail sample variance."""
    clec_yes = [_interval_order(9, dispatch=True)] * 2  # 4, 4 -> mean 4
    clec_no = [_interval_order(9)]  # 4
    retail = {"carrier_id": "ILEC", "product": "pots"}
    retail_yes = [_interval_order(d, dispatch=True, **retail) for d in (7, 8, 9, 8)]  # 2 3 4 3: mean 3, var 2/3
    retail_no = [_interval_order(13, **retail)] * 3  # 5, 5, 5: zero variance
    run = run_checker(orders=clec_yes + clec_no + retail_yes + retail_no)
    yes = run.cell("OP-4", submeasure="dispatch=true")
    # z = (4 - 3) / sqrt(2/3 * (1/2 + 1/4)) = 1 / sqrt(0.5) = 1.4142 -> met
    assert bool(yes["dispatch"]) is True
    assert (yes["clec_n"], yes["clec_value"], yes["retail_n"], yes["retail_value"]) == (2, 4.0, 4, 3.0)
    assert yes["retail_stdev"] == pytest.approx(math.sqrt(2 / 3))
    assert yes["statistic"] == pytest.approx(_mod_z(3, 4, 2 / 3, 2, 4, False)) == pytest.approx(math.sqrt(2))
    assert yes["status"] == "met"
    no = run.cell("OP-4", submeasure="dispatch=false")
    assert (no["retail_n"], no["retail_value"]) == (3, 5.0)
    # zero retail variance: the permutation test decides; pool 4, 5, 5, 5, a CLEC of one at 4: P(>= 4) = 1
    assert no["method"].startswith("permutation") and no["p_value"] == 1.0 and no["status"] == "met"
    assert "zero retail variance" in no["status_reason"]
    assert set(run.records("OP-4")["submeasure"]) == {"dispatch=true", "dispatch=false"}


def test_op4_unsplit_products_compare_with_all_retail_analog_records(run_checker):
    """OP-4 products other than resale_pots are one 'all' cell compared with every analog record, dispatched or not."""
    ds1 = {"carrier_id": "ILEC", "product": "ds1"}
    run = run_checker(
        orders=[
            _interval_order(9, product="ubl_ds1", dispatch=True),  # 4
            _interval_order(7, dispatch=True, **ds1),
            _interval_order(9, **ds1),  # 2 and 4: mean 3, var 2
            _interval_order(8, product="lis_trunk"),  # 3, no fgd_trunk retail -> no_retail_analog
            _interval_order(8, carrier_id="ILEC", product="pots"),  # retail pots with a single record
            _interval_order(9, dispatch=False),  # resale 4 vs one retail record
        ]
    )
    cell = run.cell("OP-4", product="ubl_ds1")
    # z = (4 - 3) / sqrt(2 * (1 + 1/2)) = 1 / sqrt(3) = 0.5774 -> met
    assert cell["submeasure"] == "all" and cell["retail_n"] == 2 and cell["retail_value"] == 3.0
    assert cell["statistic"] == pytest.approx(1 / math.sqrt(3)) and cell["status"] == "met"
    assert run.cell("OP-4", product="lis_trunk")["status"] == "no_retail_analog"
    single = run.cell("OP-4", submeasure="dispatch=false")
    # one retail record: the permutation test decides; pool 3, 4, a CLEC of one at 4: P(>= 4) = 1/2
    assert single["method"].startswith("permutation") and single["status"] == "met"
    assert single["p_value"] == pytest.approx(0.5, abs=0.01) and "retail sample of 1" in single["status_reason"]


def test_op4_all_clec_aggregate_pools_every_clec(run_checker):
    """OP-4 has, next to each CLEC's cell, an all-CLEC aggregate row (carrier_id null) over the pooled records."""
    retail = [_interval_order(d, carrier_id="ILEC", product="pots") for d in (7, 8, 9, 8)]  # 2 3 4 3: mean 3, var 2/3
    run = run_checker(
        orders=[
            _interval_order(13),
            _interval_order(13),  # CLEC01: 5, 5 -> z = 2 / sqrt(2/3 * 3/4) = 2.8284 -> miss
            _interval_order(7, carrier_id="CLEC02"),  # CLEC02: 2 -> z = -1 / sqrt(2/3 * 5/4) = -1.0954 -> met
            *retail,
        ]
    )
    one, two = run.cell("OP-4", "CLEC01"), run.cell("OP-4", "CLEC02")
    assert one["statistic"] == pytest.approx(2 * math.sqrt(2)) and one["status"] == "miss"
    assert two["statistic"] == pytest.approx(-1 / math.sqrt(5 / 6)) and two["status"] == "met"
    # all CLECs: 5 5 2 -> mean 4, z = 1 / sqrt(2/3 * (1/3 + 1/4)) = 1.6036 -> met
    agg = run.cell("OP-4", None)
    assert agg["scope"] == "clec_aggregate" and agg["submeasure"] == "dispatch=false"
    assert (agg["clec_n"], agg["clec_value"], agg["retail_n"]) == (3, 4.0, 4)
    assert agg["statistic"] == pytest.approx(1 / math.sqrt(7 / 18)) and agg["status"] == "met"
    assert one["scope"] == "clec" and two["scope"] == "clec"


def test_op4_split_cell_without_matching_retail_split_has_no_retail_analog(run_checker):
    """A resale_pots dispatch=true cell is compared only with dispatched retail pots: none gives no_retail_analog."""
    run = run_checker(
        orders=[
            _interval_order(9, dispatch=True),
            _interval_order(8, carrier_id="ILEC", product="pots"),
            _interval_order(9, carrier_id="ILEC", product="pots"),
        ]
    )
    cell = run.cell("OP-4", submeasure="dispatch=true")
    assert cell["status"] == "no_retail_analog" and cell["retail_n"] == 0


def test_plan_standards_decide_diagnostic_and_unmatched_cells(run_checker, make_plan):
    """A diagnostic standard gives status diagnostic; a cell no standard matches is undetermined with a reason."""

    def change(doc):
        measures = {m["id"]: m for m in doc["measures"]}
        measures["OP-3"]["standards"] = [{"type": "diagnostic"}]
        measures["OP-4"]["standards"] = [{"when": {"products": ["ubl_2w"]}, "type": "benchmark", "target": 6.0}]

    run = run_checker(
        orders=[_interval_order(8), _interval_order(8, carrier_id="ILEC", product="pots")], use_plan=make_plan(change)
    )
    assert run.cell("OP-3")["status"] == "diagnostic"
    unmatched = run.cell("OP-4")
    assert unmatched["status"] == "undetermined" and "no standard" in unmatched["status_reason"]


# ------------------------------------------------------------------------------- OP-5


def test_op5_trouble_free_for_30_days_reported_in_arrears(run_checker):
    """OP-5 in period P counts new orders completed in P-1; value 1 unless a network, non-test trouble of the same
    carrier on the circuit follows the completion instant, on a local date at most 30 calendar days after its date."""
    done = "2026-10-08 12:00:00"  # every order completes Oct 8 12:00 MDT = 18:00 UTC
    orders = [{"circuit_id": f"K{i}"} for i in range(1, 11)] + [
        {"circuit_id": ""},  # O11 no_circuit_id
        {"circuit_id": "K12", "order_type": "change"},  # O12 order_type_not_measured
        {"circuit_id": "K13", "cancelled": True},  # O13 cancelled
        {"circuit_id": "K14", "test": True},  # O14 test_order
        {
            "circuit_id": "K15",
            "miss_reason": "customer",
            "completed_at": "2026-10-09 12:00:00",
        },  # O15 kept, no trouble -> 1
        {"circuit_id": "K16", "completed_at": "2026-11-02 12:00:00"},  # O16 completed in November: not reported here
        {
            "circuit_id": "K17",
            "received_at": "2026-09-25 09:00:00",
            "foc_at": "2026-09-25 10:00:00",
            "due_date": "2026-09-30",
            "completed_at": "2026-09-30 12:00:00",
        },  # O17 September: not reported here
        {"circuit_id": "K18"},  # O18
    ]
    troubles = [
        _trouble("K1", done, "2026-10-08 13:00:00"),  # at the completion instant: not after -> 1
        _trouble("K2", "2026-10-08 12:00:01", "2026-10-08 13:00:00"),  # 1 s after -> 0
        # Oct 8 + 30 calendar days = Nov 7 (local dates; clocks fell back Nov 1)
        _trouble("K3", "2026-11-07 11:00:00", "2026-11-07 12:00:00"),  # day 30 -> 0
        _trouble("K4", "2026-11-07 23:59:59", "2026-11-08 01:00:00"),  # day 30, 732 h after -> 0
        _trouble("K18", "2026-11-08 00:00:00", "2026-11-08 01:00:00"),  # day 31 -> 1
        _trouble("K5", "2026-10-10 09:00:00", "2026-10-10 10:00:00", disposition="cpe"),  # not network -> 1
        _trouble("K6", "2026-10-10 09:00:00", "2026-10-10 10:00:00", test=True),  # test -> 1
        _trouble("K7", "2026-10-10 09:00:00", "2026-10-10 10:00:00", carrier_id="TESTCLEC"),  # test carrier -> 1
        _trouble(
            "K8", "2026-10-10 09:00:00", "2026-10-10 10:00:00", carrier_id="ILEC", product="pots"
        ),  # another carrier's (the ILEC's retail) trouble on the circuit -> 1
        _trouble("K9", "2026-10-20 09:00:00", ""),  # still open -> 0
        _trouble("K10", "2026-10-07 09:00:00", "2026-10-07 10:00:00"),  # before completion -> 1
    ]
    run = run_checker(orders=orders, troubles=troubles, period="2026-11")
    assert _ids(run.records("OP-5")) == {f"O{i}" for i in (*range(1, 16), 18)}
    expected = {
        **{"O1": 1, "O2": 0, "O3": 0, "O4": 0, "O5": 1, "O6": 1, "O7": 1, "O8": 1, "O9": 0, "O10": 1},
        **{"O15": 1, "O18": 1},
    }
    assert {r: run.record("OP-5", r)["value"] for r in expected} == expected
    reasons = {"O11": "no_circuit_id", "O12": "order_type_not_measured", "O13": "cancelled", "O14": "test_order"}
    assert {r: run.record("OP-5", r)["exclusion_reason"] for r in reasons} == reasons
    cell = run.cell("OP-5")
    assert cell["period"] == "2026-11" and cell["data_period"] == "2026-10"
    assert cell["clec_n"] == 12 and cell["clec_numerator"] == 8
    assert cell["clec_value"] == pytest.approx(800 / 12)
    october = run_checker(orders=orders, troubles=troubles, period="2026-10")
    assert _ids(october.records("OP-5")) == {"O17"}  # October's report is about September
    assert october.cell("OP-5")["data_period"] == "2026-09"


def test_op5_arrears_cross_the_year_boundary(run_checker):
    """OP-5 for January 2027 reports installations completed in December 2026."""
    run = run_checker(
        orders=[
            {
                "circuit_id": "K1",
                "received_at": "2026-12-14 09:00:00",
                "foc_at": "2026-12-14 10:00:00",
                "due_date": "2026-12-17",
                "completed_at": "2026-12-17 12:00:00",
            },
            {
                "circuit_id": "K2",
                "received_at": "2027-01-04 09:00:00",
                "foc_at": "2027-01-04 10:00:00",
                "due_date": "2027-01-07",
                "completed_at": "2027-01-07 12:00:00",
            },
        ],
        period="2027-01",
    )
    assert _ids(run.records("OP-5")) == {"O1"}
    cell = run.cell("OP-5")
    assert (cell["period"], cell["data_period"], cell["clec_value"]) == ("2027-01", "2026-12", 100.0)


def test_op5_parity_against_retail_installations(run_checker):
    """OP-5 compares the CLEC's trouble-free share with retail pots installations completed in the same month."""
    retail = {"carrier_id": "ILEC", "product": "pots"}
    run = run_checker(
        orders=[
            {"circuit_id": "A"},
            {"circuit_id": "B"},
            {**retail, "circuit_id": "R1"},
            {**retail, "circuit_id": "R2"},
            {**retail, "circuit_id": "R3"},
            {**retail, "circuit_id": "R4"},
        ],
        troubles=[
            _trouble("A", "2026-10-20 09:00:00", "2026-10-20 10:00:00"),
            _trouble("R1", "2026-10-20 09:00:00", "2026-10-20 10:00:00", carrier_id="ILEC", product="pots"),
        ],
        period="2026-11",
    )
    cell = run.cell("OP-5")
    # CLEC 1/2 = 0.5, retail 3/4 = 0.75: z = 0.25 / sqrt(0.1875 * (1/2 + 1/4)) = 0.6667 -> met
    assert (cell["clec_value"], cell["retail_n"], cell["retail_value"]) == (50.0, 4, 75.0)
    assert cell["statistic"] == pytest.approx(_mod_z(0.75, 0.5, 0.1875, 2, 4, True)) == pytest.approx(2 / 3)
    assert cell["status"] == "met"


# ------------------------------------------------------------------------------- MR-5 / MR-6


def test_mr5_cleared_within_four_hours_net_of_no_access(run_checker):
    """MR-5 counts cleared network troubles by clearance month; within when elapsed hours minus no-access hours <= 4;
    no-access hours above the elapsed hours reject the trouble, equal ones give 0 hours."""
    run = run_checker(
        troubles=[
            {"received_at": "2026-10-13 09:00:00", "cleared_at": "2026-10-13 13:00:00"},  # T1 4 h exactly -> 1
            {"received_at": "2026-10-13 09:00:00", "cleared_at": "2026-10-13 13:00:01"},  # T2 4 h 1 s -> 0
            {
                "received_at": "2026-10-13 09:00:00",
                "cleared_at": "2026-10-13 15:00:00",
                "no_access_hours": 2,
            },  # T3 6 - 2 = 4 -> 1
            {
                "received_at": "2026-10-13 09:00:00",
                "cleared_at": "2026-10-13 15:00:00",
                "no_access_hours": 1.5,
            },  # T4 4.5 -> 0
            {
                "received_at": "2026-10-13 09:00:00",
                "cleared_at": "2026-10-13 10:00:00",
                "no_access_hours": 3,
            },  # T5 1 - 3 < 0: rejected (no_access_exceeds_duration), in no measure
            {"disposition": "cpe"},  # T6 not_network_disposition
            {"disposition": "no_trouble_found"},  # T7 not_network_disposition
            {"test": True},  # T8 test_trouble
            {"carrier_id": "TESTCLEC"},  # T9 test_trouble
            {"cleared_at": ""},  # T10 open: in no period
            {"received_at": "2026-10-31 20:00:00", "cleared_at": "2026-11-01 01:00:00"},  # T11 cleared in November
            {
                "received_at": "2026-09-30 22:00:00",
                "cleared_at": "2026-10-01 01:00:00",
            },  # T12 cleared October: 3 h -> 1
            # T13 a weekend repair: hours are elapsed hours, not business hours: Sat 16:00 -> Sun 10:00 = 18 h -> 0
            {"received_at": "2026-10-17 16:00:00", "cleared_at": "2026-10-18 10:00:00"},
            # T14 no access exactly as long as the trouble: 1 - 1 = 0 h -> 1
            {"received_at": "2026-10-13 09:00:00", "cleared_at": "2026-10-13 10:00:00", "no_access_hours": 1},
        ]
    )
    rejects = run.rejects()
    assert rejects[["record_id", "reason"]].values.tolist() == [["T5", "no_access_exceeds_duration"]]
    assert _ids(run.records("MR-5")) == {f"T{i}" for i in (1, 2, 3, 4, 6, 7, 8, 9, 12, 13, 14)}
    expected = {"T1": 1, "T2": 0, "T3": 1, "T4": 0, "T12": 1, "T13": 0, "T14": 1}
    assert {t: run.record("MR-5", t)["value"] for t in expected} == expected
    reasons = {
        "T6": "not_network_disposition",
        "T7": "not_network_disposition",
        "T8": "test_trouble",
        "T9": "test_trouble",
    }
    assert {t: run.record("MR-5", t)["exclusion_reason"] for t in reasons} == reasons
    cell = run.cell("MR-5")
    assert cell["clec_n"] == 7 and cell["clec_numerator"] == 4
    durations = {"T1": 4, "T2": 4 + 1 / 3600, "T3": 4, "T4": 4.5, "T12": 3, "T13": 18, "T14": 0}
    assert {t: run.record("MR-6", t)["value"] for t in durations} == pytest.approx(durations)


def test_mr5_mr6_use_real_elapsed_hours_across_daylight_saving_changes(run_checker):
    """Repair durations are real elapsed time: fall back adds an hour to the wall-clock gap, spring forward removes one."""
    november = run_checker(
        troubles=[
            # T1 Denver Nov 1 00:30 MDT (06:30 UTC) -> 04:00 MST (11:00 UTC) = 4.5 h (the wall clock says 3.5) -> 0
            {"received_at": "2026-11-01 00:30:00", "cleared_at": "2026-11-01 04:00:00"},
            # T2 Phoenix has no DST: 00:30 -> 04:00 = 3.5 h -> 1
            {"state": "AZ", "received_at": "2026-11-01 00:30:00", "cleared_at": "2026-11-01 04:00:00"},
            # T3 ambiguous 01:30 is the earlier instant (MDT, 07:30 UTC) -> 02:00 MST (09:00 UTC) = 1.5 h
            {"received_at": "2026-11-01 01:30:00", "cleared_at": "2026-11-01 02:00:00"},
            # T4 an explicit offset picks the second 01:30 in Los Angeles (PST, 09:30 UTC) -> 02:00 PST = 0.5 h
            {"state": "WA", "received_at": "2026-11-01T01:30:00-08:00", "cleared_at": "2026-11-01 02:00:00"},
        ],
        period="2026-11",
    )
    assert {t: november.record("MR-6", t)["value"] for t in ("T1", "T2", "T3", "T4")} == {
        "T1": 4.5,
        "T2": 3.5,
        "T3": 1.5,
        "T4": 0.5,
    }
    assert november.record("MR-5", "T1")["value"] == 0 and november.record("MR-5", "T2")["value"] == 1
    march = run_checker(
        troubles=[
            # T1 Denver Mar 8 00:30 MST (07:30 UTC) -> 05:00 MDT (11:00 UTC) = 3.5 h (the wall clock says 4.5) -> 1
            {"received_at": "2026-03-08 00:30:00", "cleared_at": "2026-03-08 05:00:00"},
            {
                "received_at": "2026-03-08 02:30:00",
                "cleared_at": "2026-03-08 05:00:00",
            },  # T2 02:30 does not exist: rejected
        ],
        period="2026-03",
    )
    assert march.record("MR-6", "T1")["value"] == 3.5 and march.record("MR-5", "T1")["value"] == 1
    rejects = march.rejects()
    bad = rejects[rejects["record_id"] == "T2"].iloc[0]
    assert bad["reason"] == "nonexistent_local_time" and bad["input_field"] == "received_at"
    assert "T2" not in _ids(march.records("MR-6"))


def test_mr6_mean_duration_split_by_dispatch_with_mean_parity(run_checker):
    """MR-6 is a lower-better mean of hours; resale_pots and retail pots split by dispatch, ubl_2w against all pots."""
    retail = {"carrier_id": "ILEC", "product": "pots"}
    run = run_checker(
        troubles=[
            _duration_trouble(6, dispatch=True),
            _duration_trouble(8, dispatch=True),  # CLEC dispatch: mean 7
            _duration_trouble(5),  # CLEC no dispatch: 5
            _duration_trouble(3, product="ubl_2w"),  # ubl_2w: 3
            *[_duration_trouble(h, dispatch=True, **retail) for h in (2, 4, 6)],  # mean 4, var 4
            *[_duration_trouble(h, **retail) for h in (1, 3)],  # mean 2, var 2
        ]
    )
    yes = run.cell("MR-6", submeasure="dispatch=true")
    # z = (7 - 4) / sqrt(4 * (1/2 + 1/3)) = 1.6432 <= 1.645 -> met (just)
    assert (yes["clec_value"], yes["retail_n"], yes["retail_value"], yes["retail_stdev"]) == (7.0, 3, 4.0, 2.0)
    assert yes["statistic"] == pytest.approx(1.643168, abs=1e-6) and yes["status"] == "met"
    assert yes["direction"] == "lower_better" and yes["unit"] == "hours"
    no = run.cell("MR-6", submeasure="dispatch=false")
    # z = (5 - 2) / sqrt(2 * (1 + 1/2)) = 3 / sqrt(3) = 1.7321 -> miss
    assert no["statistic"] == pytest.approx(math.sqrt(3)) and no["status"] == "miss"
    loop = run.cell("MR-6", product="ubl_2w")
    # all pots 2 4 6 1 3: mean 3.2, M2 = 14.8, var 3.7: z = (3 - 3.2) / sqrt(3.7 * (1 + 1/5)) = -0.0949 -> met
    assert loop["submeasure"] == "all" and loop["retail_n"] == 5 and loop["retail_value"] == pytest.approx(3.2)
    assert loop["statistic"] == pytest.approx(_mod_z(3.2, 3.0, 3.7, 1, 5, False)) and loop["status"] == "met"
    assert run.cell("MR-5", product="ubl_2w")["submeasure"] == "all"  # MR-5 is never split


# ------------------------------------------------------------------------------- MR-7


def test_mr7_repeat_when_another_network_trouble_in_the_previous_30_calendar_days(run_checker):
    """MR-7 value 1 when another network, non-test trouble of the same carrier on the circuit was received strictly
    before this one, on a local date at most 30 calendar days before this one's date."""

    def t(circuit, received, **kw):
        day = received[:10]
        return _trouble(circuit, received, f"{day} 23:00:00", **kw)

    run = run_checker(
        troubles=[
            t("R1", "2026-10-01 09:00:00"),  # T1 nothing before -> 0
            t("R1", "2026-10-31 09:00:00"),  # T2 T1 on day 30 before, exactly 720 h earlier -> 1
            t("R2", "2026-10-01 09:00:00"),  # T3 -> 0
            _trouble(
                "R2", "2026-10-31 23:59:59", "2026-10-31 23:59:59"
            ),  # T4 T3 on day 30 before, 734 h 59 min 59 s earlier -> 1
            t("R3", "2026-10-10 09:00:00", disposition="cpe"),  # T5 not network (excluded, and not a prior)
            t("R3", "2026-10-12 09:00:00"),  # T6 -> 0
            t("R4", "2026-10-10 09:00:00", test=True),  # T7 test (excluded, and not a prior)
            t("R4", "2026-10-12 09:00:00"),  # T8 -> 0
            t("R5", "2026-09-20 09:00:00"),  # T9 September: not in October, still a prior
            t("R5", "2026-10-05 09:00:00"),  # T10 -> 1
            _trouble("R6", "2026-10-10 09:00:00", ""),  # T11 still open: not in a period, still a prior
            t("R6", "2026-10-12 09:00:00"),  # T12 -> 1
            t("R7", "2026-10-15 09:00:00"),  # T13 received at the same instant as T14: not strictly before -> 0
            t("R7", "2026-10-15 09:00:00"),  # T14 -> 0
            t("R8", "2026-10-10 09:00:00", carrier_id="ILEC", product="pots"),  # T15 retail trouble on the circuit
            t("R8", "2026-10-12 09:00:00"),  # T16 -> 0 (another carrier's trouble: the line moved from the ILEC)
            t("R9", "2026-10-12 09:00:00"),  # T17 a later trouble does not make this one a repeat -> 0
            t("R9", "2026-11-02 09:00:00"),  # T18 November
            _trouble("R10", "2026-09-30 23:59:59", "2026-10-01 00:30:00"),  # T19 cleared in October -> 0
            t("R10", "2026-10-31 00:00:00"),  # T20 T19 on day 31 before -> 0
        ]
    )
    expected = {
        "T1": 0,
        "T2": 1,
        "T3": 0,
        "T4": 1,
        "T6": 0,
        "T8": 0,
        "T10": 1,
        "T12": 1,
        "T13": 0,
        "T14": 0,
        "T16": 0,
        "T17": 0,
        "T19": 0,
        "T20": 0,
    }
    assert {k: run.record("MR-7", k)["value"] for k in expected} == expected
    assert run.record("MR-7", "T5")["exclusion_reason"] == "not_network_disposition"
    assert run.record("MR-7", "T7")["exclusion_reason"] == "test_trouble"
    assert not {"T9", "T11", "T18"} & _ids(run.records("MR-7"))
    cell = run.cell("MR-7")
    assert cell["direction"] == "lower_better" and cell["clec_n"] == 14 and cell["clec_numerator"] == 4


def test_mr7_window_is_calendar_days_across_the_fall_back(run_checker):
    """MR-7's window is 30 local calendar days, not 720 hours: across the November fall-back a prior trouble on
    day 30 before counts at any time of that day, one on day 31 never does."""
    run = run_checker(
        troubles=[
            # anchor Nov 15 09:00 MST = 16:00 UTC; Nov 15 - 30 days = Oct 16
            _trouble("R1", "2026-10-16 00:00:00", "2026-10-16 11:00:00"),  # T1 Oct 16 00:00 MDT: day 30, 730 h before
            _trouble("R1", "2026-11-15 09:00:00", "2026-11-15 10:00:00"),  # T2 -> 1
            _trouble("R2", "2026-10-15 23:59:59", "2026-10-16 11:00:00"),  # T3 Oct 15: day 31
            _trouble("R2", "2026-11-15 09:00:00", "2026-11-15 10:00:00"),  # T4 -> 0
        ],
        period="2026-11",
    )
    assert run.record("MR-7", "T2")["value"] == 1
    assert run.record("MR-7", "T4")["value"] == 0


def test_mr7_parity_is_lower_better(run_checker):
    """MR-7 parity: a CLEC repeat rate above retail gives a positive z (CLEC worse)."""

    def pair(circuit, **kw):  # two troubles on one circuit: the second is a repeat
        return [
            _trouble(circuit, "2026-10-05 09:00:00", "2026-10-05 10:00:00", **kw),
            _trouble(circuit, "2026-10-06 09:00:00", "2026-10-06 10:00:00", **kw),
        ]

    retail = {"carrier_id": "ILEC", "product": "pots"}
    single = [_trouble(f"S{i}", "2026-10-05 09:00:00", "2026-10-05 10:00:00", **retail) for i in range(6)]
    run = run_checker(troubles=pair("C1") + pair("C2") + pair("P1", **retail) + single)
    # CLEC 2/4 = 0.5, retail 1/8 = 0.125: z = (0.5 - 0.125) / sqrt(0.109375 * (1/4 + 1/8)) = 1.8516 -> miss
    cell = run.cell("MR-7")
    assert (cell["clec_value"], cell["retail_value"]) == (50.0, 12.5)
    assert cell["statistic"] == pytest.approx(_mod_z(0.125, 0.5, 0.125 * 0.875, 4, 8, False))
    assert cell["statistic"] > 1.645 and cell["status"] == "miss"


# ------------------------------------------------------- OP-5 / MR-7: calendar-day windows, same carrier


def test_op5_day_30_at_a_later_clock_time_is_inside_the_window(run_checker):
    """An installation completed Oct 1 10:00 with a network trouble Oct 31 11:00 (calendar day 30, 721 h later) is
    not trouble-free; one on Nov 1 00:00 (day 31) or at the completion instant itself does not count."""
    orders = [
        {"circuit_id": f"K{i}", "completed_at": "2026-10-01 10:00:00", "due_date": "2026-10-01"} for i in (1, 2, 3)
    ]
    orders = [{**o, "received_at": "2026-09-28 09:00:00", "foc_at": "2026-09-28 10:00:00"} for o in orders]
    troubles = [
        _trouble("K1", "2026-10-31 11:00:00", "2026-10-31 12:00:00"),  # day 30, 721 h after -> O1 0
        _trouble("K2", "2026-11-01 00:00:00", "2026-11-01 01:00:00"),  # day 31 -> O2 1
        _trouble("K3", "2026-10-01 10:00:00", "2026-10-01 11:00:00"),  # the completion instant -> O3 1
    ]
    run = run_checker(orders=orders, troubles=troubles, period="2026-11")
    assert {r: run.record("OP-5", r)["value"] for r in ("O1", "O2", "O3")} == {"O1": 0, "O2": 1, "O3": 1}
    cell = run.cell("OP-5")
    assert (cell["clec_n"], cell["clec_numerator"]) == (3, 2)


def test_calendar_days_across_the_spring_forward_are_local_dates_not_24_hour_steps(run_checker):
    """Across the March spring-forward a local day is 23 h: a trouble 719.75 h after (or before) the anchor can lie
    on calendar day 31, outside both OP-5's and MR-7's windows; one on day 30 is inside."""
    feb7 = {"received_at": "2026-02-03 09:00:00", "foc_at": "2026-02-03 10:00:00", "due_date": "2026-02-07"}
    orders = [{**feb7, "circuit_id": k, "completed_at": "2026-02-07 23:30:00"} for k in ("K1", "K2")]
    troubles = [
        # Feb 7 23:30 MST = Feb 8 06:30 UTC; Feb 7 + 30 days = Mar 9; clocks spring forward Mar 8
        _trouble("K1", "2026-03-10 00:15:00", "2026-03-10 01:00:00"),  # T1 06:15 UTC, 719.75 h after, day 31 -> O1 1
        _trouble("K2", "2026-03-09 23:59:59", "2026-03-10 01:00:00"),  # T2 day 30 -> O2 0
        _trouble("R1", "2026-02-07 23:30:00", "2026-02-08 01:00:00"),  # T3 719.75 h before T4, day 31 before
        _trouble("R1", "2026-03-10 00:15:00", "2026-03-10 01:00:00"),  # T4 -> 0
        _trouble("R2", "2026-02-08 00:00:00", "2026-02-08 01:00:00"),  # T5 day 30 before T6
        _trouble("R2", "2026-03-10 00:15:00", "2026-03-10 01:00:00"),  # T6 -> 1
    ]
    run = run_checker(orders=orders, troubles=troubles, period="2026-03")
    assert {r: run.record("OP-5", r)["value"] for r in ("O1", "O2")} == {"O1": 1, "O2": 0}
    assert {t: run.record("MR-7", t)["value"] for t in ("T4", "T6")} == {"T4": 0, "T6": 1}


def test_each_record_s_date_is_local_to_its_own_state(run_checker):
    """Each date is taken in its own record's state's zone, and a window counts any related record with a date
    inside it, even where the related record nearest in time (in another zone) lies on a date outside."""
    done = {"received_at": "2026-09-28 09:00:00", "foc_at": "2026-09-28 10:00:00", "due_date": "2026-10-01"}
    orders = [{**done, "circuit_id": k, "completed_at": "2026-10-01 23:30:00"} for k in ("K1", "K2")]
    troubles = [
        # completion Oct 1 23:30 MDT (Denver) = Oct 2 05:30 UTC; Oct 1 + 30 days = Oct 31
        _trouble("K1", "2026-10-31 23:00:00", "2026-10-31 23:30:00", state="AZ"),  # T1 Phoenix Oct 31: day 30 -> O1 0
        _trouble("K2", "2026-11-01 00:30:00", "2026-11-01 01:00:00"),  # T2 Denver Nov 1 (06:30 UTC): day 31
        _trouble("K2", "2026-10-31 23:45:00", "2026-11-01 01:00:00", state="AZ"),  # T3 06:45 UTC, Oct 31 -> O2 0
        # MR-7: T4 Denver Nov 15 09:00 MST; Nov 15 - 30 days = Oct 16
        _trouble("R1", "2026-11-15 09:00:00", "2026-11-15 10:00:00"),  # T4 -> 1 (T5)
        _trouble("R1", "2026-10-16 00:15:00", "2026-10-16 01:00:00"),  # T5 Denver Oct 16 (06:15 UTC): day 30
        _trouble("R1", "2026-10-15 23:30:00", "2026-10-16 01:00:00", state="AZ"),  # T6 06:30 UTC, Phoenix Oct 15
    ]
    run = run_checker(orders=orders, troubles=troubles, period="2026-11")
    assert {r: run.record("OP-5", r)["value"] for r in ("O1", "O2")} == {"O1": 0, "O2": 0}
    assert run.record("MR-7", "T4")["value"] == 1


def test_related_records_belong_to_the_same_carrier(run_checker):
    """A trouble on the circuit reported by another carrier (the ILEC's retail trouble before a line migrated to the
    CLEC, or another CLEC's) makes neither an installation troubled nor a trouble a repeat; the same carrier's does."""
    retail = {"carrier_id": "ILEC", "product": "pots"}
    orders = [
        {"circuit_id": "K1"},  # O1: the ILEC's trouble -> 1
        {"circuit_id": "K2"},  # O2: CLEC02's trouble -> 1
        {"circuit_id": "K3"},  # O3: its own carrier's trouble -> 0
        {**retail, "circuit_id": "K4"},  # O4 retail: CLEC01's trouble after the line migrated -> 1
    ]
    troubles = [
        _trouble("K1", "2026-10-20 09:00:00", "2026-10-20 10:00:00", **retail),  # T1
        _trouble("K2", "2026-10-20 09:00:00", "2026-10-20 10:00:00", carrier_id="CLEC02"),  # T2
        _trouble("K3", "2026-10-20 09:00:00", "2026-10-20 10:00:00"),  # T3
        _trouble("K4", "2026-10-20 09:00:00", "2026-10-20 10:00:00"),  # T4
        _trouble("M1", "2026-11-02 09:00:00", "2026-11-02 10:00:00", **retail),  # T5 the ILEC's retail line
        _trouble("M1", "2026-11-10 09:00:00", "2026-11-10 10:00:00"),  # T6 migrated to CLEC01 -> not a repeat
        _trouble("M2", "2026-11-02 09:00:00", "2026-11-02 10:00:00"),  # T7
        _trouble("M2", "2026-11-10 09:00:00", "2026-11-10 10:00:00"),  # T8 -> a repeat
    ]
    run = run_checker(orders=orders, troubles=troubles, period="2026-11")
    assert {r: run.record("OP-5", r)["value"] for r in ("O1", "O2", "O3", "O4")} == {"O1": 1, "O2": 1, "O3": 0, "O4": 1}
    assert {t: run.record("MR-7", t)["value"] for t in ("T5", "T6", "T7", "T8")} == {"T5": 0, "T6": 0, "T7": 0, "T8": 1}


def test_two_related_record_rules_over_the_same_troubles_each_count_their_own_others(run_checker, make_plan):
    """OP-5 and MR-7 search the same troubles; the sorted others are computed once per batch for rules that search
    the same others. With MR-7 counting only earlier cpe troubles (OP-5 still network ones), each rule reads its own."""

    def cpe_repeats(doc):
        doc["measures"][6]["value"]["where"][0]["value"] = "cpe"  # MR-7

    orders = [{"circuit_id": "K1"}, {"circuit_id": "K2"}]
    troubles = [
        _trouble("K1", "2026-10-20 09:00:00", "2026-10-20 10:00:00"),  # T1 network: O1 troubled
        _trouble("K2", "2026-10-20 09:00:00", "2026-10-20 10:00:00", disposition="cpe"),  # T2 cpe: O2 not
        _trouble("M1", "2026-11-02 09:00:00", "2026-11-02 10:00:00", disposition="cpe"),  # T3
        _trouble("M1", "2026-11-10 09:00:00", "2026-11-10 10:00:00"),  # T4: after a cpe trouble -> 1
        _trouble("M2", "2026-11-02 09:00:00", "2026-11-02 10:00:00"),  # T5
        _trouble("M2", "2026-11-10 09:00:00", "2026-11-10 10:00:00"),  # T6: after a network trouble -> 0
    ]
    for use_plan, repeats in (
        (make_plan(cpe_repeats), {"T4": 1, "T6": 0}),
        (make_plan(lambda doc: None), {"T4": 0, "T6": 1}),
    ):
        run = run_checker(orders=orders, troubles=troubles, period="2026-11", use_plan=use_plan)
        assert {r: run.record("OP-5", r)["value"] for r in ("O1", "O2")} == {"O1": 0, "O2": 1}
        assert {t: run.record("MR-7", t)["value"] for t in ("T4", "T6")} == repeats


def test_a_plan_may_still_match_on_one_field_in_real_hours(run_checker, make_plan):
    """match_on as a single field and window_hours keep their meaning: any carrier, anchor < t <= anchor + 720 h."""

    def hours_on_the_circuit(doc):
        for i in (3, 6):  # OP-5, MR-7
            value = doc["measures"][i]["value"]
            del value["window_days"]
            value.update(match_on="circuit_id", window_hours=720)

    orders = [{"circuit_id": f"K{i}", "completed_at": "2026-10-01 10:00:00", "due_date": "2026-10-01"} for i in (1, 2)]
    orders = [{**o, "received_at": "2026-09-28 09:00:00", "foc_at": "2026-09-28 10:00:00"} for o in orders]
    troubles = [
        _trouble("K1", "2026-10-31 10:00:00", "2026-10-31 11:00:00", carrier_id="ILEC", product="pots"),  # 720 h
        _trouble("K2", "2026-10-31 10:00:01", "2026-10-31 11:00:00"),  # 720 h 1 s
    ]
    run = run_checker(orders=orders, troubles=troubles, period="2026-11", use_plan=make_plan(hours_on_the_circuit))
    assert {r: run.record("OP-5", r)["value"] for r in ("O1", "O2")} == {"O1": 0, "O2": 1}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_related_records_agree_with_a_plain_reading_of_the_rule(run_checker, seed):
    """On random troubles of two carriers on a few circuits in two zones (Denver with its fall-back, Phoenix without),
    OP-5 and MR-7 give what a record-by-record reading of the rule gives: same carrier and circuit, strictly after
    (before) the anchor instant, local date at most 30 days after (before) the anchor's local date."""
    import datetime as dt
    import random
    from zoneinfo import ZoneInfo

    rng = random.Random(seed)
    zones = {"CO": ZoneInfo("America/Denver"), "AZ": ZoneInfo("America/Phoenix")}
    start = dt.datetime(2026, 9, 1)

    def key(row):
        return row["carrier_id"], row["circuit_id"]

    def instant(row, name):  # the earlier instant for an ambiguous wall time, as the contract reads it
        return dt.datetime.fromisoformat(row[name]).replace(tzinfo=zones[row["state"]], fold=0).timestamp()

    def wall(when: dt.datetime) -> str:
        return when.strftime("%Y-%m-%d %H:%M:%S")

    def fine(state: str, when: dt.datetime) -> bool:  # not a wall time skipped by the spring-forward
        aware = when.replace(tzinfo=zones[state])
        return aware.astimezone(dt.UTC).astimezone(zones[state]).replace(tzinfo=None) == when

    carriers = [{"carrier_id": "CLEC01", "product": "resale_pots"}, {"carrier_id": "ILEC", "product": "pots"}]
    near_30_days = range(int(28.5 * 24 * 60), int(31.5 * 24 * 60), 15)  # minutes: gaps around the boundary
    troubles = []
    for carrier in carriers:  # both carriers on the same circuits, each circuit's troubles about 30 days apart
        for circuit in ("C1", "C2", "C3", "C4", "C5", "C6"):
            received = start + dt.timedelta(minutes=rng.randrange(0, 20 * 24 * 60, 15))
            while received < dt.datetime(2026, 12, 1):
                row = {**carrier, "state": rng.choice(["CO", "AZ"]), "circuit_id": circuit}
                troubles.append(
                    {**row, "received_at": wall(received), "cleared_at": wall(received + dt.timedelta(hours=1))}
                )
                received += dt.timedelta(minutes=rng.choice(near_30_days))
    orders = []
    for trouble in rng.sample(troubles, 30):  # completions about 30 days before a trouble on the circuit
        done = dt.datetime.fromisoformat(trouble["received_at"]) - dt.timedelta(minutes=rng.choice(near_30_days))
        row = {**rng.choice(carriers), "state": rng.choice(["CO", "AZ"]), "circuit_id": trouble["circuit_id"]}
        day = done.date().isoformat()
        orders.append(
            {**row, "completed_at": wall(done), "received_at": f"{day} 00:00:00", "foc_at": f"{day} 00:00:00"}
        )
        orders[-1]["due_date"] = day
    troubles = [t for t in troubles if fine(t["state"], dt.datetime.fromisoformat(t["received_at"]))]
    orders = [o for o in orders if fine(o["state"], dt.datetime.fromisoformat(o["completed_at"]))]
    run = run_checker(orders=orders, troubles=troubles, period="2026-11")

    def date(row, name):
        return dt.date.fromisoformat(row[name][:10])

    for i, order in enumerate(orders, start=1):  # OP-5 reports October's completions
        if not order["completed_at"].startswith("2026-10"):
            continue
        troubled = any(
            key(t) == key(order)
            and instant(t, "received_at") > instant(order, "completed_at")
            and (date(t, "received_at") - date(order, "completed_at")).days <= 30
            for t in troubles
        )
        assert run.record("OP-5", f"O{i}")["value"] == (0 if troubled else 1), order
    for i, trouble in enumerate(troubles, start=1):  # MR-7: troubles cleared in November
        if not trouble["cleared_at"].startswith("2026-11"):
            continue
        repeat = any(
            key(t) == key(trouble)
            and instant(t, "received_at") < instant(trouble, "received_at")
            and (date(trouble, "received_at") - date(t, "received_at")).days <= 30
            for t in troubles
        )
        assert run.record("MR-7", f"T{i}")["value"] == (1 if repeat else 0), trouble


# ------------------------------------------------------------------------------- MR-8


def test_mr8_trouble_rate_per_100_lines(run_checker):
    """MR-8 counts network, non-test troubles received in the month (open or cleared) per 100 lines in service, as a proportion of lines."""
    retail = {"carrier_id": "ILEC", "product": "pots"}
    run = run_checker(
        troubles=[
            {"cleared_at": ""},  # T1 open: counted
            {
                "received_at": "2026-10-30 09:00:00",
                "cleared_at": "2026-11-02 09:00:00",
            },  # T2 cleared in November: counted
            {},  # T3 counted
            {"disposition": "cpe"},  # T4 not_network_disposition
            {"test": True},  # T5 test_trouble
            {"received_at": "2026-09-30 20:00:00", "cleared_at": "2026-10-01 09:00:00"},  # T6 received in September
            *[retail] * 10,  # T7..T16 retail
        ],
        lines=[
            {"lines_in_service": 200},
            {"carrier_id": "CLEC02", "lines_in_service": 50},  # lines, no troubles
            {"carrier_id": "ILEC", "product": "pots", "lines_in_service": 1000},
            {"period": "2026-09", "lines_in_service": 500},  # another month: ignored
        ],
    )
    records = run.records("MR-8")
    troubles = records[records["record_type"] == "troubles"]
    assert _ids(troubles) == {f"T{i}" for i in range(1, 6)} | {f"T{i}" for i in range(7, 17)}
    assert run.record("MR-8", "T4")["exclusion_reason"] == "not_network_disposition"
    assert run.record("MR-8", "T5")["exclusion_reason"] == "test_trouble"
    lines = records[records["record_type"] == "lines"]
    assert sorted(lines["value"]) == [50, 200, 1000]
    cell = run.cell("MR-8")
    # CLEC 3 / 200 = 1.5 per 100; retail 10 / 1000 = 1.0:
    # Poisson variance, the retail rate per line: z = (0.015 - 0.01) / sqrt(0.01 * (1/200 + 1/1000)) = 0.6455 -> met
    assert (cell["clec_n"], cell["clec_numerator"], cell["clec_value"]) == (200, 3, 1.5)
    assert (cell["retail_n"], cell["retail_numerator"], cell["retail_value"]) == (1000, 10, 1.0)
    assert cell["statistic"] == pytest.approx(_mod_z(0.01, 0.015, 0.01, 200, 1000, False))
    assert cell["statistic"] == pytest.approx(0.645497, abs=1e-6) and cell["status"] == "met"
    idle = run.cell("MR-8", "CLEC02")
    assert (idle["clec_n"], idle["clec_numerator"], idle["clec_value"]) == (50, 0, 0.0)
    assert idle["statistic"] == pytest.approx(_mod_z(0.01, 0.0, 0.01, 50, 1000, False)) and idle["status"] == "met"
    agg = run.cell("MR-8", None)  # all CLECs: 3 / 250 = 1.2 per 100
    assert (agg["clec_n"], agg["clec_numerator"], agg["clec_value"]) == (250, 3, 1.2)


def test_mr8_lines_of_test_carriers_are_not_in_the_base(run_checker):
    """The plan's test carriers' lines count in no MR-8 base: their troubles are excluded, so the all-CLEC rate must not be diluted."""
    run = run_checker(
        troubles=[{}, {"carrier_id": "TESTCLEC"}],
        lines=[{"lines_in_service": 100}, {"carrier_id": "TESTCLEC", "lines_in_service": 900}],
    )
    # all CLECs: CLEC01's 1 trouble over CLEC01's 100 lines = 1.0 per 100 (not 1 / 1000 = 0.1)
    agg = run.cell("MR-8", None)
    assert (agg["clec_n"], agg["clec_numerator"], agg["clec_value"]) == (100, 1, 1.0)


def test_mr8_troubles_without_lines_are_undetermined(run_checker):
    """An MR-8 CLEC cell with troubles but no lines-in-service row is undetermined, with a reason."""
    run = run_checker(
        troubles=[{}, {"carrier_id": "ILEC", "product": "pots"}],
        lines=[{"carrier_id": "ILEC", "product": "pots", "lines_in_service": 100}],
    )
    cell = run.cell("MR-8")
    assert cell["clec_n"] == 0 and cell["clec_numerator"] == 1
    assert cell["status"] == "undetermined" and "lines" in cell["status_reason"]


def test_mr8_aggregate_leaves_out_troubles_of_clecs_without_lines(run_checker):
    """The all-CLEC MR-8 rate counts the troubles of CLECs with lines in the state only: CLEC02's 3 troubles
    without a lines row would otherwise put 4 troubles over CLEC01's 100 lines (4.0 instead of 1.0 per 100)."""
    run = run_checker(
        troubles=[{}, *({"carrier_id": "CLEC02", "circuit_id": f"C2{i}"} for i in range(3))],
        lines=[{"lines_in_service": 100}],
    )
    agg = run.cell("MR-8", None)
    assert (agg["clec_n"], agg["clec_numerator"], agg["clec_value"]) == (100, 1, 1.0)
    assert run.cell("MR-8", "CLEC02")["status"] == "undetermined"


def test_mr8_lines_without_any_trouble_give_rate_zero(run_checker):
    """A CLEC with lines in service and no trouble at all in the input still gets an MR-8 cell with rate 0."""
    run = run_checker(troubles=[], lines=[{"lines_in_service": 40}])
    cell = run.cell("MR-8")
    assert (cell["clec_n"], cell["clec_numerator"], cell["clec_value"]) == (40, 0, 0.0)
    assert cell["status"] == "no_retail_analog"


# ------------------------------------------------------------------------------- time zones and periods


def test_month_membership_uses_the_local_date_of_the_state(run_checker):
    """A record belongs to the month of its local date; explicit offsets are instants converted to the state's zone."""
    troubles = [
        {"state": "WA", "received_at": "2026-10-31 22:00:00", "cleared_at": "2026-10-31 23:30:00"},  # T1 local Oct 31
        # T2 06:30 UTC Nov 1 = 23:30 PDT Oct 31 -> October
        {"state": "WA", "received_at": "2026-10-31 22:00:00", "cleared_at": "2026-11-01T06:30:00Z"},
        # T3 the same instant in Denver is 00:30 MDT Nov 1 -> November
        {"state": "CO", "received_at": "2026-10-31 22:00:00", "cleared_at": "2026-11-01T06:30:00Z"},
        # T4 Phoenix (UTC-7 all year): 23:30 Oct 31 -> October
        {"state": "AZ", "received_at": "2026-10-31 22:00:00", "cleared_at": "2026-11-01T06:30:00Z"},
        # T5 23:30-07:00 is 23:30 PDT in Oregon -> October, but 00:30 MDT Nov 1 in Utah (T6) -> November
        {"state": "OR", "received_at": "2026-10-31 22:00:00", "cleared_at": "2026-10-31T23:30:00-07:00"},
        {"state": "UT", "received_at": "2026-10-31 22:00:00", "cleared_at": "2026-10-31T23:30:00-07:00"},
    ]
    october = run_checker(troubles=troubles)
    assert _ids(october.records("MR-5")) == {"T1", "T2", "T4", "T5"}
    # T2 lasted 22:00 -> 23:30 PDT = 1.5 h; T3 and T6 22:00 MDT (04:00 UTC) -> 06:30 UTC = 2.5 h
    assert october.record("MR-6", "T2")["value"] == 1.5
    november = run_checker(troubles=troubles, period="2026-11")
    assert _ids(november.records("MR-5")) == {"T3", "T6"}
    assert november.record("MR-6", "T3")["value"] == 2.5
    assert november.record("MR-6", "T6")["value"] == 2.5  # 22:00 MDT (04:00 UTC) -> 06:30 UTC


def test_every_record_of_the_period_is_in_the_audit_exactly_once(run_checker):
    """records/ lists every record of each measure's period once, included or with an exclusion reason."""
    run = run_checker(
        orders=[
            {},
            {"test": True},
            {"channel": ""},
            {"cancelled": True},
            {"order_type": "record"},
            {"carrier_id": "ILEC", "product": "pots"},
            {"completed_at": "2026-11-03 10:00:00"},
        ],
        troubles=[
            {},
            {"disposition": "information"},
            {"carrier_id": "TESTCLEC"},
            {"carrier_id": "ILEC", "product": "pots"},
            {"cleared_at": ""},
        ],
        lines=[{}],
    )
    expected = {  # by the measure's period_by field, in October local time
        "PO-5": {"O1", "O2", "O3", "O4", "O5", "O6", "O7"},  # all FOCs Oct 5
        "OP-3": {"O1", "O2", "O3", "O4", "O5", "O6"},  # O7 completed in November
        "OP-4": {"O1", "O2", "O3", "O4", "O5", "O6"},
        "OP-5": set(),  # October reports September's completions
        "MR-5": {"T1", "T2", "T3", "T4"},  # T5 open
        "MR-6": {"T1", "T2", "T3", "T4"},
        "MR-7": {"T1", "T2", "T3", "T4"},
        "MR-8": {"T1", "T2", "T3", "T4", "T5", "2026-10|CLEC01|CO|resale_pots"},
    }
    for measure, ids in expected.items():
        records = run.records(measure)
        assert len(records) == len(ids) and _ids(records) == ids, measure
        excluded = records[~records["included"]]
        assert excluded["exclusion_reason"].notna().all(), measure
        assert records[records["included"]]["exclusion_reason"].isna().all(), measure


def test_op5_a_trouble_a_fraction_of_a_second_after_completion_counts(run_checker):
    """OP-5's 'received after completion' is exact below one second: 0.4 s after counts, the same instant does not."""
    run = run_checker(
        orders=[
            {
                "circuit_id": "CA",
                "completed_at": "2026-09-10 12:00:00.000",
                "received_at": "2026-09-07 09:00:00",
                "foc_at": "2026-09-07 10:00:00",
                "due_date": "2026-09-10",
            },
            {
                "circuit_id": "CB",
                "completed_at": "2026-09-10 12:00:00.500",
                "received_at": "2026-09-07 09:00:00",
                "foc_at": "2026-09-07 10:00:00",
                "due_date": "2026-09-10",
            },
        ],
        troubles=[
            {"circuit_id": "CA", "received_at": "2026-09-10 12:00:00.400", "cleared_at": "2026-09-10 13:00:00"},
            {"circuit_id": "CB", "received_at": "2026-09-10 12:00:00.500", "cleared_at": "2026-09-10 13:00:00"},
        ],
    )
    assert run.record("OP-5", "O1")["value"] == 0  # CA: a trouble 0.4 s after completion
    assert run.record("OP-5", "O2")["value"] == 1  # CB: the trouble is at the completion instant, not after


def test_mr7_a_prior_trouble_a_fraction_of_a_second_earlier_is_a_repeat(run_checker):
    """MR-7's 'received before' is exact below one second: 0.3 s earlier on the same circuit is a repeat."""
    run = run_checker(
        troubles=[
            {"circuit_id": "CX", "received_at": "2026-10-13 09:00:00.100", "cleared_at": "2026-10-13 10:00:00"},
            {"circuit_id": "CX", "received_at": "2026-10-13 09:00:00.400", "cleared_at": "2026-10-13 11:00:00"},
        ],
        lines=[{}],
    )
    assert run.record("MR-7", "T1")["value"] == 0
    assert run.record("MR-7", "T2")["value"] == 1

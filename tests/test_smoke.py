"""A first end-to-end check on a handful of records."""


def test_resale_interval_counts_business_days_from_the_effective_received_date(run_checker):
    """OP-4 counts business days d with effective received date <= d < completion date."""
    run = run_checker(
        orders=[
            {
                "carrier_id": "ILEC",
                "product": "pots",
                "received_at": "2026-10-05 09:00:00",
                "completed_at": "2026-10-08 12:00:00",
            },
            {
                "carrier_id": "ILEC",
                "product": "pots",
                "received_at": "2026-10-05 16:00:00",
                "foc_at": "2026-10-05 16:30:00",
                "completed_at": "2026-10-08 12:00:00",
            },
            {"received_at": "2026-10-05 09:00:00", "completed_at": "2026-10-09 12:00:00"},
        ]
    )
    assert run.record("OP-4", "O1")["value"] == 3
    assert run.record("OP-4", "O2")["value"] == 2  # after the 15:00 cut-off: counts from Tuesday
    assert run.record("OP-4", "O3")["value"] == 4
    cell = run.cell("OP-4", submeasure="dispatch=false")
    assert cell["clec_value"] == 4 and cell["retail_value"] == 2.5

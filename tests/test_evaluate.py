"""evaluate: the integer codes related-record rules match on (one code space across types), and their others index."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from carrier_sla.engine import evaluate
from carrier_sla.inputs.contract import Records


def _records(record_type: str, carriers: list[str | None], circuits: list[str | None], cats: list[str]) -> Records:
    codes = np.array([cats.index(c) if c is not None else -1 for c in carriers], dtype=np.int32)
    return Records(
        record_type,
        len(carriers),
        codes={"carrier_id": codes},
        cats={"carrier_id": cats},
        text={"circuit_id": pa.array(circuits, pa.string())},
    )


def test_match_codes_are_equal_exactly_where_every_field_is_equal_across_record_types(make_plan):
    """Codes of [carrier_id, circuit_id] are equal across orders and troubles exactly where both texts are (each
    type numbers its carriers its own way), -1 where either is null; a rule on circuit_id alone gets its own codes."""

    def change(doc):
        doc["measures"][3]["value"]["match_on"] = ["carrier_id", "circuit_id"]  # OP-5
        doc["measures"][6]["value"]["match_on"] = "circuit_id"  # MR-7

    plan = make_plan(change)
    orders = _records(
        "orders",
        ["CLEC01", "ILEC", "CLEC01", None, "CLEC02"],
        ["C1", "C1", None, "C1", "C2"],
        ["CLEC01", "CLEC02", "ILEC"],
    )
    troubles = _records(
        "troubles",
        ["ILEC", "CLEC01", "CLEC01", "CLEC02", "CLEC02"],
        ["C1", "C1", "C2", "C2", "C1"],
        ["ILEC", "CLEC02", "CLEC01"],
    )  # the same carriers, coded in another order
    evaluate.link(plan, {"orders": orders, "troubles": troubles})

    def pairs(rec):
        return [(c, t) for c, t in zip(rec.decoded("carrier_id"), rec.text["circuit_id"].to_pylist(), strict=True)]

    both = pairs(orders) + pairs(troubles)
    codes = np.concatenate([orders.keys["carrier_id+circuit_id"], troubles.keys["carrier_id+circuit_id"]])
    for i, a in enumerate(both):
        assert (codes[i] < 0) == (None in a)
        for j, b in enumerate(both):
            if None not in a and None not in b:
                assert (codes[i] == codes[j]) == (a == b), (a, b)
    circuits = np.concatenate([orders.keys["circuit_id"], troubles.keys["circuit_id"]])
    texts = [t for _, t in both]
    assert [c < 0 for c in circuits] == [t is None for t in texts]
    assert len({int(c) for c, t in zip(circuits, texts, strict=True) if t == "C1"}) == 1
    assert circuits[4] != circuits[0]


def test_codes_too_wide_for_31_bits_are_renumbered_densely():
    """Mixed-radix codes past 2**31 are renumbered 0, 1, ... across the arrays, equal where they were equal."""
    wide = [np.array([5, -1, 1 << 40], dtype=np.int64), np.array([1 << 40, 7], dtype=np.int64)]
    assert [a.tolist() for a in evaluate._dense(wide)] == [[0, -1, 2], [2, 1]]


def test_the_others_index_is_computed_again_when_the_records_are_linked_anew(bundled_plan):
    """The sorted index of a related-record rule's others is kept with the records (Records.memo) and read again
    by every rule with the same others; once the records get new match codes (linked again), it is rebuilt."""
    rule = bundled_plan.measure("MR-7").value
    hour = 3_600 * 10**9
    times = np.array([1, 2, 3], dtype=np.int64) * hour
    troubles = Records(
        "troubles",
        3,
        cols={"received_at_utc": times, "received_at_local": times, "is_test": np.zeros(3, dtype=bool)},
        codes={"disposition": np.zeros(3, dtype=np.int32)},
        cats={"disposition": ["network"]},
        keys={evaluate.match_key(rule.match_on): np.array([0, 0, 1], dtype=np.int64)},
    )
    keys, _, _ = evaluate._others(troubles, rule)
    assert (keys >> 32).tolist() == [0, 0, 1]
    assert evaluate._others(troubles, rule)[0] is keys  # read again, not rebuilt
    troubles.keys[evaluate.match_key(rule.match_on)] = np.array([-1, 2, 2], dtype=np.int64)  # linked anew
    assert (evaluate._others(troubles, rule)[0] >> 32).tolist() == [2, 2]

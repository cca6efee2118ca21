"""Deterministic synthetic wholesale data in the input contract (schemas/records/*.schema.json).

`generate` writes orders, troubles and lines for a run of months, shaped to fit the bundled
example plan `example-qc`:

- States CO, WA, AZ, UT, OR (volume 30/25/20/15/10 %), local wall-clock timestamps in each
  state's IANA zone; business days Monday-Friday except US federal holidays, business hours
  08:00-17:00, order cut-off 15:00.
- Retail carrier ILEC (about two thirds of orders and troubles; products pots, ds1, fgd_trunk),
  twelve CLECs CLEC01..CLEC12 with Zipf-like sizes (products resale_pots, ubl_2w, ubl_ds1,
  access_ds1, lis_trunk; `clecs` and `zipf` choose another population, e.g. 200 CLECs
  CLEC001..CLEC200 with sizes falling as rank ** -1.3, most of them small) and the test
  carrier TESTCLEC (every row test=true; 0.5 % of other rows are test rows too).
- Everyone is served at parity (the same distributions relative to the product's standard
  interval and the same repair times as retail) except two cells a checker should flag:
    * CLEC03 in CO, resale_pots: due dates set 1-2 business days past the standard
      interval and 25 % missed due dates, mostly company reason (retail: 7 %). OP-3 and OP-4 fail.
    * CLEC05 in UT, every product: repair durations twice as long and 25 % of network troubles
      are repeats (everyone else: about 9-10 %). MR-5, MR-6 and MR-7 fail.
- Lines in service per (period, carrier, state, product) are sized so that network troubles per
  100 lines per month are about 1.5 for every carrier.
- Troubles refer to the carrier's circuits: about 2 % land on a circuit installed in the
  previous 30 days (OP-5) and a share of network troubles repeat a circuit that had another
  network trouble within the previous 30 days (MR-7).

With malformed=True about 0.3 % of orders and troubles are bad, 0.05 % per kind, so each kind
appears at least once a month from about 1,000 rows of a type a month (none below that):
unparseable received_at text (CSV only), an unknown product code, a lowercase or 3-letter state,
completed_at/cleared_at before received_at, an exact copy of another row (same id), negative
no_access_hours (troubles), and a received_at inside the spring-forward DST gap (e.g. 02:30 on
the second Sunday of March in CO) in months holding such a gap. Lines get one bad row per
period, the kind rotating: an extra row with an unknown product, an extra row with a lowercase
state, or TESTCLEC's count made negative. Parquet carries every kind but the unparseable text
(a nonexistent wall-clock time is representable in a naive timestamp column, so it stays).

The same arguments give byte-identical files: every random draw comes from
numpy.random.default_rng seeded with (seed, purpose, month, batch); nothing reads the clock.
Months are generated and written one at a time, a large month in blocks of days of at most
about BATCH_ROWS rows of a type each, so memory stays bounded whatever the scale.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from carrier_sla.errors import UsageError
from carrier_sla.plan.fields import column_type, record_schema
from carrier_sla.synthetic.world import (
    CHANNELS,
    CLEC_ZIPF,
    CLECS,
    CUTOFF,
    DAY,
    DISPOSITION_P,
    DISPOSITIONS,
    HOUR,
    MISS_REASONS,
    NEW_CIRCUIT_BASE,
    OPEN,
    ORDER_HOURS_BUSINESS,
    ORDER_HOURS_OFF,
    ORDER_OFF_DAY,
    ORDER_TYPE_P,
    ORDER_TYPES,
    P_MISS,
    P_MISS_SLOW,
    P_ON_NEW_INSTALL,
    P_REPEAT,
    P_REPEAT_SLOW,
    PRODUCT_CODES,
    STATE_ZONES,
    STATES,
    TROUBLE_HOURS,
    TROUBLE_OFF_DAY,
    TRUNKS,
    WINDOW,
    Batch,
    World,
    Zone,
    add_business_hours,
    add_elapsed,
    batches,
    busday_offset,
    business_calendar,
    make_world,
    month_start,
    months_of,
    rng_for,
)

BAD_PRODUCTS = ("ubl_4w", "POTS", "dsx")
BAD_STATES = (*(s.lower() for s in STATES), "COL", "WAS", "ARI", "UTA", "ORE")
BAD_TEXT = ("{year}-13-45 25:61:00", "not a date", "31/02/{year} 10:00")
BAD_RATE = 0.0005  # per kind; 6-7 kinds give about 0.3 %
ORDER_KINDS = ("text", "product", "state", "before", "duplicate", "dst")
TROUBLE_KINDS = (*ORDER_KINDS, "negative_no_access")

TS, DATE = pa.timestamp("s"), pa.date32()
ARROW_TYPES = {"timestamp": TS, "date": DATE, "bool": pa.bool_(), "integer": pa.int64(), "number": pa.float64()}


def _arrow_schema(record_type: str) -> pa.Schema:
    """The Parquet schema of a record type, in the contract's column order (schemas/records/)."""
    props = record_schema(record_type)["properties"]
    return pa.schema([(name, ARROW_TYPES.get(column_type(prop), pa.string())) for name, prop in props.items()])


SCHEMAS = {kind: _arrow_schema(kind) for kind in ("orders", "troubles", "lines")}


def generate(
    out: Path,
    period: str,
    periods: int = 3,
    scale: int = 20_000,
    seed: int = 0,
    fmt: str = "csv",
    files_per_type: int = 1,
    malformed: bool = True,
    clecs: int = CLECS,
    zipf: float = CLEC_ZIPF,
) -> dict[str, int]:
    """Write orders, troubles and lines for the `periods` months ending with `period` (YYYY-MM)
    into `out`; return rows written per record type. scale = approximate orders+troubles per month.
    clecs, zipf: the CLEC population, `clecs` CLECs whose shares of the CLEC volume fall as
    rank ** -zipf (default 12 and 1.1; a real ILEC's population: about 200 and 1.3).

    Layout: out/{orders,troubles,lines}.{csv,parquet}; with files_per_type > 1 orders and
    troubles go to folders out/orders/part-00000.<fmt> ... (stale part files there are removed),
    each batch of rows split evenly over the parts.
    """
    months = months_of(period, periods)
    if fmt not in ("csv", "parquet"):
        raise UsageError(f"fmt must be 'csv' or 'parquet', not {fmt!r}")
    if scale < 1 or files_per_type < 1 or seed < 0:
        raise UsageError("scale and files_per_type must be at least 1 and seed non-negative")
    if not 1 <= clecs <= 9999 or not 0 <= zipf <= 10:
        raise UsageError(f"clecs must be 1..9999 and zipf 0..10, not {clecs} and {zipf}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    world = make_world(seed, scale, clecs, zipf)
    cal = business_calendar(months)
    horizon = month_start(months[-1] + 1)
    zones = [Zone(z, month_start(months[0]) - 40 * DAY, horizon + 400 * DAY) for z in STATE_ZONES]
    meta = {
        "generator": "carrier_sla.synthetic.generate",
        "period": period,
        "periods": periods,
        "scale": scale,
        "seed": seed,
        "malformed": malformed,
        "clecs": clecs,
        "zipf": zipf,
    }
    counts = {"orders": 0, "troubles": 0, "lines": 0}
    carry = _Carry()
    sinks = [_Sink(out, kind, fmt, files_per_type, meta) for kind in ("orders", "troubles")]
    try:
        for m in months:
            for bt in batches(world, m, cal, zones, horizon, malformed, fmt):
                orders, installs = _orders(world, bt, rng_for(seed, 1, m, bt.index), carry.orders)
                counts["orders"] += sinks[0].write(orders)
                del orders
                carry.add_installs(installs, bt.start)  # this batch's troubles look back
                troubles, parents = _troubles(
                    world, bt, rng_for(seed, 2, m, bt.index), carry.troubles, carry.installs, carry.parents
                )
                counts["troubles"] += sinks[1].write(troubles)
                del troubles
                carry.add_parents(parents, bt.end)
                carry.orders += bt.n_orders
                carry.troubles += bt.n_troubles
    finally:
        for sink in sinks:
            sink.close()
    lines = pa.concat_tables([_lines(world, m, i, rng_for(seed, 3, m, 0), malformed) for i, m in enumerate(months)])
    line_sink = _Sink(out, "lines", fmt, 1, meta)
    counts["lines"] = line_sink.write(lines)
    line_sink.close()
    return counts


Candidates = tuple[np.ndarray, np.ndarray, np.ndarray]  # cell, local time, circuit number


@dataclass
class _Carry:
    """What later batches need from earlier ones: id counters, recent installs and troubles."""

    orders: int = 0
    troubles: int = 0
    installs: Candidates | None = None
    parents: Candidates | None = None

    def add_installs(self, new: Candidates, first_use: int) -> None:
        self.installs = _recent_only(_concat([self.installs, new]), first_use)

    def add_parents(self, new: Candidates, first_use: int) -> None:
        self.parents = _recent_only(_concat([self.parents, new]), first_use)


# ------------------------------------------------------------------------------ record types


def _arrivals(
    rng: np.random.Generator,
    n: int,
    bt: Batch,
    state: np.ndarray,
    hours_bus: Sequence[float],
    hours_off: Sequence[float],
    off_weight: float,
    dst_rows: np.ndarray,
) -> np.ndarray:
    """Local received times in time order: a day of the batch, an hour from the profile."""
    p_day = np.where(bt.busday, 1.0, off_weight)
    di = rng.choice(len(bt.days), size=n, p=p_day / p_day.sum())
    u = rng.random(n)
    cdf_bus = np.cumsum(hours_bus) / np.sum(hours_bus)
    cdf_off = np.cumsum(hours_off) / np.sum(hours_off)
    hour = np.where(bt.busday[di], np.searchsorted(cdf_bus, u, "right"), np.searchsorted(cdf_off, u, "right"))
    local = np.sort(bt.days[di] * DAY + np.minimum(hour, 23) * HOUR + rng.integers(0, HOUR, n))
    for s, zone in enumerate(bt.zones):
        sel = state == s
        local[sel] = zone.shift_gaps(local[sel])
    minutes = rng.integers(1, 59, len(dst_rows))
    for j, (row, minute) in enumerate(zip(dst_rows, minutes, strict=True)):
        gaps = bt.gaps[state[row]]
        local[row] = gaps[j % len(gaps)][0] + minute * 60
    return local


def _pick_bad(
    rng: np.random.Generator, n: int, state: np.ndarray, bt: Batch, kinds: Sequence[str]
) -> dict[str, np.ndarray]:
    """Distinct rows for each malformed kind; for 'duplicate' the rows to copy."""
    k = round(n * BAD_RATE)
    empty = {kind: np.zeros(0, np.int64) for kind in kinds}
    if not bt.malformed or k == 0:
        return empty
    pool = rng.choice(n, size=min(n, 4 * k * len(kinds)), replace=False)
    has_gap = np.array([bool(g) for g in bt.gaps])[state[pool]]
    dst = pool[has_gap][:k]
    rest = pool[~np.isin(pool, dst)]
    picked = {kind: rest[i * k : (i + 1) * k] for i, kind in enumerate(kinds) if kind != "dst"}
    return {**empty, **picked, "dst": dst}


def _orders(w: World, bt: Batch, rng: np.random.Generator, seq0: int) -> tuple[pa.Table, Candidates]:
    """The batch's orders, and the new installs troubles may land on."""
    n, cal = bt.n_orders, bt.cal
    cell = rng.choice(len(w.weight), size=n, p=w.weight)
    state = w.state[cell]
    bad = _pick_bad(rng, n, state, bt, ORDER_KINDS)
    recv = _arrivals(rng, n, bt, state, ORDER_HOURS_BUSINESS, ORDER_HOURS_OFF, ORDER_OFF_DAY, bad["dst"])
    day = recv // DAY
    eff = busday_offset(day + (recv - day * DAY >= CUTOFF), 0, cal)
    interval, slow = w.interval[cell], w.slow_install[cell]
    std_due = busday_offset(eff, interval, cal)
    later = rng.random(n) < 0.05  # the customer asked for a later date
    due_off = np.where(later, interval + rng.integers(1, 11, n), interval + np.where(slow, rng.integers(1, 3, n), 0))
    due = busday_offset(eff, due_off, cal)
    requested = np.where(later, due, np.where(rng.random(n) < 0.35, std_due, -1))
    dispatch = rng.random(n) < w.dispatch_p[cell]
    miss = rng.random(n) < np.where(slow, P_MISS_SLOW, P_MISS)
    late = rng.geometric(0.55, n) + np.where(rng.random(n) < 0.03, rng.integers(5, 25, n), 0)
    u = rng.random(n)
    early = np.where(
        later, 0, (u < np.where(dispatch, 0.15, 0.25)).astype(np.int64) + (u < np.where(dispatch, 0.03, 0.08))
    )
    offset = np.where(miss, due_off + late, np.maximum(1, due_off - early))
    tod = OPEN + rng.integers(0, 10 * HOUR, n) + np.where(rng.random(n) < 0.05, 3 * HOUR, 0)
    completed = busday_offset(eff, offset, cal) * DAY + tod
    cancelled = rng.random(n) < 0.02
    completed = np.where(cancelled | (completed >= bt.horizon), -1, completed)
    customer = rng.random(n) < np.where(slow, 0.1, 0.3)
    miss_reason = np.where(miss & (completed >= 0), np.where(customer, 0, 1), -1)
    channel = np.where(rng.random(n) < 0.85, 0, 1)
    channel = np.where(rng.random(n) < 0.01, -1, channel)
    manual = channel == 1
    # medians 3 and 10 business hours: about 0.5 % of electronic FOCs later than 24 business
    # hours and 2.5 % of manual ones later than 48
    foc_hours = np.exp(np.log(np.where(manual, 10.0, 3.0)) + 0.8 * rng.standard_normal(n))
    foc = add_business_hours(recv, foc_hours, cal)
    foc = np.where(completed >= 0, np.minimum(foc, completed - 60), foc)
    foc = np.where(foc >= bt.horizon, -1, foc)
    order_type = rng.choice(len(ORDER_TYPES), size=n, p=ORDER_TYPE_P)
    trunk = np.isin(w.product[cell], [PRODUCT_CODES.index(t) for t in TRUNKS])
    quantity = np.where(
        trunk, np.minimum(rng.geometric(0.25, n), 24), np.where(rng.random(n) < 0.03, rng.integers(2, 5, n), 1)
    )
    ids = seq0 + 1 + np.arange(n)  # received_at is in time order
    new = order_type == 0
    circuit = np.where(new, NEW_CIRCUIT_BASE + ids, _base_circuits(rng, w, cell))
    circuit = np.where(new & (rng.random(n) < 0.01), -1, circuit)
    test = w.test[cell] | (rng.random(n) < 0.005)
    keep = new & (completed >= 0) & (circuit >= 0) & ~test
    installs = (cell[keep], completed[keep], circuit[keep])

    rows = bad["before"]
    completed[rows] = recv[rows] - rng.integers(HOUR, 72 * HOUR, len(rows))
    cols = {
        "order_id": (partial(_ids, "O"), ids),
        **_keys(w, cell, bad),
        "order_type": (partial(_codes, ORDER_TYPES), order_type),
        "dispatch": (pa.array, dispatch),
        "received_at": (_times, recv),
        "due_date": (_dates, due),
        "completed_at": (_times, completed),
        "quantity": (pa.array, quantity.astype(np.int64)),
        "foc_at": (_times, foc),
        "requested_due_date": (_dates, requested),
        "cancelled": (pa.array, cancelled),
        "miss_reason": (partial(_codes, MISS_REASONS), miss_reason),
        "channel": (partial(_codes, CHANNELS), channel),
        "circuit_id": (_circuits, circuit),
        "test": (pa.array, test),
    }
    return _finish("orders", cols, bad, bt, rng), installs


def _troubles(
    w: World, bt: Batch, rng: np.random.Generator, seq0: int, installs: Candidates | None, parents: Candidates | None
) -> tuple[pa.Table, Candidates]:
    """The batch's troubles, and those later repeats may follow."""
    n = bt.n_troubles
    cell = rng.choice(len(w.weight), size=n, p=w.weight)
    state = w.state[cell]
    bad = _pick_bad(rng, n, state, bt, TROUBLE_KINDS)
    recv = _arrivals(rng, n, bt, state, TROUBLE_HOURS, TROUBLE_HOURS, TROUBLE_OFF_DAY, bad["dst"])
    disposition = rng.choice(len(DISPOSITIONS), size=n, p=DISPOSITION_P)
    network = disposition == 0
    dispatch = rng.random(n) < np.where(network, 0.45, 0.25)
    slow = w.slow_repair[cell]
    median = np.where(dispatch, 9.0, 3.0) * np.where(slow, 2.0, 1.0)
    repair = median * np.exp(0.9 * rng.standard_normal(n))
    no_access = np.where(rng.random(n) < 0.10, np.round(np.exp(np.log(2.0) + 0.8 * rng.standard_normal(n)), 2), 0.0)
    elapsed = np.maximum(60, np.round((repair + no_access) * HOUR)).astype(np.int64)
    cleared = add_elapsed(recv, elapsed, state, bt.zones)
    still_open = cleared >= bt.horizon
    cleared = np.where(still_open, -1, cleared)
    no_access = np.where(still_open, np.nan, no_access)  # known once cleared
    test = w.test[cell] | (rng.random(n) < 0.005)

    circuit = _base_circuits(rng, w, cell)
    repeat = network & (rng.random(n) < np.where(slow, P_REPEAT_SLOW, P_REPEAT))
    rows = np.flatnonzero(~repeat & (rng.random(n) < P_ON_NEW_INSTALL))
    value, found = _pick_recent(rng, installs, cell[rows], recv[rows])
    circuit[rows[found]] = value[found]
    circuit = np.where(~repeat & (rng.random(n) < 0.003), -1, circuit)
    parent = network & ~repeat & ~test & (circuit >= 0)
    mine = (cell[parent], recv[parent], circuit[parent])
    rows = np.flatnonzero(repeat)
    value, found = _pick_recent(rng, _concat([parents, mine]), cell[rows], recv[rows])
    circuit[rows[found]] = value[found]

    rows = bad["negative_no_access"]
    no_access[rows] = -np.round(rng.uniform(0.5, 8, len(rows)), 2)
    rows = bad["before"]
    cleared[rows] = recv[rows] - rng.integers(HOUR, 72 * HOUR, len(rows))
    cols = {
        "ticket_id": (partial(_ids, "T"), seq0 + 1 + np.arange(n)),
        **_keys(w, cell, bad),
        "circuit_id": (_circuits, circuit),
        "dispatch": (pa.array, dispatch),
        "received_at": (_times, recv),
        "cleared_at": (_times, cleared),
        "disposition": (partial(_codes, DISPOSITIONS), disposition),
        "no_access_hours": (_floats, no_access),
        "test": (pa.array, test),
    }
    return _finish("troubles", cols, bad, bt, rng), mine


def _lines(w: World, m: int, i: int, rng: np.random.Generator, malformed: bool) -> pa.Table:
    """Lines in service of month m, the i-th generated; one bad row when malformed."""
    lines = np.round(w.lines * (1 + 0.002 * i)).astype(np.int64)
    carrier, state, product = w.carrier, w.state, w.product
    if malformed:  # the kind rotates with the period
        row = int(rng.integers(0, len(lines)))
        if i % 3 == 2:  # a negative count on the test carrier, whose lines nobody measures
            row = int(rng.choice(np.flatnonzero(w.test)))
            lines[row] = -lines[row]
        else:  # an extra row with an unknown product or a lowercase state
            carrier, state = np.append(carrier, carrier[row]), np.append(state, state[row])
            product, lines = np.append(product, product[row]), np.append(lines, lines[row])
            if i % 3 == 0:
                product[-1] = len(PRODUCT_CODES)
            else:
                state[-1] = len(STATES) + state[row]
    order = rng.permutation(len(lines))
    return pa.table(
        {
            "period": pa.array([f"{m // 12:04d}-{m % 12 + 1:02d}"] * len(lines)),
            "carrier_id": _codes(w.carriers, carrier[order]),
            "state": _codes(STATES + BAD_STATES, state[order]),
            "product": _codes(PRODUCT_CODES + BAD_PRODUCTS, product[order]),
            "lines_in_service": pa.array(lines[order]),
        },
        schema=SCHEMAS["lines"],
    )


# --------------------------------------------------------------------------------- helpers


def _base_circuits(rng: np.random.Generator, w: World, cell: np.ndarray) -> np.ndarray:
    return w.circuit0[cell] + rng.integers(0, w.lines[cell])


def _pick_recent(
    rng: np.random.Generator, cands: Candidates | None, cell: np.ndarray, time: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each query a random candidate circuit of the same cell dated 1 hour to 29 days before.

    Returns the circuits and whether one was found.
    """
    if cands is None or len(cands[0]) == 0:
        return np.zeros(len(cell), np.int64), np.zeros(len(cell), bool)
    span = np.int64(1) << 34
    key = cands[0].astype(np.int64) * span + cands[1]
    order = np.argsort(key, kind="stable")
    key, value = key[order], cands[2][order]
    q = cell.astype(np.int64) * span + time
    lo = np.searchsorted(key, q - WINDOW, "left")
    hi = np.searchsorted(key, q - HOUR, "right")
    pick = np.minimum(lo + (rng.random(len(q)) * (hi - lo)).astype(np.int64), len(key) - 1)
    return value[pick], hi > lo


def _concat(parts: Sequence[Candidates | None]) -> Candidates | None:
    present = [p for p in parts if p is not None]
    if not present:
        return None
    cell, time, value = (np.concatenate(cols) for cols in zip(*present, strict=True))
    return cell, time, value


def _recent_only(cands: Candidates | None, first_use: int) -> Candidates | None:
    """The candidates a query at or after first_use can still reach (within 30 days)."""
    if cands is None:
        return None
    keep = cands[1] >= first_use - 30 * DAY
    return cands[0][keep], cands[1][keep], cands[2][keep]


def _codes(codes: Sequence[str], index: np.ndarray) -> pa.Array:
    """String column from code indices; -1 is null."""
    return pa.array(codes, pa.string()).take(pa.array(index, pa.int32(), mask=index < 0))


def _ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width=9, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _circuits(numbers: np.ndarray) -> pa.Array:
    text = pc.cast(pa.array(numbers, mask=numbers < 0), pa.string())
    return pc.binary_join_element_wise("C", text, "")


def _times(secs: np.ndarray) -> pa.Array:
    return pa.array(secs, TS, mask=secs < 0)


def _dates(days: np.ndarray) -> pa.Array:
    return pa.array(days.astype(np.int32), DATE, mask=days < 0)


def _floats(x: np.ndarray) -> pa.Array:
    return pa.array(x, pa.float64(), mask=np.isnan(x))


Column = tuple[Callable[[np.ndarray], pa.Array], np.ndarray]


def _keys(w: World, cell: np.ndarray, bad: dict[str, np.ndarray]) -> dict[str, Column]:
    """carrier_id, state and product, with the unknown products and bad states injected."""
    state, product = w.state[cell], w.product[cell]
    rows = bad["product"]
    product[rows] = len(PRODUCT_CODES) + np.arange(len(rows)) % len(BAD_PRODUCTS)
    rows = bad["state"]  # alternately lowercase and three letters
    state[rows] += len(STATES) + np.where(np.arange(len(rows)) % 2, len(STATES), 0)
    return {
        "carrier_id": (partial(_codes, w.carriers), w.carrier[cell]),
        "state": (partial(_codes, STATES + BAD_STATES), state),
        "product": (partial(_codes, PRODUCT_CODES + BAD_PRODUCTS), product),
    }


def _finish(
    kind: str, cols: dict[str, Column], bad: dict[str, np.ndarray], bt: Batch, rng: np.random.Generator
) -> pa.Table:
    """The batch's table: rows shuffled (duplicates added) and, in CSV, unparseable text.

    Shuffling the numpy columns before they become strings keeps it cheap.
    """
    n = len(next(iter(cols.values()))[1])
    order = rng.permutation(np.concatenate([np.arange(n), bad["duplicate"]]))
    table = pa.table({name: make(values[order]) for name, (make, values) in cols.items()}, schema=SCHEMAS[kind])
    if bt.text_ok:
        text = pc.cast(table["received_at"], pa.string())
        mask = np.isin(order, bad["text"])
        if mask.any():
            junk = [BAD_TEXT[j % len(BAD_TEXT)].format(year=bt.m // 12) for j in range(mask.sum())]
            text = pc.replace_with_mask(text, pa.array(mask), pa.array(junk, pa.string()))
        table = table.set_column(table.schema.get_field_index("received_at"), "received_at", text)
    return table


class _Sink:
    """One record type's output: a file, or a folder of part files, appended batch by batch."""

    def __init__(self, out: Path, kind: str, fmt: str, parts: int, meta: dict[str, Any]):
        if parts == 1:
            paths = [out / f"{kind}.{fmt}"]
        else:
            folder = out / kind
            folder.mkdir(exist_ok=True)
            for stale in folder.glob(f"part-*.{fmt}"):
                stale.unlink()
            paths = [folder / f"part-{k:05d}.{fmt}" for k in range(parts)]
        schema = SCHEMAS[kind]
        self.writers: list[Any] = []
        self.files: list[Any] = []
        if fmt == "parquet":
            schema = schema.with_metadata({"carrier_sla.synthetic.generate": json.dumps(meta)})
            self.writers = [pq.ParquetWriter(p, schema) for p in paths]
        else:
            if kind != "lines":  # received_at is text in CSV so it can carry junk
                i = schema.get_field_index("received_at")
                schema = schema.set(i, pa.field("received_at", pa.string()))
            options = pcsv.WriteOptions(include_header=False, quoting_style="none")
            for p in paths:
                f = open(p, "wb")  # noqa: SIM115 - closed in close()
                f.write((",".join(schema.names) + "\n").encode())
                self.files.append(f)
                self.writers.append(pcsv.CSVWriter(f, schema, write_options=options))
        self.schema = schema

    def write(self, table: pa.Table) -> int:
        n = table.num_rows
        bounds = np.linspace(0, n, len(self.writers) + 1).round().astype(int)
        for writer, a, b in zip(self.writers, bounds[:-1], bounds[1:], strict=True):
            if b > a:
                writer.write_table(table.slice(a, b - a).cast(self.schema))
        return n

    def close(self) -> None:
        for writer in self.writers:
            writer.close()
        for f in self.files:
            f.close()

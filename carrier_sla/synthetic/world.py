"""The generator's synthetic world: states and their zones, carriers and products with their
volume shares and service quality, the business-day calendar, seeds, batches of days, and time
arithmetic in local wall-clock time (see generate for the data it shapes).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import holidays
import numpy as np
import pandas as pd

from carrier_sla.errors import UsageError

DAY = 86_400
HOUR = 3_600
OPEN, CLOSE, CUTOFF = 8 * HOUR, 17 * HOUR, 15 * HOUR
WEEKMASK = "1111100"

STATES = ("CO", "WA", "AZ", "UT", "OR")
STATE_ZONES = ("America/Denver", "America/Los_Angeles", "America/Phoenix", "America/Denver", "America/Los_Angeles")
STATE_SHARES = (0.30, 0.25, 0.20, 0.15, 0.10)

RETAIL_ID = "ILEC"
TEST_ID = "TESTCLEC"
CLECS, CLEC_ZIPF = 12, 1.1  # the default population: CLEC01..CLEC12, sizes Zipf-like with this exponent
RETAIL_SHARE, TEST_SHARE = 0.677, 0.003


def clec_ids(clecs: int) -> tuple[str, ...]:
    """CLEC01, CLEC02, ... (CLEC001 ... with 100 or more CLECs)."""
    width = max(2, len(str(clecs)))
    return tuple(f"CLEC{k:0{width}d}" for k in range(1, clecs + 1))


def carriers(clecs: int) -> tuple[str, ...]:
    """Every carrier of a world of `clecs` CLECs, in the order World.carrier indexes: retail, CLECs, test."""
    return (RETAIL_ID, *clec_ids(clecs), TEST_ID)


CARRIERS = carriers(CLECS)

# code: (standard interval in business days, share of orders needing a dispatch)
PRODUCTS = {
    "pots": (3, 0.25),
    "ds1": (7, 0.60),
    "fgd_trunk": (15, 0.70),
    "resale_pots": (3, 0.25),
    "ubl_2w": (5, 0.40),
    "ubl_ds1": (7, 0.60),
    "access_ds1": (7, 0.60),
    "lis_trunk": (15, 0.70),
}
PRODUCT_CODES = tuple(PRODUCTS)
TRUNKS = ("fgd_trunk", "lis_trunk")
RETAIL_MIX = {"pots": 0.85, "ds1": 0.12, "fgd_trunk": 0.03}
CLEC_MIX = {"resale_pots": 0.35, "ubl_2w": 0.40, "ubl_ds1": 0.09, "access_ds1": 0.11, "lis_trunk": 0.05}

SLOW_INSTALL = (3, "CO", "resale_pots")  # the third CLEC (CLEC03)
SLOW_REPAIR = (5, "UT")  # the fifth CLEC (CLEC05)

ORDER_TYPES = ("new", "change", "transfer", "disconnect", "record")
ORDER_TYPE_P = (0.45, 0.30, 0.10, 0.10, 0.05)
CHANNELS = ("electronic", "manual")
MISS_REASONS = ("customer", "company")
DISPOSITIONS = ("network", "cpe", "customer", "no_trouble_found", "information")
DISPOSITION_P = (0.75, 0.08, 0.05, 0.09, 0.03)

ORDER_SHARE = 0.5  # of `scale`; the rest are troubles
NETWORK_RATE = 0.015  # network troubles per line per month
P_MISS, P_MISS_SLOW = 0.07, 0.25
P_REPEAT, P_REPEAT_SLOW, P_ON_NEW_INSTALL = 0.09, 0.25, 0.02
ORDER_OFF_DAY, TROUBLE_OFF_DAY = 0.08, 0.6  # arrival weight of a weekend or holiday
BATCH_ROWS = 1_000_000  # rows of a type generated at once: bounds memory
WINDOW = 29 * DAY  # parents of repeats and install troubles: safely inside 30 days
NEW_CIRCUIT_BASE = 2_000_000_000
BASE_CIRCUIT_BASE = 1_000_000_000

# Relative arrival weight per local hour 0..23.
ORDER_HOURS_BUSINESS = (0, 0, 0, 0, 0, 0, 0.3, 1, 6, 10, 11, 11, 9, 10, 10, 3, 2, 1, 0.7, 0.5, 0.3, 0.2, 0.1, 0.05)
ORDER_HOURS_OFF = (0, 0, 0, 0, 0, 0, 0, 0.5, 1, 2, 2, 2, 2, 2, 2, 2, 1.5, 1, 1, 1, 0.5, 0.3, 0.2, 0.1)
TROUBLE_HOURS = (
    0.3,
    0.3,
    0.3,
    0.3,
    0.3,
    0.3,
    0.5,
    1,
    2.5,
    2.5,
    2.5,
    2.5,
    2.5,
    2.5,
    2.5,
    2.5,
    2.5,
    2.5,
    1.2,
    1.2,
    1.2,
    1.2,
    0.5,
    0.5,
)


# ---------------------------------------------------------------- the world and the calendar


@dataclass(frozen=True)
class World:
    """Cells (carrier, state, product) with their volume share, lines and service quality."""

    carriers: tuple[str, ...]  # the codes carrier indexes
    carrier: np.ndarray
    state: np.ndarray
    product: np.ndarray
    weight: np.ndarray  # share of a month's orders (and troubles)
    lines: np.ndarray  # lines in service in the first period
    circuit0: np.ndarray  # first installed-base circuit number of the cell
    interval: np.ndarray
    dispatch_p: np.ndarray
    slow_install: np.ndarray
    slow_repair: np.ndarray
    test: np.ndarray
    n_orders: int  # per month
    n_troubles: int


def make_world(seed: int, scale: int, clecs: int = CLECS, zipf: float = CLEC_ZIPF) -> World:
    """The world of `clecs` CLECs whose shares of the CLEC volume fall as rank ** -zipf."""
    rng = rng_for(seed, 0, 0, 0)
    names = carriers(clecs)
    rank_share = np.arange(1, clecs + 1, dtype=float) ** -zipf
    size = np.concatenate(
        [[RETAIL_SHARE], (1 - RETAIL_SHARE - TEST_SHARE) * rank_share / rank_share.sum(), [TEST_SHARE]]
    )
    base = np.array(list(CLEC_MIX.values()))
    rows = []
    for c, carrier in enumerate(names):
        if carrier == RETAIL_ID:
            mix = dict(RETAIL_MIX)
        else:  # each CLEC its own product mix around the typical one
            mix = dict(zip(CLEC_MIX, rng.dirichlet(base * 40), strict=True))
        for s, state in enumerate(STATES):
            for code, share in mix.items():
                rows.append(
                    (
                        c,
                        s,
                        PRODUCT_CODES.index(code),
                        size[c] * STATE_SHARES[s] * share,
                        (c, state, code) == SLOW_INSTALL,
                        (c, state) == SLOW_REPAIR,
                        carrier == TEST_ID,
                    )
                )
    carrier_ix, state_ix, p, w, slow_i, slow_r, test = (np.array(col) for col in zip(*rows, strict=True))
    w = w / w.sum()
    n_orders = round(scale * ORDER_SHARE)
    n_troubles = scale - n_orders
    lines = np.maximum(10, np.round(w * n_troubles * DISPOSITION_P[0] / NETWORK_RATE))
    lines = lines.astype(np.int64)
    return World(
        carriers=names,
        carrier=carrier_ix,
        state=state_ix,
        product=p,
        weight=w,
        lines=lines,
        circuit0=BASE_CIRCUIT_BASE + np.concatenate([[0], np.cumsum(lines)[:-1]]),
        interval=np.array([PRODUCTS[PRODUCT_CODES[k]][0] for k in p]),
        dispatch_p=np.array([PRODUCTS[PRODUCT_CODES[k]][1] for k in p]),
        slow_install=slow_i,
        slow_repair=slow_r,
        test=test,
        n_orders=n_orders,
        n_troubles=n_troubles,
    )


def months_of(period: str, periods: int) -> list[int]:
    """Month numbers (year * 12 + month - 1) of the `periods` months ending with `period`."""
    if not isinstance(period, str) or not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", period):
        raise UsageError(f"period must be YYYY-MM, not {period!r}")
    if periods < 1:
        raise UsageError(f"periods must be at least 1, not {periods}")
    last = int(period[:4]) * 12 + int(period[5:]) - 1
    return list(range(last - periods + 1, last + 1))


def month_start(m: int) -> int:
    """Local midnight of the first day of month number m, in seconds since 1970 (naive)."""
    return int(np.datetime64(f"{m // 12:04d}-{m % 12 + 1:02d}-01", "s").astype(np.int64))


def business_calendar(months: Sequence[int]) -> np.busdaycalendar:
    years = range(months[0] // 12 - 1, months[-1] // 12 + 3)
    days = sorted(holidays.US(years=years))
    return np.busdaycalendar(weekmask=WEEKMASK, holidays=np.array(days, dtype="M8[D]"))


def rng_for(seed: int, purpose: int, month: int, batch: int) -> np.random.Generator:
    return np.random.default_rng([seed, purpose, month, batch])


class Zone:
    """UTC offsets of one IANA zone over a span, from an hourly table (US zones change on hours)."""

    def __init__(self, zone: str, start: int, end: int):
        utc = pd.date_range(pd.Timestamp(start - DAY, unit="s"), pd.Timestamp(end, unit="s"), freq="h", tz="UTC")
        local = utc.tz_convert(zone).tz_localize(None)
        self.hours = utc.tz_localize(None).as_unit("s").asi8
        self.offset = local.as_unit("s").asi8 - self.hours
        jump = np.flatnonzero(np.diff(self.offset) > 0) + 1
        # local wall-clock [start, end) that does not exist (spring forward)
        self.gaps = [(int(self.hours[i] + self.offset[i - 1]), int(self.hours[i] + self.offset[i])) for i in jump]

    def to_local(self, utc: np.ndarray) -> np.ndarray:
        return utc + self.offset[np.searchsorted(self.hours, utc, "right") - 1]

    def to_utc(self, local: np.ndarray) -> np.ndarray:
        """Ambiguous times read as the first (daylight) one, times in a gap as shifted forward."""
        first = local - self.offset.max()
        return np.where(self.to_local(first) == local, first, local - self.offset.min())

    def shift_gaps(self, local: np.ndarray) -> np.ndarray:
        for start, end in self.gaps:
            local = np.where((local >= start) & (local < end), local + (end - start), local)
        return local


@dataclass(frozen=True)
class Batch:
    """A block of consecutive days of one month, generated and written at once."""

    m: int
    index: int
    start: int
    end: int
    days: np.ndarray
    busday: np.ndarray
    gaps: list[list[tuple[int, int]]]  # per state, the DST gaps inside the batch
    n_orders: int
    n_troubles: int
    cal: np.busdaycalendar
    zones: list[Zone]
    horizon: int  # end of the last month: later events have not happened
    malformed: bool
    text_ok: bool


def batches(
    w: World, m: int, cal: np.busdaycalendar, zones: list[Zone], horizon: int, malformed: bool, fmt: str
) -> list[Batch]:
    """The month in blocks of days holding at most about BATCH_ROWS rows of a type each."""
    start, end = month_start(m), month_start(m + 1)
    days = np.arange(start // DAY, end // DAY)
    busday = np.is_busday(_d(days), busdaycal=cal)
    n = -(-max(w.n_orders, w.n_troubles) // BATCH_ROWS)
    blocks = np.array_split(np.arange(len(days)), min(len(days), n))
    order_w = [np.where(busday[b], 1.0, ORDER_OFF_DAY).sum() for b in blocks]
    trouble_w = [np.where(busday[b], 1.0, TROUBLE_OFF_DAY).sum() for b in blocks]
    n_orders, n_troubles = _split(w.n_orders, order_w), _split(w.n_troubles, trouble_w)
    batches = []
    for i, b in enumerate(blocks):
        b0, b1 = days[b[0]] * DAY, (days[b[-1]] + 1) * DAY
        gaps = [[g for g in z.gaps if b0 <= g[0] < b1] for z in zones]
        batches.append(
            Batch(
                m,
                i,
                int(b0),
                int(b1),
                days[b],
                busday[b],
                gaps,
                int(n_orders[i]),
                int(n_troubles[i]),
                cal,
                zones,
                horizon,
                malformed,
                fmt == "csv",
            )
        )
    return batches


def _split(n: int, weights: Sequence[float]) -> np.ndarray:
    """n split in proportion to weights, by largest remainder."""
    exact = n * np.asarray(weights) / np.sum(weights)
    parts = np.floor(exact).astype(np.int64)
    parts[np.argsort(parts - exact, kind="stable")[: n - parts.sum()]] += 1
    return parts


def _d(days: np.ndarray) -> np.ndarray:
    return days.astype("M8[D]")


def busday_offset(days: np.ndarray, offsets: Any, cal: np.busdaycalendar) -> np.ndarray:
    return np.busday_offset(_d(days), offsets, roll="forward", busdaycal=cal).astype(np.int64)


def add_business_hours(start: np.ndarray, hours: np.ndarray, cal: np.busdaycalendar) -> np.ndarray:
    """Local time `hours` business hours (08:00-17:00 on business days) after `start`.

    Times are seconds since 1970 in local wall-clock; a start outside business hours counts
    from the next opening.
    """
    day = start // DAY
    tod = start - day * DAY
    nday = busday_offset(day + (tod >= CLOSE), 0, cal)
    ntod = np.where(nday != day, OPEN, np.clip(tod, OPEN, CLOSE))
    elapsed = ntod - OPEN + np.round(hours * HOUR).astype(np.int64)
    length = CLOSE - OPEN
    k = elapsed // length
    rest = elapsed - k * length
    end_of_day = (rest == 0) & (k > 0)  # 17:00 rather than the next 08:00
    k, rest = np.where(end_of_day, k - 1, k), np.where(end_of_day, length, rest)
    return busday_offset(nday, k, cal) * DAY + OPEN + rest


def add_elapsed(local: np.ndarray, seconds: np.ndarray, state: np.ndarray, zones: Sequence[Zone]) -> np.ndarray:
    """Local wall-clock time `seconds` of real time after `local` in each row's state zone.

    A result inside the repeated fall-back hour can read earlier than the start; it then
    becomes start + seconds in wall-clock terms, so no clear precedes its receipt.
    """
    result = np.empty_like(local)
    for s, zone in enumerate(zones):
        sel = state == s
        result[sel] = zone.to_local(zone.to_utc(local[sel]) + seconds[sel])
    return np.where(result <= local, local + seconds, result)

"""Synthetic corporate actions: each stock's dividends and splits, and what they do to prices.

A stock's latent path (:mod:`etl.synthetic.prices`) is its *backward-adjusted* price: smooth
across ex-dates. The unadjusted price a vendor serves is that path divided by the cumulative
backward factor in force, so on an ex-date the raw price drops by the event's factor and an
adjusted series computed from the factors is continuous again, which is what the emulators'
factor endpoints (Infoway forward factors, AmazingData backward factors) let a reader check.

Events are a pure function of (seed, symbol, year): at most one cash dividend a year (an
ex-date in June or July) and, rarely, a bonus-share split (April or May), each on a session of
the stock's market. Factors have four decimals, so a vendor's decimal string carries them
exactly. Only stocks have actions; everything else has a factor of 1.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from etl.calendars.markets import market_spec
from etl.calendars.sessions import sessions
from etl.errors import BadInputError
from etl.synthetic.hashing import key_of, mix64
from etl.synthetic.universe import Instrument

__all__ = ["FIRST_ACTION_YEAR", "Actions", "actions", "backward_at"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

# No synthetic stock pays before this year: keeps the cumulative factors (and so how far raw
# prices sit below the path) moderate over the decades the emulators serve.
FIRST_ACTION_YEAR: Final = 2010
LAST_ACTION_YEAR: Final = 2199
_DIVIDEND_RATE: Final = 0.8  # share of years with a cash dividend
_SPLIT_RATE: Final = 0.03  # share of years with a bonus-share split
_SPLIT_FACTORS: Final = (0.5, 0.625, 0.8)  # 10 for 10, 10 for 6, 10 for 2.5 bonus shares
_MARKETS: Final = frozenset({"SH", "SZ", "BJ", "HK", "US"})
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# Where the raw price equals the latent path: in the middle of the years the emulators serve,
# so raw prices stay near the market's typical levels, above them before and below after.
REFERENCE_DAY: Final = dt.date(2020, 1, 1)


@dataclass(frozen=True)
class Actions:
    """A stock's ex-dates (ascending), each event's forward factor (prices before the ex-date
    times it are comparable with prices on and after it) and the cumulative backward factor in
    force from that ex-date on (1.0 before the first)."""

    ex_dates: tuple[dt.date, ...]
    forward: tuple[float, ...]
    backward: tuple[float, ...]
    ex_us: I64  # each ex-date's local midnight, UTC microseconds
    reference: float = 1.0  # the backward factor in force on REFERENCE_DAY

    def between(self, start: dt.date, end: dt.date) -> list[int]:
        """Indices of the ex-dates in ``[start, end]``."""
        return [i for i, d in enumerate(self.ex_dates) if start <= d <= end]


_NONE: Final = Actions((), (), (), np.zeros(0, dtype=np.int64))


def _unit(seed: int, symbol: str, *parts: int | str) -> float:
    return (mix64(key_of(seed, symbol, "action", *parts)) >> 11) / float(1 << 53)


@lru_cache(maxsize=1024)
def _session_days(market: str, year: int, month: int) -> tuple[dt.date, ...]:
    """The sessions of one month; none where the market's calendar ends before it."""
    first = dt.date(year, month, 1)
    last = dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1)
    try:
        days = sessions(market, first, last).days
    except BadInputError:  # beyond the calendar's known sessions: no bars, no events
        return ()
    return tuple(dt.date.fromisoformat(str(d)) for d in np.asarray(days, "datetime64[D]"))


def _event_day(
    seed: int, symbol: str, market: str, year: int, months: tuple[int, int]
) -> dt.date | None:
    month = months[0] if _unit(seed, symbol, year, "month", months[0]) < 0.5 else months[1]
    days = _session_days(market, year, month)
    if not days:
        return None
    return days[int(_unit(seed, symbol, year, "day", months[0]) * len(days))]


@lru_cache(maxsize=4096)
def actions(inst: Instrument, seed: int = 0) -> Actions:
    """Every corporate action of ``inst`` over its listed life (none for non-stocks)."""
    if inst.type != "stock" or inst.market not in _MARKETS:
        return _NONE
    first = max(FIRST_ACTION_YEAR, (inst.list_date.year + 1) if inst.list_date else 0)
    last = min(LAST_ACTION_YEAR, inst.delist_date.year if inst.delist_date else LAST_ACTION_YEAR)
    events: list[tuple[dt.date, float]] = []
    sym = inst.symbol
    for year in range(first, last + 1):
        if not _session_days(inst.market, year, 12):
            break  # the market's calendar ends this year: no bars, no events after it
        if _unit(seed, sym, year, "split") < _SPLIT_RATE:
            pick = _SPLIT_FACTORS[int(_unit(seed, sym, year, "split-kind") * len(_SPLIT_FACTORS))]
            day = _event_day(seed, sym, inst.market, year, (4, 5))
            if day is not None:
                events.append((day, pick))
        if _unit(seed, sym, year, "dividend") < _DIVIDEND_RATE:
            yield_ = 0.003 + 0.037 * _unit(seed, sym, year, "yield")
            day = _event_day(seed, sym, inst.market, year, (6, 7))
            if day is not None:
                events.append((day, round(1.0 - yield_, 4)))
    events.sort()
    if inst.delist_date is not None:
        events = [e for e in events if e[0] <= inst.delist_date]
    zone = ZoneInfo(market_spec(inst.market).tz)
    backward, cum = [], 1.0
    for _, factor in events:
        cum /= factor
        backward.append(cum)
    ex_us = np.array(
        [
            (dt.datetime.combine(d, dt.time(), zone) - _EPOCH) // dt.timedelta(microseconds=1)
            for d, _ in events
        ],
        dtype=np.int64,
    )
    before = [b for (d, _), b in zip(events, backward, strict=True) if d <= REFERENCE_DAY]
    return Actions(
        tuple(d for d, _ in events),
        tuple(f for _, f in events),
        tuple(backward),
        ex_us,
        before[-1] if before else 1.0,
    )


def backward_at(acts: Actions, t_us: I64) -> F64:
    """The cumulative backward factor in force at each UTC instant of ``t_us``."""
    if not acts.ex_dates:
        return np.ones(np.shape(t_us), dtype=np.float64)
    table = np.concatenate([[1.0], np.asarray(acts.backward, dtype=np.float64)])
    idx = np.searchsorted(acts.ex_us, np.asarray(t_us, dtype=np.int64), side="right")
    out: F64 = table[idx]
    return out


def raw_scale(acts: Actions, t_us: I64) -> F64:
    """What the latent path is multiplied by to give the unadjusted price at ``t_us``: the
    reference factor over the factor in force (1 on REFERENCE_DAY; a drop on every ex-date)."""
    out: F64 = acts.reference / backward_at(acts, t_us)
    return out

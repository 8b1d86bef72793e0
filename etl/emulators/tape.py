"""The trades behind each synthetic 1m bar: what the emulators' WebSockets push.

Every 1m bar the REST endpoints serve is split into a handful of trades that rebuild it
exactly: the first trade is at the open, the last at the close, two inner ones at the high and
the low, the rest in between; volumes and turnovers are whole units (lots, 0.0001 of a coin,
cents) that add up to the bar's. A recorder that aggregates the trades of a minute therefore
gets the REST bar back, which is what the recorder's tests check. Pure functions of (seed,
symbol, minute), cached per trading day.

Trades of one minute fall on distinct seconds (mdapi and StockTV stamp quotes in seconds, and
the ``quotes`` key is (symbol, ts)); with Infoway's milliseconds, a trade is sometimes printed
at the very instant of the previous one, as exchanges print a split order, so that the
recorder's ``seq`` is exercised.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import numpy as np

from etl.calendars import market_spec
from etl.emulators.payload import Bar, bars_of
from etl.synthetic import calendar_market, instrument_for_any, klines_for_any
from etl.synthetic.hashing import key_of, uniform
from etl.synthetic.prices import profile

__all__ = ["DayTape", "Trade", "day_tape", "session_day", "trades_between"]

_US: Final = 1_000_000
_MINUTE_US: Final = 60 * _US
_FAR: Final = dt.timedelta(days=3)
_VOLUME_UNIT: Final = 0.0001  # fractional volumes (crypto) are whole ten-thousandths


@dataclass(frozen=True)
class Trade:
    """One trade: ``t_ms`` its instant (epoch ms), ``second`` the distinct second it is
    quoted at (mdapi, StockTV), and the day's running totals after it."""

    symbol: str
    t_ms: int
    second: int  # epoch seconds, distinct within a symbol
    bar_us: int  # the 1m bar it belongs to (open instant, microseconds)
    price: float
    volume: float | None
    amount: float | None
    side: int  # 0 none, 1 buy, 2 sell (Infoway's td)
    day_high: float
    day_low: float
    day_open: float
    cum_volume: float | None
    cum_amount: float | None
    bar: Bar  # the REST bar this trade is part of
    decimals: int


@dataclass(frozen=True)
class DayTape:
    """Every trade of one symbol on one exchange-local day, in time order."""

    symbol: str
    day: dt.date
    trades: tuple[Trade, ...]
    t_ms: np.ndarray  # int64, the trades' instants, for bisection


def session_day(symbol: str, at: dt.datetime, seed: int) -> dt.date:
    """The exchange-local date of ``at`` for ``symbol``'s calendar."""
    market = calendar_market(instrument_for_any(symbol, seed=seed))
    return at.astimezone(market_spec(market).zone).date()


def _split(total_units: int, weights: Sequence[float]) -> list[int]:
    """``total_units`` in whole units, shared out by ``weights`` (the last takes the rest)."""
    share = sum(weights)
    parts = [int(total_units * w / share) for w in weights[:-1]]
    return [*parts, total_units - sum(parts)]


@lru_cache(maxsize=512)
def day_tape(symbol: str, day: dt.date, seed: int) -> DayTape:
    """The trades of ``symbol`` on ``day`` (its exchange-local date)."""
    inst = instrument_for_any(symbol, seed=seed)
    prof = profile(inst, seed)
    later = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC) + _FAR
    bars = bars_of(klines_for_any(symbol, "1m", day, day, later, seed=seed))
    lot = prof.lot if prof.lot > 0 else _VOLUME_UNIT
    trades: list[Trade] = []
    high = low = day_open = math.nan
    cum_v = 0.0 if bars and bars[0].volume is not None else None
    cum_a = 0.0 if bars and bars[0].amount is not None else None
    for bar in bars:
        key = key_of(seed, symbol, "tape", bar.ts_us)
        u = uniform(key, np.arange(64, dtype=np.int64))
        n = 4 + int(u[0] * 6)  # 4..9 trades
        seconds = sorted(int(s) for s in np.argsort(u[1:61])[:n])  # distinct, ascending
        hi_at, lo_at = 1 + int(u[61] * (n - 2)), 1 + int(u[62] * (n - 2))
        if lo_at == hi_at:
            lo_at = 1 + (hi_at % (n - 2))
        prices = []
        for i in range(n):
            if i == 0:
                p = bar.open
            elif i == n - 1:
                p = bar.close
            elif i == hi_at:
                p = bar.high
            elif i == lo_at:
                p = bar.low
            else:
                p = round(bar.low + (bar.high - bar.low) * float(u[1 + i]), prof.decimals)
            prices.append(p)
        weights = [0.5 + float(u[i + 2]) for i in range(n)]
        vols = amounts = None
        if bar.volume is not None:
            vols = [k * lot for k in _split(round(bar.volume / lot), weights)]
            vols = [round(v, 4) for v in vols]
        if bar.amount is not None:
            amounts = [c / 100 for c in _split(round(bar.amount * 100), weights)]
        millis = [int(u[63 - (i % 3)] * 1000 + 137 * i) % 1000 for i in range(n)]
        previous_ms = None
        for i in range(n):
            second = bar.ts_us // _US + seconds[i]
            t_ms = second * 1000 + millis[i]
            # A split print: the same instant as the previous trade (Infoway's ms only).
            if previous_ms is not None and float(u[(i * 7) % 60]) < 0.2 and i < n - 1:
                t_ms = previous_ms
            previous_ms = t_ms
            p = prices[i]
            day_open = p if math.isnan(day_open) else day_open
            high = p if math.isnan(high) else max(high, p)
            low = p if math.isnan(low) else min(low, p)
            v = None if vols is None else vols[i]
            a = None if amounts is None else amounts[i]
            if cum_v is not None and v is not None:
                cum_v = round(cum_v + v, 4)
            if cum_a is not None and a is not None:
                cum_a = round(cum_a + a, 2)
            side = int(u[(i * 11 + 5) % 60] * 3)
            trades.append(
                Trade(
                    symbol,
                    t_ms,
                    second,
                    bar.ts_us,
                    p,
                    v,
                    a,
                    side,
                    high,
                    low,
                    day_open,
                    cum_v,
                    cum_a,
                    bar,
                    prof.decimals,
                )
            )
    stamps = np.array([t.t_ms for t in trades], dtype=np.int64)
    return DayTape(symbol, day, tuple(trades), stamps)


def trades_between(symbol: str, start_ms: int, end_ms: int, seed: int) -> list[Trade]:
    """The trades of ``symbol`` with ``start_ms < t_ms <= end_ms``, in time order (the
    half-open interval a pusher advances by)."""
    if end_ms <= start_ms:
        return []
    first = dt.datetime.fromtimestamp(start_ms / 1000, dt.UTC)
    last = dt.datetime.fromtimestamp(end_ms / 1000, dt.UTC)
    day = session_day(symbol, first, seed)
    final = session_day(symbol, last, seed)
    out: list[Trade] = []
    while day <= final:
        tape = day_tape(symbol, day, seed)
        lo = int(np.searchsorted(tape.t_ms, start_ms, side="right"))
        hi = int(np.searchsorted(tape.t_ms, end_ms, side="right"))
        out.extend(tape.trades[lo:hi])
        day += dt.timedelta(days=1)
    return out

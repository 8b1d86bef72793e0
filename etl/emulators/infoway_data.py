"""Infoway's answers as data: symbol lists, kline pages, trading days and plans, from
etl.synthetic. Pure functions of (now, seed, parameters), kept apart from the HTTP side in
infoway.py.

Wire types follow docs/vendors/infoway.md to the letter: every kline value a string, ``t`` epoch
seconds of the bar open, prices with at least three decimals (``"98.150"``), ``respList``
newest first with the still-forming bar at its head while a session runs.

Conventions of this emulator where the spec leaves a detail open:

- the products only Infoway has (``<CODE>.INFOWAY``) are the literal list :data:`PRODUCTS`,
  trading like FX; forex has no volume here, so ``v`` is ``"0"`` and ``vw`` ``"0.000"``;
- a forming bar opens at its final bar's open, closes at the current price, has its high
  and low from those two, and half the final volume;
- data begins in 2005 (the calendars' first year); names the synthetic market lacks are
  empty strings.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from etl.calendars import market_spec, sessions
from etl.emulators.payload import Bar, bars_of
from etl.errors import BadInputError
from etl.synthetic import (
    Bars,
    calendar_market,
    instrument_for_any,
    instruments,
    klines_for_any,
    spot_price,
    universe,
)
from etl.synthetic.actions import actions

__all__ = [
    "FACTOR_MARKETS",
    "FREQS",
    "PLANS",
    "PRODUCTS",
    "SYMBOL_TYPES",
    "PlanSpec",
    "adjustment_factors",
    "encode_rows",
    "history_start",
    "known_codes",
    "package_info",
    "page",
    "symbols_of",
    "trading_days",
]

# klineType -> canonical frequency; 6 (2h), 7 (4h), 11 and 12 are not served here.
FREQS: Final = {1: "1m", 2: "5m", 3: "15m", 4: "30m", 5: "1h", 8: "1d", 9: "1w", 10: "1M"}
SYMBOL_TYPES: Final = (
    "STOCK_CN", "STOCK_HK", "STOCK_US", "CRYPTO", "FOREX", "METAL", "ENERGY", "FUTURES",
    "INDICES",
)  # fmt: skip
# Products only Infoway has, by symbols ``type``: (code, name_cn, name_en).
PRODUCTS: Final = {
    "METAL": (("XAUUSD", "现货黄金", "Spot Gold"), ("XAGUSD", "现货白银", "Spot Silver")),
    "ENERGY": (("USOIL", "WTI原油", "WTI Crude Oil"), ("UKOIL", "布伦特原油", "Brent Crude Oil")),
    "FUTURES": (("GC", "COMEX黄金期货", "COMEX Gold Futures"),),
    "INDICES": (("HSI", "恒生指数", "Hang Seng Index"), ("SPX", "标普500指数", "S&P 500")),
}
_PATH_TYPES: Final = {
    "stock": ("STOCK_CN", "STOCK_HK", "STOCK_US"),
    "crypto": ("CRYPTO",),
    "common": ("FOREX", "METAL", "ENERGY", "FUTURES", "INDICES"),
}
_FIRST_DAY: Final = dt.date(2005, 1, 1)
_MINUTES: Final = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60}
# Trading minutes of a regular session day per calendar market (CN 4 h, HK 5.5 h, US 6.5 h).
_SESSION_MINUTES: Final = {"SH": 240, "SZ": 240, "HK": 330, "US": 390, "CC": 1440, "FX": 1440}
_US: Final = 1_000_000


@dataclass(frozen=True)
class PlanSpec:
    """One Infoway plan: request limits per key and what ``/package/info`` reports."""

    name: str
    per_second: int
    per_minute: int
    years: int  # maxYearHisData
    ws_connections: int
    ws_codes: int


PLANS: Final = {
    p.name.lower(): p
    for p in (
        PlanSpec("Free", 1, 60, 1, 1, 10),
        PlanSpec("Basic", 2, 120, 2, 1, 100),
        PlanSpec("Premium", 10, 600, 5, 3, 500),
        PlanSpec("Pro", 20, 1200, 10, 5, 1000),
    )
}


def history_start(now: dt.datetime, years: int) -> dt.datetime:
    """The oldest instant of minute history at ``now``: the same wall time ``years``
    calendar years before (29 February → 28th), as the adapter reads ``maxYearHisData``."""
    try:
        return now.replace(year=now.year - years)
    except ValueError:
        return now.replace(year=now.year - years, day=28)


def package_info(plan: PlanSpec, now: dt.datetime) -> dict[str, Any]:
    expires = now + dt.timedelta(days=365)
    return {
        "packageName": plan.name,
        "expireTime": int(expires.timestamp() * 1000),
        "apiNumPerSec": plan.per_second,
        "maxWsConNum": plan.ws_connections,
        "maxNum": plan.ws_codes,
        "maxYearHisData": plan.years,
        "allWsNum": plan.ws_connections * plan.ws_codes,
    }


# -- symbols ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Listing:
    code: str  # the vendor's code
    symbol: str  # canonical
    name: str
    english: bool  # the name is English (US, crypto, forex)
    name_cn: str = ""
    index: bool = False


@lru_cache(maxsize=16)
def _listings(seed: int, today: dt.date) -> dict[str, tuple[_Listing, ...]]:
    """Every symbols ``type``'s list on ``today`` (delisted codes are gone)."""
    now = dt.datetime.combine(today, dt.time(12), tzinfo=dt.UTC)
    out: dict[str, list[_Listing]] = {kind: [] for kind in SYMBOL_TYPES}
    for inst in instruments(now, seed=seed):
        if inst.delist_date is not None and inst.delist_date <= today:
            continue
        code, _, market = inst.symbol.rpartition(".")
        if market in ("SH", "SZ") and inst.type in ("stock", "etf", "index"):
            row = _Listing(inst.symbol, inst.symbol, inst.name, False, index=inst.type == "index")
            out["STOCK_CN"].append(row)
        elif market == "HK" and inst.type == "stock":
            out["STOCK_HK"].append(_Listing(inst.symbol, inst.symbol, inst.name, False))
        elif market == "US" and inst.type == "stock":
            vendor = f"{code.replace('_', '.')}.US"  # BRK_B.US is BRK.B.US upstream
            out["STOCK_US"].append(_Listing(vendor, inst.symbol, inst.name, True))
        elif market in ("CC", "FX"):
            kind = "CRYPTO" if market == "CC" else "FOREX"
            out[kind].append(_Listing(code, inst.symbol, inst.name, True))
    for kind, rows in PRODUCTS.items():
        for code, name_cn, name_en in rows:
            out[kind].append(_Listing(code, f"{code}.INFOWAY", name_en, True, name_cn=name_cn))
    return {kind: tuple(rows) for kind, rows in out.items()}


def _today(now: dt.datetime) -> dt.date:
    return now.astimezone(market_spec("SH").zone).date()


def symbols_of(kind: str, now: dt.datetime, seed: int, only: Sequence[str] = ()) -> list[Any]:
    """``/common/basic/symbols`` ``data`` for ``type=kind`` (optionally only some codes)."""
    wanted = set(only)
    rows = []
    for item in _listings(seed, _today(now))[kind]:
        if wanted and item.code not in wanted:
            continue
        chinese = "" if item.english else item.name
        rows.append(
            {
                "symbol": item.code,
                "name_cn": item.name_cn or chinese,
                "name_hk": chinese if kind == "STOCK_HK" else "",
                "name_en": item.name if item.english else "",
                "index": item.index,
            }
        )
    return rows


def known_codes(market: str, codes: Sequence[str], now: dt.datetime, seed: int) -> dict[str, str]:
    """Vendor code -> canonical symbol of the ``codes`` this path ``market`` serves, in
    request order; codes of another market are left out, as upstream."""
    table = _listings(seed, _today(now))
    by_code = {item.code: item.symbol for kind in _PATH_TYPES[market] for item in table[kind]}
    return {code: by_code[code] for code in codes if code in by_code}


# -- klines -----------------------------------------------------------------------------------


def _span_days(market: str, freq: str, count: int) -> int:
    """Calendar days that surely hold ``count`` bars of ``market`` (a first guess, kept
    tight because generating bars is the cost of a page; it doubles if short)."""
    if freq in _MINUTES:
        minutes = _SESSION_MINUTES.get(market, 240)
        per_day = max(1.0, minutes / _MINUTES[freq])
        week = 7 / 7 if market == "CC" else 7 / 5
        return math.ceil(count / per_day * week * 1.1) + 2
    per_bar = {"1d": 1.5, "1w": 7.0, "1M": 31.0}[freq]
    return math.ceil(count * per_bar) + 20


def _completed(
    symbol: str, freq: str, count: int, cut_us: int, floor_us: int, now: dt.datetime, seed: int
) -> list[Bar]:
    """The newest ``count`` finished bars with ``floor_us <= ts < cut_us``, ascending."""
    if count <= 0:
        return []
    market = calendar_market(instrument_for_any(symbol, seed=seed))
    zone = market_spec(market).zone
    end = dt.datetime.fromtimestamp(min(cut_us, int(now.timestamp() * _US)) / _US, zone).date()
    floor = max(_FIRST_DAY, dt.datetime.fromtimestamp(floor_us / _US, zone).date())
    span = _span_days(market, freq, count)
    while True:
        first = max(floor, end - dt.timedelta(days=span))
        found = klines_for_any(symbol, freq, first, end, now, seed=seed)
        keep = np.flatnonzero((found.ts >= floor_us) & (found.ts < cut_us))
        if len(keep) >= count or first <= floor:
            return bars_of(_take(found, keep[-count:]))
        span *= 2


def _take(bars: Bars, index: npt.NDArray[np.int64]) -> Bars:
    """The bars at ``index`` (converting only those to rows is what keeps pages fast)."""

    def pick(values: Any) -> Any:
        return None if values is None else values[index]

    return replace(
        bars,
        ts=bars.ts[index],
        trade_date=bars.trade_date[index],
        open=bars.open[index],
        high=bars.high[index],
        low=bars.low[index],
        close=bars.close[index],
        volume=pick(bars.volume),
        amount=pick(bars.amount),
        settle=pick(bars.settle),
        open_interest=pick(bars.open_interest),
    )


def _forming(symbol: str, freq: str, now: dt.datetime, seed: int) -> Bar | None:
    """The bar still forming at ``now`` (a session runs), or None."""
    inst = instrument_for_any(symbol, seed=seed)
    market = calendar_market(inst)
    today = now.astimezone(market_spec(market).zone).date()
    ahead = {"1w": 10, "1M": 40}.get(freq, 2)
    first = {"1w": today - dt.timedelta(days=7), "1M": today.replace(day=1)}.get(freq, today)
    later = now + dt.timedelta(days=ahead)
    final = bars_of(klines_for_any(symbol, freq, first, today, later, seed=seed))
    done = {b.ts_us for b in bars_of(klines_for_any(symbol, freq, first, today, now, seed=seed))}
    now_us = int(now.timestamp() * _US)
    for bar in reversed(final):
        if bar.ts_us in done:
            return None
        if _opened(market, freq, bar, now_us):
            return _partial(bar, spot_price(symbol, now, seed=seed))
    return None


def _opened(market: str, freq: str, bar: Bar, now_us: int) -> bool:
    if freq in _MINUTES:
        return bar.ts_us <= now_us
    try:
        found = sessions(market, bar.trade_date, bar.trade_date)
    except BadInputError:
        return False
    return len(found.seg_start) > 0 and int(found.seg_start.min()) <= now_us


def _partial(bar: Bar, price: float) -> Bar:
    half = None if bar.volume is None else float(math.floor(bar.volume / 2))
    amount = None if bar.amount is None else round(bar.amount / 2, 2)
    high, low = max(bar.open, price), min(bar.open, price)
    return replace(bar, high=high, low=low, close=price, volume=half, amount=amount)


def page(
    symbol: str,
    freq: str,
    count: int,
    before: int | None,
    now: dt.datetime,
    seed: int,
    floor: dt.datetime | None,
) -> list[Bar]:
    """The newest ``count`` bars with ``t < before`` (epoch seconds; None: up to now) and
    not older than ``floor``, newest first, the forming bar included."""
    now_us = int(now.timestamp() * _US)
    cut_us = now_us + 1 if before is None else before * _US
    floor_us = 0 if floor is None else int(floor.timestamp() * _US)
    newest: list[Bar] = []
    reach = 31 if freq == "1M" else 7 if freq == "1w" else 1
    if cut_us > now_us - reach * 86_400 * _US:
        bar = _forming(symbol, freq, now, seed)
        if bar is not None and floor_us <= bar.ts_us < cut_us:
            newest.append(bar)
    older = _completed(symbol, freq, count - len(newest), cut_us, floor_us, now, seed)
    return newest + older[::-1]


def _decimal(value: float | None, places: int, none: str) -> str:
    """A decimal string with at least ``places`` decimals (``"98.150"``); negatives are the
    bad-price form ``"-1.000"`` and NaN ``"NaN"`` (docs/vendors/infoway.md "Faults")."""
    if value is None:
        return none
    if math.isnan(value):
        return "NaN"
    if value < 0:
        return "-1.000"
    text = f"{value:.6f}".rstrip("0")
    whole, _, frac = text.partition(".")
    frac = frac.ljust(places, "0")
    return f"{whole}.{frac}" if frac else whole


def encode_rows(bars: Sequence[Bar], reference: Sequence[Bar]) -> list[dict[str, str]]:
    """``respList`` rows. ``pc``/``pca`` (change vs the previous bar) come from the
    fault-free ``reference`` page, newest first; the oldest bar compares with its open."""
    previous = {b.ts_us: o.close for b, o in itertools.pairwise(reference)}
    rows = []
    for bar in bars:
        before = previous.get(bar.ts_us, bar.open)
        change = round(bar.close - before, 3) if not math.isnan(bar.close) else 0.0
        change = change or 0.0  # no "-0.000"
        share = change / before * 100 if before > 0 else 0.0
        rows.append(
            {
                "t": str(bar.ts_us // _US),
                "o": _decimal(bar.open, 3, "0"),
                "h": _decimal(bar.high, 3, "0"),
                "l": _decimal(bar.low, 3, "0"),
                "c": _decimal(bar.close, 3, "0"),
                "v": _decimal(bar.volume, 0, "0"),
                "vw": _decimal(bar.amount, 3, "0.000"),
                "pc": f"{share:.2f}%",
                "pca": f"{change:.3f}",
            }
        )
    return rows


# -- calendars --------------------------------------------------------------------------------


def trading_days(market: str, first: dt.date, last: dt.date) -> dict[str, list[str]]:
    """``trade_days`` and ``half_trade_days`` of CN (SSE's), HK or US in ``[first, last]``,
    as far as the calendars reach; half days are in both lists."""
    calendar = "SH" if market == "CN" else market
    first = max(first, _FIRST_DAY)
    try:
        found = sessions(calendar, first, last) if first <= last else None
    except BadInputError:  # beyond what the calendars know
        found = None
    if found is None:
        return {"trade_days": [], "half_trade_days": []}
    days = [str(d).replace("-", "") for d in found.days]
    half = [d for d, h in zip(days, found.half_day, strict=True) if h]
    return {"trade_days": days, "half_trade_days": half}


# -- adjustment factors -----------------------------------------------------------------------

FACTOR_MARKETS: Final = {"CN": ("SH", "SZ", "BJ"), "HK": ("HK",), "US": ("US",)}


def adjustment_factors(
    market: str, code: str, first: dt.date, last: dt.date, now: dt.datetime, seed: int
) -> list[dict[str, str]] | None:
    """``code``'s ex-dates in ``[first, last]`` that have happened by ``now`` (exchange-local),
    each with its forward factor as a 10-decimal string; None for a code this ``market``
    does not list (a business error upstream)."""
    symbol = known_codes("stock", [code], now, seed).get(code)
    if symbol is None or symbol.rsplit(".", 1)[1] not in FACTOR_MARKETS[market]:
        return None
    inst = universe(seed).visible(symbol, now)
    if inst is None:
        return None
    today = now.astimezone(market_spec(inst.market).zone).date()
    acts = actions(inst, seed)
    return [
        {"symbol": code, "day": acts.ex_dates[i].strftime("%Y%m%d"),
         "forward_factor": f"{acts.forward[i]:.10f}"}
        for i in acts.between(first, min(last, today))
    ]  # fmt: skip

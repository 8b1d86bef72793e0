"""StockTV's answers as data: what each endpoint's ``data`` holds, from etl.synthetic.

Pure functions of (now, seed, parameters), kept apart from the HTTP side in stocktv.py.
Wire types follow docs/vendors/stocktv.md: pids and ids are ints, bar ``time`` epoch ms, record
``time`` epoch seconds, prices JSON numbers, ``vo`` 0 where there is no turnover.

Conventions of this emulator where docs/vendors/stocktv.md leaves a detail open:

- the stocks are the synthetic universe's IN, US and JP stocks; a canonical code that lost
  characters is sent in its vendor form (``M_M`` → ``M&M``, ``BRK_B`` → ``BRK.B``);
- every Indian stock is listed twice, on NSE (46) and on BSE (74), with different pids, as
  the real list does; Japanese stocks are on Tokyo (20); US stocks on NASDAQ (2) for the
  names below, NYSE (1) otherwise;
- a pid is a hash of (exchange, vendor symbol): the same in every run and every seed;
- indices trade like a stock of their country's calendar, with ``volume`` and ``vo`` 0;
- history: intraday bars of the last 180 days (UTC dates), 1d–1M since 2010-01-01.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from etl.calendars import market_spec, sessions
from etl.emulators.payload import Bar, bars_of
from etl.errors import BadInputError
from etl.synthetic import instruments, klines_for_any, spot_price, universe
from etl.synthetic.hashing import key_of, signed, text_key

__all__ = [
    "COUNTRIES",
    "INTERVALS",
    "MAX_BARS",
    "Listing",
    "currency_list",
    "encode_bar",
    "index_records",
    "kline_bars",
    "listing",
    "stock_records",
]

# interval -> canonical frequency (docs/vendors/README.md "Frequencies").
INTERVALS: Final = {
    "PT1M": "1m", "PT5M": "5m", "PT15M": "15m", "PT30M": "30m", "PT1H": "1h",
    "P1D": "1d", "P1W": "1w", "P1M": "1M",
}  # fmt: skip
MAX_BARS: Final = 1000
INTRADAY_DAYS: Final = 180
DAILY_SINCE: Final = dt.date(2010, 1, 1)
# countryId -> market (also the ``flag`` /stock/indices filters on).
COUNTRIES: Final = {14: "IN", 5: "US", 2: "JP"}
NSE, BSE, NYSE, NASDAQ, TOKYO = 46, 74, 1, 2, 20
_EXCHANGES: Final = {"IN": (NSE, BSE), "JP": (TOKYO,)}
_NASDAQ: Final = frozenset(
    {"AAPL", "MSFT", "AMZN", "GOOGL", "META", "TSLA", "NVDA", "NFLX", "INTC", "AMD", "CSCO"}
)
_VENDOR_FORM: Final = {"M_M": "M&M", "BRK_B": "BRK.B"}
_INDICES: Final = {
    "IN": (("NSEI", "Nifty 50"), ("BSESN", "BSE Sensex")),
    "US": (("DJI", "Dow Jones Industrial Average"), ("SPX", "S&P 500"),
           ("IXIC", "Nasdaq Composite")),
    "JP": (("N225", "Nikkei 225"), ("TOPX", "TOPIX")),
}  # fmt: skip
_PER_USD: Final = {
    "USD": 1.0, "INR": 83.12, "JPY": 151.3, "CNY": 7.23, "EUR": 0.92, "HKD": 7.82, "GBP": 0.79,
}  # fmt: skip
# Calendar days that hold about 1000 bars of each frequency (doubled until they do).
# Sized for Tokyo's short sessions (5 h: 300 1m bars a day), so one pass usually suffices.
_SPAN_DAYS: Final = {"1m": 6, "5m": 28, "15m": 80, "30m": 150, "1h": 300, "1d": 1500,
                     "1w": 7100, "1M": 31000}  # fmt: skip


@dataclass(frozen=True)
class Listing:
    """One pid: a stock on one exchange, or an index. ``data_symbol`` is the canonical
    symbol its bars are generated for."""

    pid: int
    symbol: str
    name: str
    market: str
    country_id: int
    exchange_id: int | None
    data_symbol: str
    kind: str  # stock index


def _pid(exchange: int | str, symbol: str) -> int:
    return 1000 + text_key(f"stocktv|{exchange}|{symbol}") % 9_000_000


def _country_id(market: str) -> int:
    return next(cid for cid, m in COUNTRIES.items() if m == market)


@lru_cache(maxsize=4)
def _listings(seed: int) -> dict[int, Listing]:
    """Every pid that ever exists for ``seed``."""
    out: list[Listing] = []
    for inst in universe(seed).all:
        if inst.type != "stock" or inst.market not in ("IN", "US", "JP"):
            continue
        code = inst.symbol.rsplit(".", 1)[0]
        symbol = _VENDOR_FORM.get(code, code)
        if inst.market == "US":
            exchanges: tuple[int, ...] = (NASDAQ if code in _NASDAQ else NYSE,)
        else:
            exchanges = _EXCHANGES[inst.market]
        for exchange in exchanges:
            out.append(
                Listing(
                    _pid(exchange, symbol), symbol, inst.name, inst.market,
                    _country_id(inst.market), exchange, inst.symbol, "stock",
                )
            )  # fmt: skip
    for market, rows in _INDICES.items():
        for symbol, name in rows:
            out.append(
                Listing(
                    _pid("index", symbol), symbol, name, market, _country_id(market), None,
                    f"{symbol}.{market}", "index",
                )
            )  # fmt: skip
    by_pid = {item.pid: item for item in out}
    assert len(by_pid) == len(out), "two StockTV pids collide"
    return by_pid


def listing(pid: int, seed: int) -> Listing | None:
    return _listings(seed).get(pid)


def _quote(item: Listing, now: dt.datetime, seed: int) -> dict[str, Any]:
    last = round(spot_price(item.data_symbol, now, seed=seed), 2)
    prev = round(spot_price(item.data_symbol, now - dt.timedelta(days=1), seed=seed), 2)
    chg = round(last - prev, 2)
    return {
        "last": last,
        "chg": chg,
        "chgPct": round(chg / prev * 100, 2) if prev else 0.0,
        "high": round(max(last, prev) * 1.004, 2),
        "low": round(min(last, prev) * 0.996, 2),
    }


def stock_records(
    country_id: int, exchange_id: int | None, symbol: str | None, now: dt.datetime, seed: int
) -> list[dict[str, Any]]:
    """The stocks of one country listed at ``now``, in a stable order (exchange, symbol)."""
    market = COUNTRIES.get(country_id)
    if market is None:
        return []
    visible = {i.symbol for i in instruments(now, seed=seed, market=market)}
    found = [
        item
        for item in _listings(seed).values()
        if item.kind == "stock" and item.market == market and item.data_symbol in visible
        and exchange_id in (None, item.exchange_id) and symbol in (None, item.symbol)
    ]  # fmt: skip
    found.sort(key=lambda i: (i.exchange_id or 0, i.symbol))
    stamp = int(now.timestamp())
    volume_key = key_of(seed, "stocktv-volume")
    return [
        {
            "id": item.pid,
            "symbol": item.symbol,
            "name": item.name,
            "exchangeId": item.exchange_id,
            "countryId": item.country_id,
            **_quote(item, now, seed),
            "volume": 1000 + round(abs(float(signed(volume_key, [item.pid])[0])) * 5e6),
            "time": stamp,
        }
        for item in found
    ]


def _is_open(market: str, now: dt.datetime) -> bool:
    today = now.astimezone(market_spec(market).zone).date()
    try:
        found = sessions(market, today, today)
    except BadInputError:
        return False
    now_us = int(now.timestamp() * 1_000_000)
    return bool(((found.seg_start <= now_us) & (now_us < found.seg_end)).any())


def index_records(country_id: int, now: dt.datetime, seed: int) -> list[dict[str, Any]]:
    market = COUNTRIES.get(country_id)
    if market is None:
        return []
    is_open = _is_open(market, now)
    rows = [i for i in _listings(seed).values() if i.kind == "index" and i.market == market]
    out = []
    for item in sorted(rows, key=lambda i: i.symbol):
        quote = _quote(item, now, seed)
        out.append(
            {
                "id": item.pid,
                "name": item.name,
                "symbol": item.symbol,
                "last": quote["last"],
                "chg": quote["chg"],
                "chgPct": quote["chgPct"],
                "isOpen": is_open,
            }
        )
    return out


def _local_day(ms: int, market: str) -> dt.date:
    instant = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return instant.astimezone(market_spec(market).zone).date()


def kline_bars(
    item: Listing,
    freq: str,
    start_ms: int | None,
    end_ms: int | None,
    now: dt.datetime,
    seed: int,
) -> list[Bar]:
    """The latest 1000 completed bars with ``start_ms ≤ time ≤ end_ms`` (both optional),
    oldest first, within the emulator's history."""
    now_ms = int(now.timestamp() * 1000)
    hi_ms = now_ms if end_ms is None else min(end_ms, now_ms)
    intraday = freq not in ("1d", "1w", "1M")
    floor = now.astimezone(dt.UTC).date() - dt.timedelta(days=INTRADAY_DAYS)
    first_day = floor if intraday else DAILY_SINCE
    if start_ms is not None:
        first_day = max(first_day, _local_day(start_ms, item.market))
    lo_ms = start_ms if start_ms is not None else -(2**62)
    last_day = _local_day(hi_ms, item.market)
    span = _SPAN_DAYS[freq]
    while first_day <= last_day:
        lo_day = max(first_day, last_day - dt.timedelta(days=span))
        try:
            bars = bars_of(klines_for_any(item.data_symbol, freq, lo_day, last_day, now, seed=seed))
        except BadInputError:  # beyond the calendars: nothing has traded there
            return []
        chosen = [b for b in bars if lo_ms <= b.ts_us // 1000 <= hi_ms]
        if len(chosen) >= MAX_BARS or lo_day == first_day:
            return chosen[-MAX_BARS:]
        span *= 2
    return []


def _number(value: float | None) -> float | int:
    """Volumes as ints where they are whole (shares), prices as they are; None as 0."""
    if value is None:
        return 0
    return int(value) if value == int(value) else value


def encode_bar(bar: Bar, kind: str) -> dict[str, Any]:
    """One bar in StockTV's wire form; an index has no volume or turnover (0)."""
    stock = kind == "stock"
    return {
        "time": bar.ts_us // 1000,
        "open": bar.open,
        "high": bar.high,
        "low": bar.low,
        "close": bar.close,
        "volume": _number(bar.volume) if stock else 0,
        "vo": (bar.amount or 0.0) if stock else 0.0,
    }


def currency_list(now: dt.datetime, seed: int) -> dict[str, Any]:
    """``{"conversions": {BASE: {QUOTE: rate}}}``, rate = QUOTE per 1 BASE, moving a
    little each UTC day."""
    day = (now.astimezone(dt.UTC).date() - dt.date(1970, 1, 1)).days
    key = key_of(seed, "stocktv-fx")
    rates = {
        code: rate * (1 + 0.01 * float(signed(key_of(key, code), [day])[0])) if rate != 1 else 1
        for code, rate in _PER_USD.items()
    }
    conversions = {
        base: {q: round(r / rb, 6) for q, r in rates.items() if q != base}
        for base, rb in rates.items()
    }
    return {"conversions": conversions}

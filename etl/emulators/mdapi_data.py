"""mdapi's answers as data: the product catalogue, ``redis.php`` bar rows and ``getQuote.php``
quote bodies, from etl.synthetic. Pure functions of (now, seed, parameters), kept apart from the
HTTP side in mdapi.py.

Wire types follow docs/vendors/mdapi.md: a bar row is ``[epoch ms, open, high, low, close,
"YYYY-mm-dd HH:MM:SS" (UTC+8), volume]``, FX volume ``0``; rows are the latest ``rows`` bars,
newest first, and the newest is the bar still forming at ``now`` when one is (the spec allows
it: the final bar's open, the price at ``now`` as close, high and low enclosing both).

The catalogue keeps the vendor document's examples (the eight index futures of category 7,
``btcusdt``, ``fx_sgbpusd``, ``RT_AU``); the other codes are made up in the same style so that a
client has more than 50 products, one of them (``hf_OIL``) in mixed case, which upper-casing
loses. Each product names the canonical symbol of the synthetic market behind it.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from etl.emulators.payload import Bar, bars_of
from etl.synthetic import Bars, instrument_for_any, klines_for_any, spot_price
from etl.synthetic.hashing import key_of, uniform
from etl.synthetic.prices import profile

__all__ = [
    "BY_CODE",
    "CATEGORIES",
    "PRODUCTS",
    "ROWS_MAX",
    "Product",
    "encode_bar",
    "latest_bars",
    "local_text",
    "more_coins",
    "quote_body",
]

F64 = npt.NDArray[np.float64]
ZONE: Final = ZoneInfo("Asia/Shanghai")
CATEGORIES: Final = (
    ("1", "外汇"), ("2", "国际期货"), ("3", "国内期货"), ("4", "数字货币"), ("7", "国际股指期货"),
)  # fmt: skip
ROWS_MAX: Final = {
    "1m": 600, "5m": 300, "15m": 300, "30m": 300, "1h": 300, "1d": 300, "1M": 100,
}  # fmt: skip
_BARS_PER_DAY: Final = {
    "1m": 1440.0, "5m": 288.0, "15m": 96.0, "30m": 48.0, "1h": 24.0, "1d": 1.0, "1M": 1 / 30,
}  # fmt: skip
_FLOOR: Final = dt.date(1990, 1, 1)  # how far back a short history is looked for
_AHEAD_DAYS: Final = {"1M": 70}  # how far the bar after the last complete one may start


@dataclass(frozen=True)
class Product:
    """One listed code: its category id and the synthetic symbol behind its data."""

    code: str
    name: str
    category: str
    symbol: str

    @property
    def fx(self) -> bool:
        return self.category == "1"


def _fx(pair: str, name: str) -> Product:
    return Product(f"fx_s{pair.lower()}", name, "1", f"{pair}.FX")


def _cc(base: str) -> Product:
    return Product(f"{base.lower()}usdt", f"{base}/USDT", "4", f"{base}USDT.CC")


def _other(code: str, name: str, category: str) -> Product:
    return Product(code, name, category, f"{code.upper()}.MDAPI")


PRODUCTS: Final = (
    _fx("EURUSD", "欧元美元"), _fx("GBPUSD", "英镑美元"), _fx("USDJPY", "美元日元"),
    _fx("AUDUSD", "澳元美元"), _fx("USDCAD", "美元加元"), _fx("USDCHF", "美元瑞郎"),
    _fx("NZDUSD", "纽元美元"), _fx("EURJPY", "欧元日元"), _fx("GBPJPY", "英镑日元"),
    _fx("EURGBP", "欧元英镑"), _fx("USDCNH", "美元离岸人民币"), _fx("USDHKD", "美元港币"),
    _other("ZY_GC", "纽约黄金", "2"), _other("ZY_SI", "纽约白银", "2"),
    _other("ZY_CL", "美原油", "2"), _other("ZY_NG", "美天然气", "2"),
    _other("ZY_HG", "美铜", "2"), _other("ZY_ZS", "美黄豆", "2"),
    _other("ZY_ZC", "美玉米", "2"), _other("ZY_ZW", "美小麦", "2"),
    _other("hf_OIL", "布伦特原油", "2"),
    _other("RT_AU", "沪金主连", "3"), _other("RT_AG", "沪银主连", "3"),
    _other("RT_CU", "沪铜主连", "3"), _other("RT_AL", "沪铝主连", "3"),
    _other("RT_RB", "螺纹钢主连", "3"), _other("RT_I", "铁矿石主连", "3"),
    _other("RT_M", "豆粕主连", "3"), _other("RT_SC", "原油主连", "3"),
    _other("RT_TA", "PTA主连", "3"), _other("RT_MA", "甲醇主连", "3"),
    *(_cc(b) for b in ("BTC", "ETH", "XRP", "BNB", "SOL", "ADA", "DOGE", "TRX", "DOT", "LTC",
                       "LINK", "BCH", "ETC", "AVAX", "UNI", "FIL")),
    _other("HX_HSI", "恒指2512", "7"), _other("ZY_DAX", "德指", "7"),
    _other("HX_MHI", "小恒指2512", "7"), _other("HX_CN", "富时A50", "7"),
    _other("HX_NQ", "小纳指", "7"), _other("HX_ES", "小标普", "7"),
    _other("ZY_YM", "小道指", "7"), _other("TW_TXF", "台指期2512【日】", "7"),
)  # fmt: skip
BY_CODE: Final = {p.code: p for p in PRODUCTS}


def more_coins(n: int) -> tuple[Product, ...]:
    """``n`` made-up crypto pairs beyond the listed products (``C0001USDT.CC``...): the
    emulator's ``products`` option, for a universe larger than the 47 mdapi lists here."""
    return tuple(_cc(f"C{i:04d}") for i in range(1, n + 1))


@lru_cache(maxsize=65_536)
def local_text(ms: int) -> str:
    """Element 5 of a bar row: the instant in UTC+8 as text."""
    return dt.datetime.fromtimestamp(ms / 1000, ZONE).strftime("%Y-%m-%d %H:%M:%S")


def encode_bar(bar: Bar, *, fx: bool) -> list[Any]:
    """A bar as a wire row; FX (no volume) sends 0."""
    ms = bar.ts_us // 1000
    volume = 0 if fx or bar.volume is None else bar.volume
    return [ms, bar.open, bar.high, bar.low, bar.close, local_text(ms), volume]


def _minute(now: dt.datetime) -> dt.datetime:
    """``now`` down to the minute: every bar ends on a minute, so the complete bars at the
    minute are the complete bars at ``now`` (and cache well)."""
    return now.astimezone(dt.UTC).replace(second=0, microsecond=0)


def latest_bars(product: Product, freq: str, rows: int, now: dt.datetime, seed: int) -> list[Bar]:
    """The latest ``rows`` bars at ``now``, newest first, the forming one (if any) first."""
    done = _complete(product.symbol, freq, rows, _minute(now), seed)
    nxt = _next_bar(product.symbol, freq, done[-1] if done else None, _minute(now), seed)
    out = list(reversed(done))
    if nxt is not None and nxt.ts <= now:
        price = spot_price(product.symbol, now, seed=seed)
        forming = replace(nxt, high=max(nxt.open, price), low=min(nxt.open, price), close=price)
        out = [forming, *out[: rows - 1]]
    return out


@lru_cache(maxsize=1024)
def _complete(symbol: str, freq: str, rows: int, now: dt.datetime, seed: int) -> tuple[Bar, ...]:
    """The latest ``rows`` bars complete at ``now``, oldest first (fewer for a short life)."""
    today = now.astimezone(ZONE).date()
    span = math.ceil(rows / _BARS_PER_DAY[freq] * 7 / 5) + 4
    while True:
        first = max(today - dt.timedelta(days=span), _FLOOR)
        bars = klines_for_any(symbol, freq, first, today, now, seed=seed)
        if len(bars) >= rows or first == _FLOOR:
            return tuple(bars_of(_cut(bars, max(0, len(bars) - rows), len(bars))))
        span *= 2


@lru_cache(maxsize=1024)
def _next_bar(symbol: str, freq: str, last: Bar | None, now: dt.datetime, seed: int) -> Bar | None:
    """The bar after ``last`` with its final values (None without history)."""
    if last is None:
        return None
    ahead = dt.timedelta(days=_AHEAD_DAYS.get(freq, 7))
    later = now + ahead + dt.timedelta(days=32)  # a clock at which that bar has ended
    bars = klines_for_any(symbol, freq, last.trade_date, last.trade_date + ahead, later, seed=seed)
    i = int(np.searchsorted(bars.ts, last.ts_us, side="right"))
    found = bars_of(_cut(bars, i, i + 1))
    return found[0] if found else None


def _cut(bars: Bars, lo: int, hi: int) -> Bars:
    """Bars ``lo:hi`` only (making Bar rows of every generated bar is the slow part)."""

    def part(values: F64 | None) -> F64 | None:
        return None if values is None else values[lo:hi]

    return replace(
        bars, ts=bars.ts[lo:hi], trade_date=bars.trade_date[lo:hi], open=bars.open[lo:hi],
        high=bars.high[lo:hi], low=bars.low[lo:hi], close=bars.close[lo:hi],
        volume=part(bars.volume), amount=part(bars.amount), settle=part(bars.settle),
        open_interest=part(bars.open_interest),
    )  # fmt: skip


def quote_body(product: Product, now: dt.datetime, seed: int) -> dict[str, Any]:
    """A quote object as ``getQuote.php`` sends it in ``data.body`` (keys in the document's
    order). Prices come from the synthetic path: ``Open`` and ``LastClose`` at local midnight
    (these markets run round the clock), ``Price`` at ``now``."""
    symbol = product.symbol
    tick = 10.0 ** -profile(instrument_for_any(symbol, seed=seed), seed).decimals
    digits = max(0, round(-math.log10(tick)))
    local = now.astimezone(ZONE)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    price = spot_price(symbol, now, seed=seed)
    opened = spot_price(symbol, midnight, seed=seed)
    hour_bars = klines_for_any(symbol, "1h", local.date(), local.date(), now, seed=seed)
    total = 0.0 if hour_bars.volume is None else float(np.sum(hour_bars.volume))
    sizes = uniform(key_of(seed, product.code, "quote", int(now.timestamp())), np.arange(22))
    size = [0.0 if product.fx else round(float(s) * 2, 2) for s in sizes]
    diff = round(price - opened, digits)
    return {
        "StockCode": product.code,
        "Price": price,
        "Open": opened,
        "LastClose": opened,
        "High": round(max(price, opened) + tick * 3, digits),
        "Low": round(max(min(price, opened) - tick * 3, tick), digits),
        "Time": local.strftime("%Y-%m-%d %H:%M:%S"),
        "LastTime": str(int(now.timestamp())),
        "BP1": price,
        "BV1": size[0],
        "SP1": round(price + tick, digits),
        "SV1": size[1],
        "TotalVol": round(total, 2),
        "Depth": {
            "Buy": [{f"BP{i}": round(price - (i - 1) * tick, digits), f"BV{i}": size[i + 1]}
                    for i in range(1, 6)],
            "Sell": [{f"SP{i}": round(price + i * tick, digits), f"SV{i}": size[i + 6]}
                     for i in range(1, 6)],
        },
        "BS": [
            {"time": local.strftime("%H:%M:%S"), "price": price, "size": size[12], "direction": 2},
            {"time": local.strftime("%H:%M:%S"), "price": round(price + tick, digits),
             "size": size[13], "direction": 1},
        ],
        "Info": [],
        "lastSize": size[14],
        "Diff": diff,
        "DiffRate": round(diff / opened * 100, 2) if opened else 0.0,
    }  # fmt: skip

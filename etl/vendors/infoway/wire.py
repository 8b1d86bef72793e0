"""Infoway's wire format (docs/vendors/infoway.md): answers → payloads or errors, codes ↔ symbols,
and payloads → canonical rows. Pure functions, no I/O, so every mapping is tested on the
vendor documents' own payloads.

Shapes are checked where a mistake would store wrong data: a bar without ``t``, a price that
is not a decimal string, a ``respList`` that is not a list is a :class:`SchemaError` and
nothing of that answer is kept. Values are only typed here: ``"NaN"``, ``"-1.000"`` and high
below low pass through to ``etl.normalize``, which rejects and counts them.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from zoneinfo import ZoneInfo

import httpx
import pyarrow as pa

from etl.errors import (
    AuthError,
    PermanentVendorError,
    QuotaExhausted,
    RateLimited,
    SchemaError,
    TransientVendorError,
)
from etl.vendors.base import target_schema

__all__ = [
    "KLINE_TYPES",
    "SYMBOL_TYPES",
    "Answer",
    "Bar",
    "HistoryLimit",
    "UnknownCodes",
    "bars_table",
    "calendar_table",
    "canonical",
    "instrument_row",
    "parse_answer",
    "parse_bars",
    "path_market",
    "target_schema",
    "vendor_code",
    "ymd",
]

VENDOR: Final = "infoway"
# Canonical frequency -> klineType (docs/vendors/README.md "Frequencies"); 6, 7, 11, 12 unused.
KLINE_TYPES: Final = {"1m": 1, "5m": 2, "15m": 3, "30m": 4, "1h": 5, "1d": 8, "1w": 9, "1M": 10}
# /common/basic/symbols ``type`` -> the canonical suffixes its codes map to.
SYMBOL_TYPES: Final = {
    "STOCK_CN": ("SH", "SZ"), "STOCK_HK": ("HK",), "STOCK_US": ("US",), "CRYPTO": ("CC",),
    "FOREX": ("FX",), "METAL": ("INFOWAY",), "ENERGY": ("INFOWAY",), "FUTURES": ("INFOWAY",),
    "INDICES": ("INFOWAY",),
}  # fmt: skip
_SUFFIXED: Final = frozenset({"SH", "SZ", "HK", "US"})  # vendor codes that carry a suffix
_BARE: Final = {"CRYPTO": "CC", "FOREX": "FX"}  # others bare: <CODE>.INFOWAY
_CANONICAL_CODE: Final = re.compile(r"^[A-Z0-9_-]{1,40}$")
_NOT_CODE: Final = re.compile(r"[^A-Z0-9_-]")
_BAR_REQUIRED: Final = ("t", "o", "h", "l", "c", "v")
_RATE_DETAIL: Final = "Rate limit"
_HISTORY: Final = "Timestamp limit error"
_NO_PRODUCT: Final = "All product not exists"


class UnknownCodes(PermanentVendorError):
    """Business error ``All product not exists``: no code of the call is known."""


class HistoryLimit(PermanentVendorError):
    """Business error ``Timestamp limit error``: older than the plan's ``maxYearHisData``
    years. A capability limit (end of history) that the adapter reports as unavailable."""


@dataclass(frozen=True)
class Answer:
    """A successful answer: its ``data`` (or the object itself) and the vendor's trace id."""

    data: Any
    trace_id: str | None


@dataclass(frozen=True)
class Bar:
    """One kline row typed: ``t`` epoch seconds, values as floats (NaN and negatives kept)."""

    t: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    amount: float | None
    trace_id: str | None = field(default=None, compare=False)  # not part of the values


def ymd(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


# -- answers --------------------------------------------------------------------------------


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def _is_problem(body: Mapping[str, Any]) -> bool:
    """An RFC 7807 problem document (Spring's answer to a bad ``/common/basic`` call)."""
    return "title" in body and "status" in body and ("type" in body or "detail" in body)


def _code(body: Mapping[str, Any]) -> int | None:
    for key in ("ret", "code"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _by_status(status: int, text: str) -> Exception:
    """The error class of an HTTP-like status found inside a body."""
    if status == 401:
        return AuthError(
            f"Infoway refused the API key ({text}): check ETL_INFOWAY_API_KEY", vendor=VENDOR
        )
    if status == 429:
        return RateLimited(text, vendor=VENDOR)
    if status >= 500:
        return TransientVendorError(text, vendor=VENDOR)
    return PermanentVendorError(text, vendor=VENDOR)


def parse_answer(response: httpx.Response) -> Answer:
    """``data`` of a successful answer, else the errors table's class, in the SDK's order:
    HTTP 401/429; a body with only ``detail``; RFC 7807; ``ret`` (or ``code``) ≠ 200, before
    HTTP ≥ 400; other HTTP ≥ 400; success → ``data`` if present, else the object.

    A body that is not JSON raises ``JSONDecodeError``, which the HTTP layer retries.
    """
    status = response.status_code
    if status in (401, 429):
        raise _by_status(status, f"HTTP {status}: {_snippet(response)}")
    body = response.json()
    if not isinstance(body, dict):
        if status >= 400:
            raise PermanentVendorError(f"HTTP {status}", vendor=VENDOR)
        raise SchemaError(f"not an Infoway answer: a JSON {type(body).__name__}", vendor=VENDOR)
    if set(body) == {"detail"}:
        detail = _text(body["detail"])
        if detail.startswith(_RATE_DETAIL):
            raise RateLimited(f"HTTP {status}: {detail}", vendor=VENDOR)
        raise PermanentVendorError(f"HTTP {status}: {detail}", vendor=VENDOR)
    if _is_problem(body):
        problem = body.get("status")
        code = problem if isinstance(problem, int) and not isinstance(problem, bool) else status
        detail = _text(body.get("detail") or body.get("title"))
        raise _by_status(code, f"HTTP {status}: {detail}")
    ret = _code(body)
    if ret is not None and ret != 200:
        message = _text(body.get("msg") or body.get("message") or "no message")
        text = f"ret {ret}: {message}"
        if ret == 501:  # over the per-minute rate
            raise RateLimited(text, vendor=VENDOR)
        if ret == 502:
            raise QuotaExhausted(f"Infoway's daily quota is spent ({text})", vendor=VENDOR)
        if message.startswith(_HISTORY):
            raise HistoryLimit(text, vendor=VENDOR)
        if message.startswith(_NO_PRODUCT):
            raise UnknownCodes(text, vendor=VENDOR)
        if ret in (401, 429) or ret > 502:
            raise _by_status(ret, text)
        raise PermanentVendorError(text, vendor=VENDOR)
    if status >= 400:
        raise PermanentVendorError(f"HTTP {status}: {_snippet(response)}", vendor=VENDOR)
    trace = body.get("traceId")
    return Answer(body.get("data", body), trace if isinstance(trace, str) else None)


def _snippet(response: httpx.Response) -> str:
    text = " ".join(response.text.split())
    return text[:160] or "(empty)"


# -- codes ----------------------------------------------------------------------------------


def path_market(exchange: str) -> str:
    """The ``{market}`` path segment of a canonical suffix (the symbols table)."""
    if exchange in _SUFFIXED:
        return "stock"
    return "crypto" if exchange == "CC" else "common"


def vendor_code(symbol: str) -> str:
    """Canonical → vendor code by rule, for symbols the instruments map does not know:
    ``BTCUSDT.CC`` → ``BTCUSDT``, ``BRK_B.US`` → ``BRK.B.US`` (a US ``_`` stood for ``.``)."""
    code, _, exchange = symbol.rpartition(".")
    if exchange == "US":
        return f"{code.replace('_', '.')}.US"
    return symbol if exchange in _SUFFIXED else code


def canonical(code: str, kind: str) -> str | None:
    """Vendor code of a ``/common/basic/symbols`` ``type`` → canonical symbol, or None when
    it cannot be one (another market, an empty code). Other characters become ``_``."""
    raw = code.strip().upper()
    if kind in _BARE or kind not in ("STOCK_CN", "STOCK_HK", "STOCK_US"):
        exchange = _BARE.get(kind, "INFOWAY")
        body = raw
    else:
        body, _, exchange = raw.rpartition(".")
        if exchange not in SYMBOL_TYPES[kind]:
            return None
    body = _NOT_CODE.sub("_", body)
    return f"{body}.{exchange}" if _CANONICAL_CODE.match(body) else None


_CURRENCIES: Final = {"SH": "CNY", "SZ": "CNY", "HK": "HKD", "US": "USD"}
_TYPES: Final = {"CRYPTO": "crypto", "FOREX": "forex", "INDICES": "index"}


def instrument_row(item: Any, kind: str) -> dict[str, Any] | None:
    """One ``/common/basic/symbols`` item as an instruments row (None: not ours to store)."""
    if not isinstance(item, dict) or not isinstance(item.get("symbol"), str):
        raise SchemaError(f"a {kind} symbol lacks 'symbol'", vendor=VENDOR)
    code = item["symbol"]
    symbol = canonical(code, kind)
    if symbol is None:
        return None
    exchange = symbol.rsplit(".", 1)[1]
    names = [item.get(k) for k in ("name_cn", "name_hk", "name_en")]
    if exchange == "HK":
        names = [names[1], names[0], names[2]]
    elif exchange not in ("SH", "SZ"):
        names = [names[2], names[0], names[1]]
    name = next((n for n in names if isinstance(n, str) and n.strip()), None)
    if kind.startswith("STOCK_"):
        kind_name = "index" if item.get("index") is True else "stock"
    else:
        kind_name = _TYPES.get(kind, "other")
    currency = _CURRENCIES.get(exchange)
    if exchange == "CC" and code.upper().endswith("USDT"):
        currency = "USDT"
    elif exchange == "FX" and len(code) >= 6:
        currency = code[3:6].upper()
    return {
        "symbol": symbol,
        "market": exchange,
        "name": name,
        "type": kind_name,
        "currency": currency,
        "list_date": None,
        "delist_date": None,
        "vendor_code": code,
        "vendor_id": None,
        "vendor_extra": None,
        "vendor": VENDOR,
    }


# -- bars -----------------------------------------------------------------------------------


def _number(value: object, field: str, code: str) -> float:
    """A decimal string (numbers tolerated) as a float; ``"NaN"`` stays NaN."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SchemaError(f"{field} of {code} is not a decimal string: {value!r}", vendor=VENDOR)
    try:
        return float(value)
    except ValueError:
        raise SchemaError(
            f"{field} of {code} is not a decimal string: {value!r}", vendor=VENDOR
        ) from None


def _epoch(value: object, code: str) -> int:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise SchemaError(f"t of {code} is not epoch seconds: {value!r}", vendor=VENDOR)


def parse_bars(data: Any, code: str, trace_id: str | None) -> list[Bar] | None:
    """The bars of ``code`` in a kline answer, in the vendor's order; None when the answer
    has no element for ``code`` (the vendor does not know it)."""
    if not isinstance(data, list):
        raise SchemaError("the kline answer is not a list", vendor=VENDOR)
    for element in data:
        if not isinstance(element, dict) or not isinstance(element.get("s"), str):
            raise SchemaError("a kline element lacks 's'", vendor=VENDOR)
        if element["s"] != code:
            continue
        rows = element.get("respList")
        if not isinstance(rows, list):
            raise SchemaError(f"respList of {code} is not a list", vendor=VENDOR)
        return [_bar(row, code, trace_id) for row in rows]
    return None


def _bar(row: Any, code: str, trace_id: str | None) -> Bar:
    if not isinstance(row, dict):
        raise SchemaError(f"a bar of {code} is not an object", vendor=VENDOR)
    missing = [k for k in _BAR_REQUIRED if k not in row]
    if missing:
        raise SchemaError(f"a bar of {code} lacks {missing}", vendor=VENDOR)
    vw = row.get("vw")
    return Bar(
        t=_epoch(row["t"], code),
        open=_number(row["o"], "o", code),
        high=_number(row["h"], "h", code),
        low=_number(row["l"], "l", code),
        close=_number(row["c"], "c", code),
        volume=_number(row["v"], "v", code),
        amount=None if vw is None else _number(vw, "vw", code),
        trace_id=trace_id,
    )


def bars_table(
    bars: Sequence[Bar], symbol: str, freq: str, zone: ZoneInfo, *, volume: bool = True
) -> pa.Table:
    """Canonical rows, ascending by ``ts``, exact copies dropped (a copy with other values is
    kept for validation to reject). ``volume=False`` stores ``v`` and ``vw`` as null; the
    adapter keeps what Infoway sends for every market, forex included (its ``"0"`` is an
    answer, not an absence)."""
    unique = sorted(set(bars), key=lambda b: (b.t, _nan_last(b)))
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    ts = [epoch + dt.timedelta(seconds=b.t) for b in unique]
    n = len(unique)
    columns: dict[str, Any] = {
        "symbol": [symbol] * n,
        "freq": [freq] * n,
        "ts": ts,
        "trade_date": [t.astimezone(zone).date() for t in ts],
        "open": [b.open for b in unique],
        "high": [b.high for b in unique],
        "low": [b.low for b in unique],
        "close": [b.close for b in unique],
        "volume": [b.volume if volume else None for b in unique],
        "amount": [b.amount if volume else None for b in unique],
        "settle": [None] * n,
        "open_interest": [None] * n,
        "vendor": [VENDOR] * n,
        "request_id": [b.trace_id for b in unique],
        "source": ["rest"] * n,
    }
    return pa.Table.from_pydict(columns, schema=target_schema("klines"))


def _nan_last(bar: Bar) -> tuple[float, ...]:
    """A total order on a bar's values (NaN compares as +inf) for a stable sort."""
    values = (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.amount or 0.0)
    return tuple(math.inf if math.isnan(v) else v for v in values)


def calendar_table(market: str, start: dt.date, end: dt.date, data: Any) -> pa.Table:
    """One row per calendar day of ``[start, end]``; open where ``trade_days`` lists it."""
    if not isinstance(data, dict):
        raise SchemaError("the trading days answer is not an object", vendor=VENDOR)
    lists = []
    for key in ("trade_days", "half_trade_days"):
        days = data.get(key, [])
        if not isinstance(days, list) or not all(
            isinstance(d, str) and len(d) == 8 and d.isdigit() for d in days
        ):
            raise SchemaError(f"{key} is not a list of YYYYMMDD days", vendor=VENDOR)
        lists.append(set(days))
    open_days, half_days = lists
    every = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    return pa.Table.from_pydict(
        {
            "market": [market] * len(every),
            "trade_date": every,
            "is_open": [ymd(d) in open_days or ymd(d) in half_days for d in every],
            "is_half_day": [ymd(d) in half_days for d in every],
            "vendor": [VENDOR] * len(every),
        },
        schema=target_schema("calendar"),
    )


def factors_table(symbol: str, data: Any, start: dt.date, end: dt.date) -> pa.Table:
    """Infoway's forward factors of one symbol (every ex-date since listing, ascending) as
    ``adj_factors`` rows for the ex-dates in ``[start, end]``: ``forward_factor`` as sent,
    ``backward_factor`` the product of ``1 / forward_factor`` over every ex-date up to and
    including the row's, so that it is the cumulative backward factor since listing."""
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise SchemaError(f"the adjustment factors of {symbol} are not a list", vendor=VENDOR)
    events: list[tuple[dt.date, float]] = []
    for row in data:
        day = row.get("day")
        try:
            when = dt.datetime.strptime(str(day), "%Y%m%d").date()  # noqa: DTZ007
        except ValueError:
            raise SchemaError(f"an ex-date of {symbol} is {day!r}", vendor=VENDOR) from None
        factor = _number(row.get("forward_factor"), "forward_factor", symbol)
        if not math.isfinite(factor) or factor <= 0:
            raise SchemaError(f"a forward_factor of {symbol} is {factor}", vendor=VENDOR)
        events.append((when, factor))
    events.sort()
    out, cum = [], 1.0
    for when, factor in events:
        cum /= factor
        if start <= when <= end:
            out.append(
                {"symbol": symbol, "ex_date": when, "backward_factor": cum,
                 "forward_factor": factor, "vendor": VENDOR}
            )  # fmt: skip
    return pa.Table.from_pylist(out, schema=target_schema("adj_factors"))

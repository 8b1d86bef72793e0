"""StockTV's wire format (docs/vendors/stocktv.md): answers → payloads or errors, and payloads →
canonical Arrow rows. Pure functions, no I/O, so every mapping is tested on the spec's own
payloads.

Every answer is HTTP 200 with the envelope ``{"code","message","data"}``; the error class
lives in ``code`` (400 permanent, 401 auth, 404 unknown pid, 429 transient). A body that is
not the envelope is malformed, hence transient: a gateway page or a half-written answer.

Shapes are checked where a mistake would store wrong data: a bar without ``time``, a string
where a price belongs, a record without ``id`` is a :class:`SchemaError` and nothing of that
answer is kept. Values are only typed here: NaN prices, high below low and the like pass
through to ``etl.normalize``, which rejects and counts them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import httpx
import pyarrow as pa

from etl.errors import (
    AuthError,
    PermanentVendorError,
    RateLimited,
    SchemaError,
    TransientVendorError,
)
from etl.schema import empty_table
from etl.vendors.base import target_schema

__all__ = [
    "COUNTRIES",
    "INTERVALS",
    "Country",
    "UnknownPid",
    "bar_times",
    "bars_table",
    "canonical",
    "index_row",
    "parse_envelope",
    "stock_row",
    "target_schema",
]

VENDOR: Final = "stocktv"
OK: Final = 200
# Canonical frequency -> ISO-8601 ``interval`` (docs/vendors/README.md "Frequencies").
INTERVALS: Final = {
    "1m": "PT1M", "5m": "PT5M", "15m": "PT15M", "30m": "PT30M", "1h": "PT1H",
    "1d": "P1D", "1w": "P1W", "1M": "P1M",
}  # fmt: skip
_NOT_CODE: Final = re.compile(r"[^A-Z0-9_-]")
_BAR_PRICES: Final = ("open", "high", "low", "close", "volume")


class Country:
    """One country StockTV lists stocks for, and the exchanges of it we use."""

    def __init__(
        self, market: str, country_id: int, exchanges: tuple[int, ...], currency: str
    ) -> None:
        self.market = market
        self.country_id = country_id
        self.exchanges = exchanges  # () = every exchange of the country
        self.currency = currency


# docs/vendors/stocktv.md "Symbols": India NSE only (BSE 74 lists the same names again), US NYSE and
# NASDAQ, Japan every exchange.
COUNTRIES: Final = {
    "IN": Country("IN", 14, (46,), "INR"),
    "US": Country("US", 5, (1, 2), "USD"),
    "JP": Country("JP", 2, (), "JPY"),
}


class UnknownPid(PermanentVendorError):
    """Code 404 ``数据不存在``: the pid is not (or no longer) known; re-sync instruments."""


def canonical(symbol: str, suffix: str) -> str | None:
    """``symbol`` as a canonical ``CODE.SUFFIX``: upper case, every character outside
    ``[A-Z0-9_-]`` turned into ``_`` (``M&M`` → ``M_M.IN``, ``BRK.B`` → ``BRK_B.US``);
    None when nothing usable is left (empty, or longer than a canonical code may be)."""
    code = _NOT_CODE.sub("_", symbol.strip().upper())
    if not code or len(code) > 40 or not code.strip("_"):
        return None
    return f"{code}.{suffix}"


# -- the envelope ---------------------------------------------------------------------------


def parse_envelope(response: httpx.Response) -> Any:
    """``data`` of a successful answer; else the error class of docs/vendors/stocktv.md "Errors"."""
    body = response.json()  # not JSON: the HTTP layer makes it a transient error
    code = body.get("code") if isinstance(body, dict) else None
    if isinstance(code, bool) or not isinstance(code, int):
        raise TransientVendorError(
            f"not a StockTV envelope (HTTP {response.status_code})", vendor=VENDOR
        )
    if code == OK:
        if response.status_code != OK:
            raise TransientVendorError(f"HTTP {response.status_code} with code 200", vendor=VENDOR)
        return body.get("data")
    message = str(body.get("message") or "no message")
    text = f"code {code}: {message}"
    if code == 401:
        raise AuthError(f"StockTV refused the key ({text}): check ETL_STOCKTV_API_KEY")
    if code == 404:
        raise UnknownPid(text, vendor=VENDOR)
    if code == 429:
        raise RateLimited(text, vendor=VENDOR)
    if code >= 500:
        raise TransientVendorError(text, vendor=VENDOR)
    raise PermanentVendorError(text, vendor=VENDOR)  # 400 参数错误 and anything else


# -- instruments ----------------------------------------------------------------------------


def _int(record: Mapping[str, Any], field: str, what: str) -> int:
    value = record.get(field)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SchemaError(f"a {what} record has no integer {field!r}: {value!r}", vendor=VENDOR)
    return value


def _text(record: Mapping[str, Any], field: str, what: str) -> str:
    value = record.get(field)
    if not isinstance(value, str):
        raise SchemaError(f"a {what} record has no string {field!r}: {value!r}", vendor=VENDOR)
    return value


def _name(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def stock_row(record: object, country: Country) -> dict[str, Any] | None:
    """One ``/stock/stocks`` record as an instruments row (``vendor_code`` the vendor's
    symbol, ``vendor_id`` the pid); None for an exchange we do not use or a symbol that
    cannot be made canonical."""
    if not isinstance(record, dict):
        raise SchemaError("a /stock/stocks record is not an object", vendor=VENDOR)
    pid = _int(record, "id", "stock")
    vendor_symbol = _text(record, "symbol", "stock")
    exchange = _int(record, "exchangeId", "stock")
    if country.exchanges and exchange not in country.exchanges:
        return None
    symbol = canonical(vendor_symbol, country.market)
    if symbol is None:
        return None
    extra = {"exchangeId": exchange, "countryId": country.country_id}
    return _row(symbol, country.market, "stock", record, vendor_symbol, pid, extra, country)


def index_row(record: object, country: Country) -> dict[str, Any] | None:
    """One ``/stock/indices`` record as an instruments row ``<symbol>.STOCKTV``."""
    if not isinstance(record, dict):
        raise SchemaError("a /stock/indices record is not an object", vendor=VENDOR)
    pid = _int(record, "id", "index")
    vendor_symbol = _text(record, "symbol", "index")
    symbol = canonical(vendor_symbol, "STOCKTV")
    if symbol is None:
        return None
    extra = {"countryId": country.country_id, "market": country.market}
    return _row(symbol, "STOCKTV", "index", record, vendor_symbol, pid, extra, country)


def _row(
    symbol: str,
    market: str,
    kind: str,
    record: Mapping[str, Any],
    vendor_symbol: str,
    pid: int,
    extra: Mapping[str, Any],
    country: Country,
) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "market": market,
        "name": _name(record.get("name")),
        "type": kind,
        "currency": country.currency,
        "list_date": None,
        "delist_date": None,
        "vendor_code": vendor_symbol,
        "vendor_id": str(pid),
        "vendor_extra": json.dumps(dict(extra), sort_keys=True),
        "vendor": VENDOR,
    }


# -- bars -----------------------------------------------------------------------------------


def _numbers(values: list[Any], field: str, symbol: str) -> pa.Array:
    if any(isinstance(v, str | bool) for v in values):
        raise SchemaError(f"{field} of {symbol} holds a non-number", vendor=VENDOR)
    try:
        return pa.array(values, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
        raise SchemaError(f"{field} of {symbol} holds a non-number: {exc}", vendor=VENDOR) from None


def bar_times(bars: object, symbol: str) -> list[int]:
    """The ``time`` (epoch ms) of every bar of a ``/stock/kline`` answer, checking that
    the answer is a list of bar objects."""
    if not isinstance(bars, list):
        raise SchemaError(f"the kline answer of {symbol} is not a list", vendor=VENDOR)
    times = []
    for bar in bars:
        if not isinstance(bar, dict):
            raise SchemaError(f"a bar of {symbol} is not an object", vendor=VENDOR)
        value = bar.get("time")
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaError(f"a bar of {symbol} has no integer 'time': {value!r}", vendor=VENDOR)
        times.append(value)
    return times


def bars_table(
    bars: Sequence[Mapping[str, Any]], symbol: str, freq: str, zone: str, request_id: str
) -> pa.Table:
    """The bars of one symbol as canonical rows, in the vendor's order.

    ``time`` (epoch ms, bar open) → ``ts``; ``trade_date`` is its date in the exchange's
    zone ``zone`` (for 1d and longer ``time`` is 00:00 local of the first trading day, so
    that is the day itself). ``vo`` 0 or absent → ``amount`` null.
    """
    target = target_schema("klines")
    times = bar_times(list(bars), symbol)
    n = len(times)
    if n == 0:
        return empty_table(target)
    cols: dict[str, pa.Array] = {}
    for field in _BAR_PRICES:
        try:
            cols[field] = _numbers([b[field] for b in bars], field, symbol)
        except KeyError:
            raise SchemaError(f"a bar of {symbol} lacks {field!r}", vendor=VENDOR) from None
    turnover = [b.get("vo") for b in bars]
    amount = _numbers([None if v == 0 else v for v in turnover], "vo", symbol)
    import pyarrow.compute as pc  # with the answer: not on the way to the first request

    ts = pc.multiply(pa.array(times, pa.int64()), 1000).cast(pa.timestamp("us", tz="UTC"))
    local = pc.local_timestamp(ts.cast(pa.timestamp("us", tz=zone)))
    columns: dict[str, Any] = {
        "symbol": pa.array([symbol] * n, pa.string()),
        "freq": pa.array([freq] * n, pa.string()),
        "ts": ts,
        "trade_date": local.cast(pa.date32()),
        **cols,
        "amount": amount,
        "settle": pa.nulls(n, pa.float64()),
        "open_interest": pa.nulls(n, pa.float64()),
        "vendor": pa.array([VENDOR] * n, pa.string()),
        "request_id": pa.array([request_id] * n, pa.string()),
        "source": pa.array(["rest"] * n, pa.string()),
    }
    return pa.Table.from_pydict({f.name: columns[f.name] for f in target}, target)

"""mdapi's wire format (docs/vendors/mdapi.md): answers → payloads or errors, vendor codes ↔
canonical symbols, bar rows → canonical Arrow rows. Pure functions, no I/O, so every mapping is
tested on the vendor document's own payloads.

Shapes are checked where a mistake would store wrong data: a bar that is not an array of at
least 6 elements, an epoch that is not an integer, a string where a price belongs is a
:class:`SchemaError`, and nothing of that answer is kept. Values are only typed here: NaN
prices, high below low and the like pass through to ``etl.normalize``, which rejects and counts
them. Element 5 of a bar (the local time as text) is never read for the time: element 0 is.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Final, NamedTuple

import httpx
import numpy as np
import pyarrow as pa

from etl.errors import (
    AuthError,
    PermanentVendorError,
    RateLimited,
    SchemaError,
    TransientVendorError,
    VendorError,
)
from etl.schema import empty_table
from etl.vendors.base import target_schema
from etl.vendors.mdapi.window import bar_ends_ms, epoch_days, epoch_ms

__all__ = [
    "CATEGORY_TYPES",
    "VENDOR",
    "Bar",
    "IpRefused",
    "Quote",
    "UnknownProduct",
    "bars_table",
    "decode_bars",
    "guess_code",
    "instrument_row",
    "parse_bars",
    "parse_envelope",
    "parse_quote",
    "symbol_for",
    "target_schema",
]

VENDOR: Final = "mdapi"
# /getCategory.php ids (documented list) -> instruments ``type``.
CATEGORY_TYPES: Final = {"1": "forex", "2": "future", "3": "future", "4": "crypto", "7": "future"}
CRYPTO_CATEGORY: Final = "4"
ALLOW_LIST_HINT: Final = (
    "ask mdapi (脉动数据) customer service to allow-list this server's public IP address "
    "(对接前请联系客服授权您的服务器IP)"
)
_FX_RE: Final = re.compile(r"^fx_s([a-z]{6})$")
_CRYPTO_RE: Final = re.compile(r"^[a-z0-9]+usdt$")
_NOT_CODE: Final = re.compile(r"[^A-Z0-9_-]")
_SNIPPET: Final = 80
_OHLC: Final = ("open", "high", "low", "close")
_EPOCH: Final = dt.date(1970, 1, 1)


class IpRefused(AuthError):
    """Code 403 ``IP未授权``: this server's IP is not allow-listed (exit 3)."""


class UnknownProduct(PermanentVendorError):
    """Code 404 ``产品不存在``: mdapi has no product with that code."""


# -- codes and symbols ---------------------------------------------------------------------


def symbol_for(code: str, category: str | None = None) -> str | None:
    """The canonical symbol of a vendor code (docs/vendors/mdapi.md "Symbols"), or None if the
    code cannot make one: category 4 or ``…usdt`` → ``.CC``, ``fx_s`` + a pair → ``.FX``,
    anything else upper case + ``.MDAPI``; characters outside ``[A-Z0-9_-]`` become ``_``."""
    fx = _FX_RE.match(code)
    if fx and category != CRYPTO_CATEGORY:
        return f"{fx[1].upper()}.FX"
    crypto = category == CRYPTO_CATEGORY or _CRYPTO_RE.match(code) is not None
    canonical = _NOT_CODE.sub("_", code.strip().upper())
    if not 1 <= len(canonical) <= 40:
        return None
    return f"{canonical}.{'CC' if crypto else 'MDAPI'}"


def guess_code(symbol: str) -> str:
    """The vendor code a symbol most likely has when the instruments map does not know it:
    the inverse of :func:`symbol_for` for ``.CC`` and ``.FX``; for ``.MDAPI`` the code as it
    is (upper-casing is lossy, so this can miss; the vendor then answers 产品不存在)."""
    code, exchange = symbol.rsplit(".", 1)
    if exchange == "FX" and re.fullmatch(r"[A-Z]{6}", code):
        return f"fx_s{code.lower()}"
    if exchange == "CC":
        return code.lower()
    return code


# -- answers -> payloads or errors ----------------------------------------------------------


def _code_of(body: Mapping[str, Any]) -> int | None:
    code = body.get("code")
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.strip().isdigit():
        return int(code)
    return None


def error_for(code: int, message: str) -> VendorError | IpRefused:
    """The errors table of docs/vendors/mdapi.md: the class of an envelope's error ``code``."""
    text = f"{code} {message or 'no message'}"
    if code == 403:
        return IpRefused(
            f"mdapi refused this server's IP ({text}): {ALLOW_LIST_HINT}", vendor=VENDOR
        )
    if code == 404:
        return UnknownProduct(text, vendor=VENDOR)
    if code == 429:
        return RateLimited(text, vendor=VENDOR)  # the shared layer bans the bucket for 10 s
    if code >= 500:
        return TransientVendorError(text, vendor=VENDOR)
    return PermanentVendorError(text, vendor=VENDOR)  # 400 参数错误 and anything else


def _http_status(response: httpx.Response) -> None:
    """Vendor errors come as HTTP 200 envelopes; another status is a proxy or a wrong URL
    (5xx and 429 never get here: the shared layer retries them)."""
    status = response.status_code
    if status == 200:
        return
    if status in (401, 403):
        raise IpRefused(f"mdapi answered HTTP {status}: {ALLOW_LIST_HINT}", vendor=VENDOR)
    raise PermanentVendorError(f"HTTP {status} (is ETL_MDAPI_BASE_URL right?)", vendor=VENDOR)


def _envelope_error(body: object) -> VendorError | IpRefused | None:
    """The error an envelope carries, or None if ``body`` is not an error envelope."""
    if not isinstance(body, dict):
        return None
    code = _code_of(body)
    if code is None or code == 200:
        return None
    return error_for(code, str(body.get("msg") or ""))


def parse_envelope(response: httpx.Response) -> Any:
    """``data`` of a successful ``{"code":200,"msg":"success","data":…}``, else its error."""
    _http_status(response)
    body = response.json()
    error = _envelope_error(body)
    if error is not None:
        raise error
    if not isinstance(body, dict) or _code_of(body) != 200:
        raise SchemaError(f"not an mdapi envelope: {_snip(body)}", vendor=VENDOR)
    return body.get("data")


def parse_bars(response: httpx.Response) -> list[Any]:
    """The bare array ``redis.php`` answers; anything that is not an array is an error: the
    envelope's if it carries one, else a schema error."""
    _http_status(response)
    body = response.json()
    if isinstance(body, list):
        return body
    error = _envelope_error(body)
    if error is not None:
        raise error
    raise SchemaError(f"redis.php answered {_snip(body)}, not an array of bars", vendor=VENDOR)


def _snip(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SNIPPET else text[:_SNIPPET] + "…"


# -- bars -------------------------------------------------------------------------------------


class Bar(NamedTuple):
    """One decoded bar row: ``ms`` the open instant (epoch ms, UTC), values as the vendor
    sent them (a NaN stays NaN), ``volume`` None where the row has none."""

    ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float | None


_NUMBER_TYPES: Final = frozenset({int, float})  # bool is not one: type(True) is bool


def _number(value: object, what: str, code: str) -> float:
    if type(value) not in _NUMBER_TYPES:
        raise SchemaError(f"{what} of a {code} bar is not a number: {_snip(value)}", vendor=VENDOR)
    return float(value)  # type: ignore[arg-type]


def _numbers(values: list[Any], what: str, code: str, *, nullable: bool = False) -> list[Any]:
    """``values`` if every one is a JSON number (or null where allowed), else a SchemaError
    naming the first one that is not (checked by type, column-wise: answers are long)."""
    allowed = _NUMBER_TYPES | {type(None)} if nullable else _NUMBER_TYPES
    if not {type(v) for v in values} <= allowed:
        bad = next(v for v in values if type(v) not in allowed)
        raise SchemaError(f"{what} of a {code} bar is not a number: {_snip(bad)}", vendor=VENDOR)
    return values


def decode_bars(rows: Sequence[Any], code: str, *, volume: bool) -> list[Bar]:
    """Typed bars of a ``redis.php`` array, in the vendor's order. Element 0 (epoch ms) is
    the time; element 5 (the same instant as text) is not read, so a row where it disagrees
    counts by element 0. Rows of 6 elements (old ones) have no volume, elements after the 7th
    are ignored, and ``volume=False`` (FX: the vendor sends 0) makes every volume None."""
    bad = next((r for r in rows if type(r) is not list or len(r) < 6), None)
    if bad is not None:
        raise SchemaError(
            f"a {code} bar is not an array of 6 or 7 elements: {_snip(bad)}", vendor=VENDOR
        )
    times = [r[0] for r in rows]
    odd = next((t for t in times if type(t) is not int), None)
    if odd is not None:
        raise SchemaError(f"a {code} bar time is not epoch ms: {_snip(odd)}", vendor=VENDOR)
    o, h, low, c = (_numbers([r[i] for r in rows], n, code) for i, n in enumerate(_OHLC, 1))
    vols: list[Any] = [None] * len(rows)
    if volume:
        vols = _numbers([r[6] if len(r) > 6 else None for r in rows], "volume", code, nullable=True)
    return [
        Bar(t, float(a), float(b), float(d), float(e), None if v is None else float(v))
        for t, a, b, d, e, v in zip(times, o, h, low, c, vols, strict=True)
    ]


def bars_table(
    bars: Sequence[Bar],
    symbol: str,
    freq: str,
    *,
    start: dt.date,
    end: dt.date,
    now: dt.datetime,
    request_id: str,
) -> pa.Table:
    """Canonical rows of one answer's bars: ascending by time, an exact copy kept once (copies
    that disagree both stay, for validation to reject: we never pick a vendor value), the bar
    still forming at ``now`` dropped, and only trade dates in ``[start, end]`` (an answer is
    the whole window, whatever range was asked)."""
    unique = list(dict.fromkeys(sorted(bars, key=itemgetter(0))))  # exact copies once
    target = target_schema("klines")
    if not unique:
        return empty_table(target)
    ms_, open_, high, low, close, volume = zip(*unique, strict=True)
    ms = np.array(ms_, dtype=np.int64)
    days = epoch_days(ms)
    keep = (
        (bar_ends_ms(ms, freq) <= epoch_ms(now))
        & (days >= (start - _EPOCH).days)
        & (days <= (end - _EPOCH).days)
    )
    mask = pa.array(keep)
    n = int(keep.sum())
    columns: dict[str, Any] = {
        "symbol": pa.array([symbol] * n, pa.string()),
        "freq": pa.array([freq] * n, pa.string()),
        "ts": pa.array(ms[keep] * 1000, pa.timestamp("us", tz="UTC")),
        "trade_date": pa.array(days[keep].astype(np.int32), pa.date32()),
        "vendor": pa.array([VENDOR] * n, pa.string()),
        "request_id": pa.array([request_id] * n, pa.string()),
        "source": pa.array(["rest"] * n, pa.string()),
    }
    for name, values in (("open", open_), ("high", high), ("low", low), ("close", close),
                         ("volume", volume)):  # fmt: skip
        columns[name] = pa.array(values, pa.float64()).filter(mask)
    for name in ("amount", "settle", "open_interest"):  # mdapi has no turnover; no futures data
        columns[name] = pa.nulls(n, pa.float64())
    return pa.Table.from_pydict({f.name: columns[f.name] for f in target}, target)


# -- quotes and instruments -------------------------------------------------------------------

_QUOTE_NUMBERS: Final = ("Price", "Open", "LastClose", "High", "Low")


@dataclass(frozen=True)
class Quote:
    """The fields of a quote object the warehouse uses (``getQuote.php`` and WebSocket
    ``body``); ``time`` is ``LastTime`` (epoch s) as a UTC instant."""

    code: str
    price: float
    open: float
    high: float
    low: float
    last_close: float
    time: dt.datetime
    total_volume: float | None


def parse_quote(data: object) -> Quote:
    """``data.body`` of a ``getQuote.php`` answer (or a WebSocket push's ``body``)."""
    body = data.get("body") if isinstance(data, dict) else None
    if not isinstance(body, dict):
        raise SchemaError(f"a quote answer without a body object: {_snip(data)}", vendor=VENDOR)
    missing = [k for k in ("StockCode", *_QUOTE_NUMBERS, "LastTime") if k not in body]
    if missing:
        raise SchemaError(f"a quote body lacks {missing}", vendor=VENDOR)
    code = str(body["StockCode"])
    values = [_number(body[k], k, code) for k in _QUOTE_NUMBERS]
    try:
        seconds = int(str(body["LastTime"]))
    except ValueError:
        raise SchemaError(f"LastTime is not epoch seconds: {body['LastTime']!r}") from None
    total = body.get("TotalVol")
    return Quote(
        code=code,
        price=values[0],
        open=values[1],
        last_close=values[2],
        high=values[3],
        low=values[4],
        time=dt.datetime.fromtimestamp(seconds, dt.UTC),
        total_volume=None if total is None else _number(total, "TotalVol", code),
    )


def instrument_row(code: str, name: object, category: str) -> dict[str, Any] | None:
    """One ``instruments`` row for a listed code, or None if it makes no canonical symbol."""
    symbol = symbol_for(code, category)
    if symbol is None:
        return None
    exchange = symbol.rsplit(".", 1)[1]
    kind = CATEGORY_TYPES.get(category, "other")
    currency = None
    if exchange == "FX":
        currency = symbol[3:6]
    elif exchange == "CC" and symbol.endswith("USDT.CC"):
        currency = "USDT"
    return {
        "symbol": symbol,
        "market": exchange,
        "name": None if name is None else str(name),
        "type": kind,
        "currency": currency,
        "list_date": None,
        "delist_date": None,
        "vendor_code": code,
        "vendor_id": None,
        "vendor_extra": json.dumps({"category": category}, separators=(",", ":")),
        "vendor": VENDOR,
    }

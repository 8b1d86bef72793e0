"""AmazingData's wire format (docs/vendors/amazingdata.md): answers → payloads or errors, and
payloads → canonical Arrow tables. Pure functions, no I/O, so every mapping is tested on the
spec's own payloads.

Shapes are checked where a mistake would store wrong data: a bar without ``trade_date``, a
statement row without ``REPORTING_PERIOD``, a string where a number belongs is a
:class:`SchemaError` and nothing of that answer is kept. Values are only typed here: NaN
prices, high below low and the like pass through to ``etl.normalize``, which rejects and
counts them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
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
from etl.vendors.amazingdata import api
from etl.vendors.base import target_schema
from etl.vendors.http import SessionExpired

__all__ = [
    "INFO_FIELDS",
    "PERIODS",
    "STATEMENT_PATHS",
    "UnknownCode",
    "bars_table",
    "cached_info",
    "calendar_table",
    "instrument_row",
    "parse_envelope",
    "parse_login",
    "parse_ymd",
    "statement_items",
    "statements_table",
    "ymd",
]

VENDOR: Final = "amazingdata"
ZONE: Final = "Asia/Shanghai"  # every AmazingData market (SH SZ BJ CFE)
# The API's shapes (paths, periods, statement fields) live in :mod:`.api`, shared with the
# emulator and ``etl serve``; this module only decodes.
PERIODS: Final = api.FREQ_PERIODS  # canonical frequency -> period
STATEMENT_PATHS: Final = api.FINANCE_PATHS
_IDENTITY: Final = api.STATEMENT_IDENTITY
_STATEMENT_KEY: Final = api.STATEMENT_KEY
_STATEMENT_DATES: Final = api.STATEMENT_DATES
_BAR_REQUIRED: Final = ("trade_date", "open", "high", "low", "close", "volume")
# ``/base/codes/{code}/info`` fields an instruments row needs, kept in ``vendor_extra``.
INFO_FIELDS: Final = api.INFO_FIELDS


class UnknownCode(PermanentVendorError):
    """HTTP 404 ``代码不存在``: no code of the call is known (or the code of an info call)."""


ymd = api.ymd


def parse_ymd(value: object, field: str, *, required: bool = True) -> dt.date | None:
    """A ``YYYYMMDD`` string as a date; null where allowed; anything else a SchemaError."""
    if value is None and not required:
        return None
    if isinstance(value, str) and len(value) == 8 and value.isdigit():
        try:
            return dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
        except ValueError:
            pass
    raise SchemaError(f"{field} is not a YYYYMMDD date: {value!r}", vendor=VENDOR)


def _envelope(response: httpx.Response) -> tuple[int, str, Any]:
    body = response.json()
    if not isinstance(body, dict) or "code" not in body:
        # A proxy page or a half-written answer rather than the platform's envelope.
        raise TransientVendorError(
            f"not an AmazingData envelope (HTTP {response.status_code})", vendor=VENDOR
        )
    code = body["code"]
    if isinstance(code, bool) or not isinstance(code, int):
        code = response.status_code
    return code, str(body.get("message") or ""), body.get("data")


def parse_envelope(response: httpx.Response) -> Any:
    """``data`` of a successful answer, else the errors table's class."""
    status = response.status_code
    if status == 401:
        raise SessionExpired(f"HTTP 401: {_message(response)}", vendor=VENDOR)
    code, message, data = _envelope(response)
    if code == 200 and status < 300:
        return data
    text = f"HTTP {status}: {message or 'no message'}"
    if code == 401:
        raise SessionExpired(text, vendor=VENDOR)
    if code == 404:
        raise UnknownCode(text, vendor=VENDOR)
    if code == 429:
        raise RateLimited(text, vendor=VENDOR)
    if code >= 500:
        raise TransientVendorError(text, vendor=VENDOR)
    raise PermanentVendorError(text, vendor=VENDOR)  # 400 参数错误 and anything else


def _message(response: httpx.Response) -> str:
    try:
        return _envelope(response)[1] or "refused"
    except (ValueError, TransientVendorError):
        return "refused"


def parse_login(response: httpx.Response) -> str:
    """The access token of a login answer. A refusal is an :class:`AuthError` (exit 3),
    never :class:`SessionExpired`: logging in again cannot fix wrong credentials."""
    if response.status_code == 401:
        raise AuthError(
            f"AmazingData refused the login ({_message(response)}): check "
            "ETL_AMAZINGDATA_USERNAME and ETL_AMAZINGDATA_PASSWORD",
            vendor=VENDOR,
        )
    try:
        data = parse_envelope(response)
    except SessionExpired as exc:  # code 401 inside an HTTP 200
        raise AuthError(f"AmazingData refused the login ({exc.bare_message})") from None
    token = data.get("access_token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise SchemaError("the login answer has no access_token", vendor=VENDOR)
    return token


def _column(rows: Sequence[Mapping[str, Any]], field: str, code: str) -> list[Any]:
    try:
        return [row[field] for row in rows]
    except KeyError:
        raise SchemaError(f"a bar of {code} lacks {field!r}", vendor=VENDOR) from None
    except TypeError:
        raise SchemaError(f"the bars of {code} are not objects", vendor=VENDOR) from None


def _numbers(values: list[Any], field: str) -> pa.Array:
    if any(isinstance(v, str | bool) for v in values):
        raise SchemaError(f"{field} holds a non-number", vendor=VENDOR)
    try:
        return pa.array(values, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
        raise SchemaError(f"{field} holds a non-number: {exc}", vendor=VENDOR) from None


def bars_table(
    payload: Mapping[str, Any],
    codes: Iterable[str],
    freq: str,
    *,
    futures: bool,
    request_id: str,
) -> pa.Table:
    """The bars of ``codes`` in a kline answer, as canonical rows (in the vendor's order).

    ``trade_date`` is a bar start in Asia/Shanghai for minute periods (``2024-01-02 09:30:00``
    → 01:30Z), a day otherwise (→ 00:00 Asia/Shanghai, 16:00Z the day before).
    """
    import pyarrow.compute as pc  # with the answer: not on the way to the first request

    target = target_schema("klines")
    parts: list[pa.Table] = []
    minute = PERIODS[freq].startswith("min")
    fmt = "%Y-%m-%d %H:%M:%S" if minute else "%Y-%m-%d"
    for code in codes:
        bars = payload.get(code)
        if not bars:
            continue
        if not isinstance(bars, list):
            raise SchemaError(f"the bars of {code} are not a list", vendor=VENDOR)
        cols = {name: _column(bars, name, code) for name in _BAR_REQUIRED}
        texts = cols.pop("trade_date")
        if not all(isinstance(t, str) for t in texts):
            raise SchemaError(f"trade_date of {code} is not a string", vendor=VENDOR)
        try:
            local = pc.strptime(pa.array(texts, pa.string()), format=fmt, unit="s")
        except pa.ArrowInvalid as exc:
            raise SchemaError(f"trade_date of {code} is not {fmt}: {exc}", vendor=VENDOR) from None
        n = len(bars)
        optional = ("amount", "settle", "open_interest") if futures else ("amount",)
        columns: dict[str, Any] = {
            "symbol": pa.array([code] * n, pa.string()),
            "freq": pa.array([freq] * n, pa.string()),
            "ts": pc.assume_timezone(local, timezone=ZONE).cast(pa.timestamp("us", tz="UTC")),
            "trade_date": local.cast(pa.date32()),
            **{name: _numbers(values, name) for name, values in cols.items()},
            **{name: _numbers([b.get(name) for b in bars], name) for name in optional},
            "vendor": pa.array([VENDOR] * n, pa.string()),
            "request_id": pa.array([request_id] * n, pa.string()),
            "source": pa.array(["rest"] * n, pa.string()),
        }
        for name in ("amount", "settle", "open_interest"):
            columns.setdefault(name, pa.nulls(n, pa.float64()))
        parts.append(pa.Table.from_pydict({f.name: columns[f.name] for f in target}, target))
    return pa.concat_tables(parts) if parts else empty_table(target)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def statement_items(dataset: str) -> list[str]:
    """The dataset's item columns (lower case; upper case on the wire): its float columns."""
    target = target_schema(dataset)
    return [f.name for f in target if pa.types.is_floating(f.type) and f.name not in _IDENTITY]


def statements_table(dataset: str, payload: Mapping[str, Any], codes: Iterable[str]) -> pa.Table:
    """Every row (every version) of ``codes`` in a finance answer, as canonical rows: identity
    columns typed, items (the schema's float columns, upper-cased on the wire) as floats,
    other fields ignored. A row without a version-key field is a SchemaError."""
    target = target_schema(dataset)
    items = statement_items(dataset)
    out: list[dict[str, Any]] = []
    for code in codes:
        rows = payload.get(code) or []
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise SchemaError(f"the {dataset} rows of {code} are not a list of objects")
        for row in rows:
            missing = [k for k in _STATEMENT_KEY if k not in row]
            if missing:
                raise SchemaError(f"a {dataset} row of {code} lacks {missing}", vendor=VENDOR)
            record: dict[str, Any] = {"symbol": code, "vendor": VENDOR}
            for column, wire in _IDENTITY.items():
                value = row.get(wire)
                if column in _STATEMENT_DATES:
                    record[column] = parse_ymd(value, wire, required=wire in _STATEMENT_KEY)
                else:
                    record[column] = _text(value)
            for column in items:
                record[column] = row.get(column.upper())
            out.append(record)
    for column in items:
        _numbers([r[column] for r in out], column.upper())
    return pa.Table.from_pylist(out, schema=target)


def calendar_table(market: str, start: dt.date, end: dt.date, days: object) -> pa.Table:
    """One row per calendar day of ``[start, end]`` (both inclusive); ``is_open`` where the
    answer lists the day. China has no early closes, so ``is_half_day`` is always false."""
    if not isinstance(days, list):
        raise SchemaError("the calendar answer is not a list", vendor=VENDOR)
    open_days = {parse_ymd(d, "calendar day") for d in days}
    every = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    return pa.Table.from_pydict(
        {
            "market": [market] * len(every),
            "trade_date": every,
            "is_open": [d in open_days for d in every],
            "is_half_day": [False] * len(every),
            "vendor": [VENDOR] * len(every),
        },
        schema=target_schema("calendar"),
    )


def instrument_row(code: str, kind: str, info: Any) -> dict[str, Any]:
    """One instruments row from today's list (``kind``) and the code's ``info`` answer (None
    when it could not be had). The info fields also go to ``vendor_extra``, so that the next
    sync can build the row again without asking (:func:`cached_info`)."""
    found = info if isinstance(info, dict) else None
    fields = found or {}
    return {
        "symbol": code,
        "market": code.rsplit(".", 1)[-1],
        "name": fields.get("name"),
        "type": fields.get("type") or kind,
        "currency": "CNY",
        "list_date": parse_ymd(fields.get("list_date"), "list_date", required=False),
        "delist_date": parse_ymd(fields.get("delist_date"), "delist_date", required=False),
        "vendor_code": code,
        "vendor_id": None,
        "vendor_extra": None if found is None else json.dumps(
            {k: found.get(k) for k in INFO_FIELDS}, ensure_ascii=False, sort_keys=True
        ),
        "vendor": VENDOR,
    }  # fmt: skip


def cached_info(extra: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The ``info`` fields an earlier sync kept in ``vendor_extra`` (decoded), in the wire's
    own form; None if they are absent or malformed, so that the code is asked again."""
    if not extra or not all(k in extra for k in INFO_FIELDS):
        return None
    if not all(extra[k] is None or isinstance(extra[k], str) for k in INFO_FIELDS):
        return None
    try:
        for k in ("list_date", "delist_date"):
            parse_ymd(extra[k], k, required=False)
    except SchemaError:
        return None
    return {k: extra[k] for k in INFO_FIELDS}


def factors_table(payload: Mapping[str, Any], codes: Iterable[str]) -> pa.Table:
    """``/stock/adj-factor``'s ``data.{code}`` rows as canonical ``adj_factors`` rows (backward
    factors; AmazingData sends no per-event factor, so ``forward_factor`` stays null)."""
    out: list[dict[str, Any]] = []
    for code in codes:
        rows = payload.get(code) or []
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise SchemaError(f"the adjustment factors of {code} are not a list of objects")
        for row in rows:
            factor = row.get("backward_factor")
            if isinstance(factor, bool) or not isinstance(factor, int | float):
                raise SchemaError(
                    f"a backward_factor of {code} is {factor!r}, not a number", vendor=VENDOR
                )
            out.append(
                {
                    "symbol": code,
                    "ex_date": parse_ymd(row.get("trade_date"), "trade_date"),
                    "backward_factor": float(factor),
                    "forward_factor": None,
                    "vendor": VENDOR,
                }
            )
    return pa.Table.from_pylist(out, schema=target_schema("adj_factors"))

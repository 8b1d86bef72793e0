"""The AmazingData platform API as data: paths, parameters, limits, messages and wire forms.

Three parties speak this API: the adapter reads it (:mod:`.wire` decodes answers into lake
rows), the emulator imitates it over synthetic data (``etl.emulators.amazingdata``), and
``etl serve`` answers it from the lake (``etl.server``). Everything the three must agree on
lives here once, so they cannot drift apart:

- the paths, the envelope ``{"code", "message", "data"}`` and its messages;
- how a request's parameters are read and checked (:func:`kline_query`, :func:`finance_query`,
  :func:`calendar_query`): a bad one raises :class:`ParamError` naming it, which every
  answering party turns into ``400 参数错误: <param>``;
- how a bar, a statement row and a code's info are written on the wire (:func:`encode_bar`,
  :func:`encode_statement`, :func:`encode_info`), the exact inverse of :mod:`.wire`'s
  decoding, so a warehouse's answers read back into the same lake rows (federation).

Wire rules (the platform document, plus the conventions the team fixed where it is silent):
dates ``YYYYMMDD``; ``trade_date`` ``YYYY-MM-DD`` for daily and longer, ``YYYY-MM-DD HH:MM:SS``
Asia/Shanghai bar start for minute periods; ``volume`` and ``open_interest`` whole numbers;
``settle`` null on minute bars; statement identity columns strings, items upper case.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson

__all__ = [
    "ADJ_FACTOR_PATH",
    "BAR_FIELDS",
    "BASE_PATH",
    "CALENDAR_MARKETS",
    "FINANCE_PATHS",
    "FREQ_PERIODS",
    "FUTURE_BAR_FIELDS",
    "INFO_FIELDS",
    "MAX_CODES",
    "MAX_FACTOR_CODES",
    "MAX_MINUTE_DAYS",
    "MSG_LOGIN_FAILED",
    "MSG_LOGIN_OK",
    "MSG_OK",
    "MSG_SDK",
    "MSG_TOKEN",
    "MSG_TOO_MANY",
    "PERIODS",
    "SECURITY_TYPES",
    "STATEMENT_IDENTITY",
    "STATEMENT_KEY",
    "KlineQuery",
    "ParamError",
    "adj_factor_query",
    "bar_label",
    "bar_label_texts",
    "bars_json",
    "calendar_query",
    "encode_bar",
    "encode_bars",
    "encode_factor",
    "encode_info",
    "encode_statement",
    "envelope",
    "finance_query",
    "kline_query",
    "param_message",
    "parse_codes",
    "parse_ymd_param",
    "security_type",
    "unknown_message",
    "ymd",
]

BASE_PATH: Final = "/api/v1"
# Backward adjustment factors (convention: not in the platform document): sparse, so the
# kline limits do not apply; a request still names a bounded number of codes.
ADJ_FACTOR_PATH: Final = "/stock/adj-factor"
MAX_FACTOR_CODES: Final = 1000
MAX_CODES: Final = 50  # codes per kline or finance call (convention)
MAX_MINUTE_DAYS: Final = 31  # calendar days per minute-period call, both ends counted

# period (wire) -> canonical frequency, and back.
PERIODS: Final = {
    "min1": "1m", "min5": "5m", "min15": "15m", "min30": "30m", "min60": "1h",
    "daily": "1d", "weekly": "1w", "monthly": "1M",
}  # fmt: skip
FREQ_PERIODS: Final = {freq: period for period, freq in PERIODS.items()}

# A bar's fields on the wire, in order: stocks' seven, futures' nine.
BAR_FIELDS: Final = ("trade_date", "open", "high", "low", "close", "volume", "amount")
FUTURE_BAR_FIELDS: Final = (*BAR_FIELDS, "settle", "open_interest")
# /base/codes security_type -> instruments ``type`` and the markets it covers.
SECURITY_TYPES: Final = {
    "EXTRA_STOCK_A": ("stock", ("SH", "SZ", "BJ")),
    "EXTRA_ETF": ("etf", ("SH", "SZ", "BJ")),
    "EXTRA_INDEX_A": ("index", ("SH", "SZ", "BJ")),
    "EXTRA_FUTURE": ("future", ("CFE",)),
}
CALENDAR_MARKETS: Final = ("SH", "SZ", "CFE")
# lake dataset -> path of its statement endpoint.
FINANCE_PATHS: Final = {
    "balance_sheet": "/finance/balance-sheet",
    "income": "/finance/income",
    "cash_flow": "/finance/cash-flow",
}
# Statement identity columns: lake column -> wire field. The symbol is the answer's key
# (and ``MARKET_CODE``); items are the dataset's float columns, upper-cased on the wire.
STATEMENT_IDENTITY: Final = {
    "security_name": "SECURITY_NAME",
    "statement_type": "STATEMENT_TYPE",
    "report_type": "REPORT_TYPE",
    "reporting_period": "REPORTING_PERIOD",
    "ann_date": "ANN_DATE",
    "actual_ann_date": "ACTUAL_ANN_DATE",
    "comp_type_code": "COMP_TYPE_CODE",
    "currency": "CURRENCY_CODE",
}
STATEMENT_KEY: Final = ("REPORTING_PERIOD", "STATEMENT_TYPE", "ACTUAL_ANN_DATE")
STATEMENT_DATES: Final = frozenset({"reporting_period", "ann_date", "actual_ann_date"})
# ``/base/codes/{code}/info`` fields besides ``code`` and ``market``.
INFO_FIELDS: Final = ("name", "type", "list_date", "delist_date")

MSG_OK: Final = "success"
MSG_LOGIN_OK: Final = "登录成功"
MSG_LOGIN_FAILED: Final = "用户名或密码错误"
MSG_TOKEN: Final = "Token无效或已过期"  # noqa: S105 - a message, not a secret
MSG_TOO_MANY: Final = "请求过于频繁"
MSG_SDK: Final = "SDK调用失败"

_YMD: Final = re.compile(r"\d{8}")
_SHANGHAI: Final = dt.timezone(dt.timedelta(hours=8))  # China keeps no daylight saving


class ParamError(Exception):
    """A request parameter is missing or wrong: ``400 参数错误: <param>``."""

    def __init__(self, param: str) -> None:
        super().__init__(param)
        self.param = param


def envelope(code: int, message: str, data: Any) -> dict[str, Any]:
    """The platform's answer body; ``code`` equals the HTTP status (convention)."""
    return {"code": code, "message": message, "data": data}


def param_message(param: str) -> str:
    return f"参数错误: {param}"


def unknown_message(codes: Sequence[str]) -> str:
    return f"代码不存在: {','.join(codes)}"


def ymd(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


# -- requests --------------------------------------------------------------------------------


def parse_ymd_param(value: object, name: str, *, required: bool = True) -> dt.date | None:
    """A ``YYYYMMDD`` parameter as a date (None where optional and absent)."""
    if value is None and not required:
        return None
    if not isinstance(value, str) or not _YMD.fullmatch(value):
        raise ParamError(name)
    try:
        return dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        raise ParamError(name) from None


def parse_codes(values: Sequence[object], *, limit: int = MAX_CODES) -> list[str]:
    """The requested codes, first-seen order, blanks dropped: 1 to ``limit``.

    Codes are only compared with known ones by whoever answers, never used as paths or SQL.
    """
    if not all(isinstance(v, str) for v in values):
        raise ParamError("codes")
    found = list(dict.fromkeys(str(v).strip() for v in values if str(v).strip()))
    if not found or len(found) > limit:
        raise ParamError("codes")
    return found


def _range(query: Mapping[str, Any]) -> tuple[dt.date, dt.date]:
    start = parse_ymd_param(query.get("start_date"), "start_date")
    end = parse_ymd_param(query.get("end_date"), "end_date")
    assert start is not None and end is not None
    return start, end


@dataclass(frozen=True)
class KlineQuery:
    """A checked kline request: ``/stock/kline``, ``/future/kline`` or the batch form."""

    codes: list[str]
    start: dt.date
    end: dt.date
    period: str

    @property
    def freq(self) -> str:
        return PERIODS[self.period]


def kline_query(query: Mapping[str, Any], *, batch: bool) -> KlineQuery:
    """Check a kline request: ``query`` is the query string (GET) or the JSON body (batch).

    The first wrong parameter is named: ``body``, ``codes`` (missing, > 50), ``start_date``
    (missing, not ``YYYYMMDD``, after ``end_date``), ``end_date`` (missing, bad, a minute
    span over 31 calendar days), ``period`` (the batch form defaults to ``daily``).
    """
    if batch:
        if not isinstance(query, Mapping):
            raise ParamError("body")
        listed = query.get("codes")
        if not isinstance(listed, list):
            raise ParamError("codes")
        codes = parse_codes(listed)
        period = query.get("period", "daily")
    else:
        codes = parse_codes(str(query.get("codes") or "").split(","))
        period = query.get("period")
    start, end = _range(query)
    if not isinstance(period, str) or period not in PERIODS:
        raise ParamError("period")
    if start > end:
        raise ParamError("start_date")
    if period.startswith("min") and (end - start).days + 1 > MAX_MINUTE_DAYS:
        raise ParamError("end_date")
    return KlineQuery(codes, start, end, period)


def finance_query(query: Mapping[str, Any]) -> tuple[list[str], dt.date | None, dt.date | None]:
    """Check a statements request: codes, and an optional reporting-period range."""
    codes = parse_codes(str(query.get("codes") or "").split(","))
    start = parse_ymd_param(query.get("start_date"), "start_date", required=False)
    end = parse_ymd_param(query.get("end_date"), "end_date", required=False)
    if start is not None and end is not None and start > end:
        raise ParamError("start_date")
    return codes, start, end


def adj_factor_query(query: Mapping[str, Any]) -> tuple[list[str], dt.date, dt.date]:
    """Check an adjustment-factor request: codes (up to :data:`MAX_FACTOR_CODES`), then both
    dates of the ex-date range."""
    codes = parse_codes(str(query.get("codes") or "").split(","), limit=MAX_FACTOR_CODES)
    start, end = _range(query)
    if start > end:
        raise ParamError("start_date")
    return codes, start, end


def calendar_query(query: Mapping[str, Any]) -> tuple[str, dt.date, dt.date]:
    """Check a calendar request: market, then both dates (required by convention)."""
    market = query.get("market")
    if market not in CALENDAR_MARKETS:
        raise ParamError("market")
    start, end = _range(query)
    if start > end:
        raise ParamError("start_date")
    return str(market), start, end


def security_type(query: Mapping[str, Any]) -> str:
    value = query.get("security_type")
    if value not in SECURITY_TYPES:
        raise ParamError("security_type")
    return str(value)


# -- answers ---------------------------------------------------------------------------------


def encode_factor(ex_date: dt.date, backward_factor: float) -> dict[str, Any]:
    """One ex-date of ``data.{code}``: the cumulative backward factor in force from then on."""
    return {"trade_date": ymd(ex_date), "backward_factor": backward_factor}


def _whole(value: float | None) -> int | float | None:
    """``volume`` and ``open_interest``: whole numbers on the wire. A value stored with a
    fraction (another vendor's) is sent as it is, so that nothing is lost on the way."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return int(value) if float(value).is_integer() else float(value)


def bar_label(ts: dt.datetime, trade_date: dt.date, period: str) -> str:
    """``trade_date`` on the wire: the bar's start in Asia/Shanghai for minute periods, the
    session date otherwise."""
    if period.startswith("min"):
        return ts.astimezone(_SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    return trade_date.isoformat()


def encode_bar(
    *,
    ts: dt.datetime,
    trade_date: dt.date,
    open: float,
    high: float,
    low: float,
    close: float,
    volume: float | None,
    amount: float | None,
    settle: float | None = None,
    open_interest: float | None = None,
    period: str,
    future: bool,
) -> dict[str, Any]:
    """One bar in the wire form: 7 fields for stocks, 9 with futures' settle and interest."""
    row: dict[str, Any] = {
        "trade_date": bar_label(ts, trade_date, period),
        "open": open,
        "high": high,
        "low": low,
        "close": close,
        "volume": _whole(volume),
        "amount": amount,
    }
    if future:
        row["settle"] = None if period.startswith("min") else settle
        row["open_interest"] = _whole(open_interest)
    return row


def _whole_column(values: Sequence[float | None]) -> list[Any]:
    """:func:`_whole` over a column, with one pass of checks for the usual case (every
    value finite and whole)."""
    try:
        if all(v.is_integer() for v in values):  # type: ignore[union-attr]
            return [int(v) for v in values]  # type: ignore[arg-type]
    except AttributeError:  # a None among them
        pass
    return [_whole(v) for v in values]


def encode_bars(
    *,
    labels: Sequence[str],
    open: Sequence[float],
    high: Sequence[float],
    low: Sequence[float],
    close: Sequence[float],
    volume: Sequence[float | None],
    amount: Sequence[float | None],
    settle: Sequence[float | None] | None = None,
    open_interest: Sequence[float | None] | None = None,
    period: str,
    future: bool,
) -> list[dict[str, Any]]:
    """Bars in the wire form from columns (``labels`` from :func:`bar_label`): the same
    dicts, value for value, as :func:`encode_bar` row by row, in a fraction of the time
    (a server answers bars by the thousand)."""
    volumes = _whole_column(volume)
    if not future:
        return [
            {"trade_date": d, "open": o, "high": h, "low": lo, "close": c, "volume": v,
             "amount": a}
            for d, o, h, lo, c, v, a in zip(
                labels, open, high, low, close, volumes, amount, strict=True
            )
        ]  # fmt: skip
    assert settle is not None and open_interest is not None
    settles = [None] * len(labels) if period.startswith("min") else settle
    interests = _whole_column(open_interest)
    return [
        {"trade_date": d, "open": o, "high": h, "low": lo, "close": c, "volume": v,
         "amount": a, "settle": s, "open_interest": i}
        for d, o, h, lo, c, v, a, s, i in zip(
            labels, open, high, low, close, volumes, amount, settles, interests, strict=True
        )
    ]  # fmt: skip


Floats = npt.NDArray[np.float64]
Instants = npt.NDArray[np.datetime64]
_INT64_BOUND: Final = 2.0**63  # whole numbers at or past it are left to the dict encoder
_DAY_TEXTS: dict[int, bytes] = {}  # days since 1970 -> b'"YYYY-MM-DD"' (a century: 36,525)
_SHANGHAI_OFFSET: Final = np.timedelta64(8, "h")


def bar_label_texts(ts: Instants, trade_date: Instants, period: str) -> list[bytes]:
    """:func:`bar_label` over columns (``ts`` UTC ``datetime64``, ``trade_date``
    ``datetime64[D]``), each label as its JSON text, quotes included. A session date's text
    is remembered (a few thousand of them serve every daily answer): formatting 242 dates
    took longer than writing the bars' numbers."""
    if period.startswith("min"):
        local = (ts + _SHANGHAI_OFFSET).astype("datetime64[s]")
        return [b'"' + text.replace(b"T", b" ") + b'"' for text in
                np.datetime_as_string(local).astype(np.bytes_).tolist()]  # fmt: skip
    days: list[int] = trade_date.astype("datetime64[D]").astype(np.int64).tolist()
    get = _DAY_TEXTS.get
    texts = [get(day) for day in days]
    if None in texts:
        if len(_DAY_TEXTS) > 100_000:
            _DAY_TEXTS.clear()
        for index, day in enumerate(days):
            if texts[index] is None:
                text = dt.date.fromordinal(_EPOCH_ORDINAL + day).isoformat()
                texts[index] = _DAY_TEXTS[day] = b'"' + text.encode() + b'"'
    return texts  # type: ignore[return-value]


_EPOCH_ORDINAL: Final = dt.date(1970, 1, 1).toordinal()


def _tokens(values: Floats | npt.NDArray[np.int64]) -> list[bytes]:
    """Each value's JSON text, as orjson writes it (a NaN or infinity as ``null``).

    Splitting an array's text at its commas is safe: a number or ``null`` holds none."""
    return orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")


def _whole_tokens(values: Floats) -> list[bytes] | None:
    """:func:`_whole` over a column, as JSON texts: finite values as integers, the rest
    ``null``; None when one of them has a fraction or is too large for an int64 (the caller
    then takes the dict encoder, which writes those as they are)."""
    finite = np.isfinite(values)
    kept = values[finite]
    if kept.size and (np.abs(kept).max() >= _INT64_BOUND or (kept != np.trunc(kept)).any()):
        return None
    tokens = _tokens(np.where(finite, values, 0.0).astype(np.int64))
    if kept.size != values.size:
        for index in np.flatnonzero(~finite).tolist():
            tokens[index] = b"null"
    return tokens


def bars_json(
    *,
    labels: Sequence[bytes],
    open: Floats,
    high: Floats,
    low: Floats,
    close: Floats,
    volume: Floats,
    amount: Floats,
    settle: Floats | None = None,
    open_interest: Floats | None = None,
    period: str,
    future: bool,
) -> bytes:
    """``orjson.dumps(encode_bars(...))``, byte for byte, built column by column: each
    column written by orjson at once, the texts then interleaved with the field names
    (:data:`BAR_FIELDS`), so no per-bar dict is made (a server answers bars by the
    thousand: a year of daily bars in 0.1 ms instead of 0.25).

    ``labels`` are :func:`bar_label_texts`; the other columns float64 arrays with NaN where
    a value is missing (polars' ``to_numpy``), as ``encode_bars`` writes None and NaN
    alike: ``null``. A volume or open interest with a fraction or out of int64's range,
    which ``encode_bars`` keeps as it is, is rare enough to be left to ``encode_bars``."""
    n = len(labels)
    if n == 0:
        return b"[]"
    volumes = _whole_tokens(volume)
    interests = _whole_tokens(open_interest) if open_interest is not None and future else []
    if volumes is None or interests is None:
        return orjson.dumps(
            encode_bars(
                labels=[text[1:-1].decode() for text in labels], open=open.tolist(),
                high=high.tolist(), low=low.tolist(), close=close.tolist(),
                volume=volume.tolist(), amount=amount.tolist(),
                settle=None if settle is None else settle.tolist(),
                open_interest=None if open_interest is None else open_interest.tolist(),
                period=period, future=future,
            )
        )  # fmt: skip
    columns = [labels, _tokens(open), _tokens(high), _tokens(low), _tokens(close), volumes]
    columns.append(_tokens(amount))
    if future:
        assert settle is not None
        columns += [[b"null"] * n if period.startswith("min") else _tokens(settle), interests]
    fields = FUTURE_BAR_FIELDS if future else BAR_FIELDS
    # (name, value) pairs row after row, each row's first name closing the row before
    step = 2 * len(fields)
    parts: list[bytes] = [b""] * (step * n)
    for i, (name, column) in enumerate(zip(fields, columns, strict=True)):
        lead = b"},{" if i == 0 else b","
        parts[2 * i :: step] = [lead + b'"' + name.encode() + b'":'] * n
        parts[2 * i + 1 :: step] = column
    return b"[" + b"".join(parts)[2:] + b"}]"


def _wire_date(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.date):
        return ymd(value)
    raise TypeError(f"not a date: {value!r}")


def encode_statement(symbol: str, row: Mapping[str, Any], items: Sequence[str]) -> dict[str, Any]:
    """One statement version in the wire form, from a lake-shaped row (lower-case columns,
    dates as dates): identity columns as strings, ``items`` as numbers or null."""
    out: dict[str, Any] = {"MARKET_CODE": symbol}
    for column, wire in STATEMENT_IDENTITY.items():
        value = row.get(column)
        if column in STATEMENT_DATES:
            out[wire] = _wire_date(value)
        else:
            out[wire] = None if value is None else str(value)
    for item in items:
        value = row.get(item)
        out[item.upper()] = None if value is None else float(value)
    return out


def encode_info(
    code: str,
    *,
    name: str | None,
    market: str,
    type: str | None,
    list_date: dt.date | None,
    delist_date: dt.date | None,
) -> dict[str, Any]:
    """``/base/codes/{code}/info``'s ``data``."""
    return {
        "code": code,
        "name": name,
        "market": market,
        "type": type,
        "list_date": _wire_date(list_date),
        "delist_date": _wire_date(delist_date),
    }

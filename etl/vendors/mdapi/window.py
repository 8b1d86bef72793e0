"""What mdapi serves and when: its capability table and limits, the latest-N-bars window, and
when a bar ends. Pure functions, no I/O.

Every mdapi product trades in whole Asia/Shanghai days (docs/vendors/mdapi.md "Time": CC every
day, FX and ``.MDAPI`` Mon–Fri, each 00:00–24:00), so no calendar is needed: an intraday bar
ends after its length, a 1d bar at the next local midnight, a 1M bar on the 1st of the next
month. Shanghai has kept UTC+8 without daylight saving since 1991, so local time is a fixed
offset here.

mdapi serves only the latest ``rows`` bars of a product (``DEPTH``), newest first; a request
cannot reach further back. :func:`coverage` books a requested range against the oldest bar an
answer holds: older days are unavailable (a capability, never filled), finished days inside the
window are answered, and days not finished at ``now`` are unavailable until a later run.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import numpy as np
import numpy.typing as npt

from etl.vendors.base import Capabilities, DatasetCapability, RateLimits, Span, Unavailable
from etl.vendors.governor import Limit, rate_windows

__all__ = [
    "BAN_SECONDS",
    "DEPTH",
    "EXCHANGES",
    "FREQS",
    "bar_end_ms",
    "bar_ends_ms",
    "capabilities",
    "coverage",
    "epoch_days",
    "epoch_ms",
    "governor_limits",
    "local_day",
]

I64 = npt.NDArray[np.int64]
# The vendor's ``time`` values are the canonical names; there is no 1w.
FREQS: Final = ("1m", "5m", "15m", "30m", "1h", "1d", "1M")
DEPTH: Final = {
    "1m": 600, "5m": 300, "15m": 300, "30m": 300, "1h": 300, "1d": 300, "1M": 100,
}  # fmt: skip
EXCHANGES: Final = frozenset({"CC", "FX", "MDAPI"})
DEFAULT_RATE: Final = 5.0  # redis.php per product code per second (ETL_MDAPI_RATE)
QUOTE_RATE: Final = 3  # getQuote.php per product code per second
LIST_RATE: Final = 2  # getCategory.php + getSymbolList.php together, per client
BAN_SECONDS: Final = 10.0  # a bucket over its limit is refused this long

_OFFSET_MS: Final = 8 * 3_600_000  # Asia/Shanghai, UTC+8 all year
_DAY_MS: Final = 86_400_000
_MINUTES: Final = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60}
_EPOCH: Final = dt.date(1970, 1, 1)
_ONE_DAY: Final = dt.timedelta(days=1)


def local_day(ms: int) -> dt.date:
    """The Asia/Shanghai date of an epoch-ms instant."""
    return _EPOCH + dt.timedelta(days=(ms + _OFFSET_MS) // _DAY_MS)


def _midnight_ms(day: dt.date) -> int:
    return (day - _EPOCH).days * _DAY_MS - _OFFSET_MS


def bar_end_ms(ms: int, freq: str) -> int:
    """When the bar opening at ``ms`` ends (see the module docstring)."""
    minutes = _MINUTES.get(freq)
    if minutes is not None:
        return ms + minutes * 60_000
    day = local_day(ms)
    if freq == "1M":
        return _midnight_ms(dt.date(day.year + day.month // 12, day.month % 12 + 1, 1))
    return _midnight_ms(day + _ONE_DAY)


def epoch_days(ms: I64) -> I64:
    """Asia/Shanghai dates of epoch-ms instants, as days since 1970-01-01."""
    out: I64 = (ms + _OFFSET_MS) // _DAY_MS
    return out


def bar_ends_ms(ms: I64, freq: str) -> I64:
    """:func:`bar_end_ms` of many bars at once (answers hold up to 600)."""
    minutes = _MINUTES.get(freq)
    if minutes is not None:
        return ms + minutes * 60_000
    if freq == "1M":
        return np.array([bar_end_ms(int(m), freq) for m in ms], dtype=np.int64)
    out: I64 = (epoch_days(ms) + 1) * _DAY_MS - _OFFSET_MS
    return out


def epoch_ms(instant: dt.datetime) -> int:
    return int(instant.timestamp() * 1000)


def coverage(
    symbol: str, freq: str, start: dt.date, end: dt.date, oldest_ms: int | None, now: dt.datetime
) -> tuple[list[Span], list[Unavailable]]:
    """Book ``[start, end]`` (inclusive trade dates) of one answer whose oldest bar opened at
    ``oldest_ms`` (None: no bar at all). Days are disjoint and cover the range:

    - before the first day the answer covers whole: unavailable (beyond the window; a day the
      window starts in the middle of is not claimed answered, since its earlier slots were not
      served);
    - from there to the last day finished at ``now``: answered (a slot with no bar is empty);
    - later days: unavailable, "not complete yet at now".
    """
    if oldest_ms is None:
        return [], [Unavailable(symbol, start, end, f"mdapi answered no {freq} bars")]
    today = local_day(epoch_ms(now))
    done = (today.replace(day=1) if freq == "1M" else today) - _ONE_DAY
    first = local_day(oldest_ms)
    if freq in _MINUTES and (oldest_ms + _OFFSET_MS) % _DAY_MS:
        first += _ONE_DAY  # the window opens inside that day
    spans: list[Span] = []
    gone: list[Unavailable] = []
    if start < first:
        why = f"beyond mdapi's window (only the latest {DEPTH[freq]} {freq} bars)"
        gone.append(Unavailable(symbol, start, min(end, first - _ONE_DAY), why))
    lo, hi = max(start, first), min(end, done)
    if lo <= hi:
        spans.append(Span(symbol, lo, hi))
    rest = max(start, first, done + _ONE_DAY)
    if rest <= end:
        gone.append(Unavailable(symbol, rest, end, "not complete yet at now"))
    return spans, gone


def capabilities(vendor: str, rate: float | None) -> Capabilities:
    """The table of docs/vendors/mdapi.md "Capabilities"; ``rate`` is ETL_MDAPI_RATE (kline
    requests per product code per second)."""
    return Capabilities(
        vendor=vendor,
        datasets=(
            DatasetCapability(
                "klines", EXCHANGES, frozenset(FREQS), depth=dict(DEPTH), symbols_per_call=1,
                note="only the latest N bars: 1m 600, 5m to 1d 300, 1M 100; no 1w",
            ),
            DatasetCapability("instruments", EXCHANGES, note="current lists of 5 categories"),
        ),
        rate=RateLimits(
            per_second=rate or DEFAULT_RATE, scope="product",
            note=f"klines per product code; quotes {QUOTE_RATE}/s per code; lists "
            f"{LIST_RATE}/s per client; {BAN_SECONDS:g} s ban over a limit",
        ),
    )  # fmt: skip


def governor_limits(rate: float | None) -> tuple[Limit, ...]:
    """The governor's rules, one bucket per (endpoint kind, product code): ``kline:<code>``
    at ``rate``, ``quote:<code>`` at 3/s, and ``list`` (both list endpoints) at 2/s."""
    return (
        *rate_windows(rate or DEFAULT_RATE, kind="kline", per_bucket=True),
        Limit(requests=QUOTE_RATE, kind="quote", per_bucket=True),
        Limit(requests=LIST_RATE, kind="list"),
    )

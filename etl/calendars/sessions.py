"""Trading sessions of a market, as flat arrays of segments (a lunch break splits a session).

Sessions come from exchange_calendars where it knows the exchange (opens, breaks, half
days and early closes included), or from a day rule plus local hours (CFFEX, commodities,
crypto, forex). Everything is returned in UTC microseconds, so callers never juggle zones.

Building an exchange_calendars calendar costs 0.1-0.2 s, and importing it with pandas
another 0.3 s: more than a command may spend before its first request (issue 10). So each
calendar's schedule, once built, is kept as plain arrays in the data root
(:mod:`etl.calendars.store` says where) and later processes read those: pandas and
exchange_calendars are imported only when a schedule is built, at most once a day.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from etl.calendars import store
from etl.calendars.markets import MarketSpec, Segment, market_spec
from etl.errors import BadInputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Sessions", "sessions", "trading_days"]

log = logging.getLogger(__name__)

# exchange_calendars builds calendars from this date on: earlier than any vendor's history.
CALENDAR_START = "2005-01-01"
NAT_US = np.iinfo(np.int64).min  # a missing time (no lunch break) in microseconds

I64 = npt.NDArray[np.int64]
Days = npt.NDArray[np.datetime64]


@dataclass(frozen=True)
class Sessions:
    """Sessions of one market over a date range.

    ``days`` are the session dates (ascending, ``datetime64[D]``); each of ``seg_*`` holds one
    row per continuous trading segment, ``seg_day`` giving the index into ``days``.
    Segments are half-open ``[start, end)`` in UTC microseconds.
    """

    market: str
    days: Days
    half_day: npt.NDArray[np.bool_]
    seg_day: I64
    seg_start: I64
    seg_end: I64

    def __len__(self) -> int:
        return len(self.days)


_SCHEDULE_ARRAYS = ("days", "opens", "closes", "break_starts", "break_ends")


@dataclass(frozen=True)
class Schedule:
    """An exchange_calendars schedule as arrays: one row per session, times in UTC
    microseconds (:data:`NAT_US` where a session has no lunch break)."""

    days: Days
    opens: I64
    closes: I64
    break_starts: I64
    break_ends: I64

    @property
    def last(self) -> dt.date:
        found: dt.date = self.days[-1].astype(dt.date)
        return found


def schedule_key(name: str, today: dt.date | None = None) -> dict[str, str]:
    """What a built schedule depends on: exchange_calendars' version, the calendar, and the
    range it is built over. The range ends where exchange_calendars' default does (a year
    after today, local time: ``pd.Timestamp.now().floor("D") + pd.DateOffset(years=1)``), so
    a kept schedule is good for the day it was built."""
    from importlib.metadata import version

    day = today or dt.datetime.now(dt.UTC).astimezone().date()  # local, as pandas' now()
    try:
        end = day.replace(year=day.year + 1)
    except ValueError:  # 29 February: DateOffset(years=1) gives the 28th
        end = day.replace(year=day.year + 1, day=28)
    return {
        "exchange_calendars": version("exchange_calendars"),
        "calendar": name,
        "start": CALENDAR_START,
        "end": end.isoformat(),
    }


@cache
def _xcal(name: str) -> Any:
    import warnings

    import exchange_calendars as xcals

    with warnings.catch_warnings():
        # exchange_calendars still uses pandas APIs that pandas 3 deprecates; not ours to fix.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return xcals.get_calendar(name, start=CALENDAR_START)


def build_schedule(name: str) -> Schedule:
    """The schedule of exchange_calendars calendar ``name``, built (pandas and all)."""
    frame = _xcal(name).schedule
    return Schedule(
        days=np.asarray(frame.index.values).astype("datetime64[D]"),
        opens=_us(frame["open"]),
        closes=_us(frame["close"]),
        break_starts=_us(frame["break_start"]),
        break_ends=_us(frame["break_end"]),
    )


@cache
def _schedule(name: str) -> Schedule:
    """The schedule of ``name``: the one kept in the data root if it was built for the same
    key (:func:`schedule_key`), else built now and kept for the processes after this one."""
    path = store.sessions_file(name)
    if path is None:
        return build_schedule(name)
    key = schedule_key(name)
    kept = read_schedule(path, key)
    if kept is not None:
        return kept
    built = build_schedule(name)
    write_schedule(path, key, built)
    return built


def read_schedule(path: Path, key: dict[str, str]) -> Schedule | None:
    """The schedule kept at ``path`` if it was built for ``key``; None if there is none, it
    was built for another key, or it cannot be read (a cache: rebuilt, never an error)."""
    try:
        with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as kept:
            if json.loads(str(kept["key"])) != key:
                return None
            arrays = {name: kept[name] for name in _SCHEDULE_ARRAYS}
    except FileNotFoundError:
        return None
    except Exception as exc:  # any damage to a cache file means rebuilding it
        log.warning("calendar cache %s unreadable (%s); building the calendar again", path, exc)
        return None
    days = arrays.pop("days")
    n = len(days)
    if (
        days.dtype != np.dtype("datetime64[D]")
        or n == 0
        or any(a.dtype != np.int64 or a.shape != (n,) for a in arrays.values())
    ):
        log.warning("calendar cache %s is malformed; building the calendar again", path)
        return None
    return Schedule(days=days, **arrays)


def write_schedule(path: Path, key: dict[str, str], schedule: Schedule) -> None:
    """Keep ``schedule`` at ``path`` (replaced atomically: readers see the old file or the
    new one); a data root that cannot be written only costs the next process a rebuild."""
    from etl.fsutil import atomic_write_bytes

    buffer = io.BytesIO()
    arrays = {name: getattr(schedule, name) for name in _SCHEDULE_ARRAYS}
    np.savez(buffer, key=np.array(json.dumps(key, sort_keys=True)), **arrays)
    try:
        atomic_write_bytes(path, buffer.getvalue(), durable=False)
    except OSError as exc:
        log.warning("calendar cache %s not written (%s)", path, exc)


def _check_range(spec: MarketSpec, start: dt.date, end: dt.date) -> None:
    if start > end:
        raise BadInputError(f"start {start} is after end {end}")
    if spec.xcal or (spec.days or "").startswith("xcal:"):
        name = spec.xcal or (spec.days or "")[5:]
        last = _schedule(name).last
        if start > last:
            raise BadInputError(
                f"{spec.market} sessions are known up to {last} (exchange_calendars {name}); "
                f"{start} is beyond it"
            )


def trading_days(market: str, start: dt.date, end: dt.date) -> Days:
    """Session dates of ``market`` in ``[start, end]`` (both inclusive)."""
    return sessions(market, start, end).days


def sessions(
    market: str,
    start: dt.date,
    end: dt.date,
    *,
    segments: Sequence[Segment] | None = None,
    days: Sequence[dt.date] | None = None,
) -> Sessions:
    """Sessions of ``market`` with dates in ``[start, end]``.

    ``segments`` overrides the local hours (CFFEX treasury futures); ``days`` replaces the
    calendar's trading days (a calendar synced from a vendor into the lake).
    """
    spec = market_spec(market)
    if days is None:
        _check_range(spec, start, end)
    if spec.xcal and segments is None:
        return _from_xcal(spec, start, end, days)
    day_arr = _day_rule(spec, start, end) if days is None else _as_days(days, start, end)
    return _from_template(spec, day_arr, tuple(segments or spec.segments))


def _as_days(days: Sequence[dt.date], start: dt.date, end: dt.date) -> Days:
    arr = np.unique(np.array(sorted(days), dtype="datetime64[D]"))
    lo, hi = np.datetime64(start, "D"), np.datetime64(end, "D")
    return arr[(arr >= lo) & (arr <= hi)]


def _day_rule(spec: MarketSpec, start: dt.date, end: dt.date) -> Days:
    rule = spec.days or ""
    if rule.startswith("xcal:"):
        return _xcal_days(rule[5:], start, end)
    every = np.arange(np.datetime64(start, "D"), np.datetime64(end, "D") + 1)
    if rule == "daily":
        return every
    if rule == "weekdays":
        weekday = (every.astype("int64") + 3) % 7  # 1970-01-01 was a Thursday (3)
        return every[weekday < 5]
    raise AssertionError(f"unknown day rule {rule!r}")


def _xcal_days(name: str, start: dt.date, end: dt.date) -> Days:
    idx = _schedule(name).days
    lo, hi = np.datetime64(start, "D"), np.datetime64(end, "D")
    return idx[(idx >= lo) & (idx <= hi)]


def _us(values: Any) -> I64:
    """pandas UTC datetimes (ns) -> int64 microseconds; NaT becomes INT64_MIN."""
    import pandas as pd

    return np.asarray(pd.DatetimeIndex(values).as_unit("us").asi8, dtype=np.int64)


def _from_xcal(
    spec: MarketSpec, start: dt.date, end: dt.date, days: Sequence[dt.date] | None
) -> Sessions:
    assert spec.xcal is not None
    schedule = _schedule(spec.xcal)
    idx = schedule.days
    mask = (idx >= np.datetime64(start, "D")) & (idx <= np.datetime64(end, "D"))
    if days is not None:
        mask &= np.isin(idx, np.array(list(days), dtype="datetime64[D]"))
    day_arr = idx[mask]
    opens, closes = schedule.opens[mask], schedule.closes[mask]
    b_start, b_end = schedule.break_starts[mask], schedule.break_ends[mask]
    has_break = b_start != NAT_US
    n = len(day_arr)
    seg_day = np.concatenate([np.arange(n), np.flatnonzero(has_break)]).astype(np.int64)
    seg_start = np.concatenate([opens, b_end[has_break]])
    seg_end = np.concatenate([np.where(has_break, b_start, closes), closes[has_break]])
    order = np.lexsort((seg_start, seg_day))
    regular = _regular_length(opens, closes, b_start, b_end, has_break)
    length = np.where(has_break, (b_start - opens) + (closes - b_end), closes - opens)
    return Sessions(
        market=spec.market,
        days=day_arr,
        half_day=length < regular,
        seg_day=seg_day[order],
        seg_start=seg_start[order],
        seg_end=seg_end[order],
    )


def _regular_length(opens: I64, closes: I64, b_start: I64, b_end: I64, has_break: Any) -> int:
    """The most common session length: anything shorter is an early close."""
    length = np.where(has_break, (b_start - opens) + (closes - b_end), closes - opens)
    if len(length) == 0:
        return 0
    values, counts = np.unique(length, return_counts=True)
    return int(values[np.argmax(counts)])


def _from_template(spec: MarketSpec, day_arr: Days, segs: tuple[Segment, ...]) -> Sessions:
    import pandas as pd

    n = len(day_arr)
    local_midnight = pd.DatetimeIndex(day_arr.astype("datetime64[ns]")).tz_localize(spec.tz)
    seg_day_parts, start_parts, end_parts = [], [], []
    for seg_start, seg_end in segs:
        start_local = local_midnight + pd.Timedelta(hours=seg_start.hour, minutes=seg_start.minute)
        if seg_end == dt.time.max:
            end_local = local_midnight + pd.Timedelta(days=1)
        else:
            end_local = local_midnight + pd.Timedelta(hours=seg_end.hour, minutes=seg_end.minute)
        # Adding wall-clock hours across a DST change is ambiguous; re-localise the wall time.
        start_parts.append(_wall_to_utc_us(start_local, spec.tz))
        end_parts.append(_wall_to_utc_us(end_local, spec.tz))
        seg_day_parts.append(np.arange(n, dtype=np.int64))
    seg_day = np.concatenate(seg_day_parts) if seg_day_parts else np.zeros(0, np.int64)
    starts = np.concatenate(start_parts) if start_parts else np.zeros(0, np.int64)
    ends = np.concatenate(end_parts) if end_parts else np.zeros(0, np.int64)
    order = np.lexsort((starts, seg_day))
    return Sessions(
        market=spec.market,
        days=day_arr,
        half_day=np.zeros(n, dtype=np.bool_),
        seg_day=seg_day[order],
        seg_start=starts[order],
        seg_end=ends[order],
    )


def _wall_to_utc_us(stamps: pd.DatetimeIndex, tz: str) -> I64:
    naive = stamps.tz_localize(None)
    aware = naive.tz_localize(tz, nonexistent="shift_forward", ambiguous=False)
    return _us(aware.tz_convert("UTC"))

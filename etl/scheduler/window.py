"""Job windows: ranges written relative to the day a job runs, resolved when it runs.

A scheduled job cannot name fixed dates; it says ``last 10 sessions`` and means the ten
sessions up to the day it fires. The grammar is small on purpose (each form one line of the
README)::

    last N sessions   the N latest trading days of the job's markets, through today
    last N periods    the N latest reporting periods (quarter ends) on or before today
    last N days       N calendar days through today
    since listing     from the oldest date a vendor of the job serves (detection starts
                      each symbol at its listing date anyway) through today
    this year         1 January to 31 December of today's year (calendars run ahead)
    today             today only
    start/end         explicit ISO dates (``end`` defaults to today)

"Today" is the date in the job's time zone when it runs. Both ends are inclusive trade dates
(reporting periods for statements), as on the command line.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Final, Literal

from etl.calendars import trading_days
from etl.errors import BadInputError
from etl.names import parse_date

__all__ = ["Window", "WindowError", "parse_window", "resolve_window"]

Kind = Literal["sessions", "periods", "days", "listing", "year", "today", "dates"]
_KINDS: Final[dict[str, Kind]] = {"session": "sessions", "period": "periods", "day": "days"}
_LAST_RE: Final = re.compile(r"^last\s+(\d{1,5})\s+(session|period|day)s?$")
# exchange_calendars' first session here (etl.calendars.sessions.CALENDAR_START); used when
# no vendor of the job states how far back it serves.
_OLDEST: Final = dt.date(2005, 1, 4)


class WindowError(ValueError):
    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)


@dataclass(frozen=True)
class Window:
    kind: Kind
    n: int = 0
    start: dt.date | None = None
    end: dt.date | None = None
    text: str = ""


def parse_window(text: str | None, start: str | None, end: str | None) -> Window:
    """A :class:`Window` from ``window = "..."`` or ``start``/``end``."""
    if text is None:
        try:
            first = parse_date(start or "", option="start")
        except BadInputError as exc:
            raise WindowError("start", str(exc)) from None
        last = None
        if end:
            try:
                last = parse_date(end, option="end")
            except BadInputError as exc:
                raise WindowError("end", str(exc)) from None
        if last is not None and first > last:
            raise WindowError("end", f"end {last} is before start {first}")
        return Window("dates", start=first, end=last, text=f"{first}..{last or 'today'}")
    norm = " ".join(text.lower().split())
    if norm == "since listing":
        return Window("listing", text=norm)
    if norm == "this year":
        return Window("year", text=norm)
    if norm == "today":
        return Window("today", text=norm)
    match = _LAST_RE.match(norm)
    if match is None:
        raise WindowError(
            "window",
            f"unknown window {text!r}: use 'last N sessions', 'last N periods', 'last N days', "
            "'since listing', 'this year', 'today', or start/end dates",
        )
    n = int(match[1])
    if n < 1:
        raise WindowError("window", f"{text!r}: N must be at least 1")
    return Window(_KINDS[match[2]], n=n, text=norm)


def _quarter_ends(today: dt.date, n: int) -> list[dt.date]:
    """The ``n`` latest quarter ends on or before ``today``, oldest first."""
    ends: list[dt.date] = []
    year, quarter = today.year, (today.month - 1) // 3 + 1
    while len(ends) < n:
        month = quarter * 3
        end = dt.date(year, month, 31 if month in (3, 12) else 30)
        if end <= today:
            ends.append(end)
        quarter -= 1
        if quarter == 0:
            year, quarter = year - 1, 4
    return ends[::-1]


def _session_start(markets: tuple[str, ...], today: dt.date, n: int) -> dt.date:
    """The earliest of each market's N-th latest session through ``today`` (calendar days for
    products without a calendar)."""
    if not markets:
        return today - dt.timedelta(days=n - 1)
    starts = []
    for market in markets:
        # n sessions fit in 2n + 30 calendar days: weekends plus the longest holidays
        days = trading_days(market, today - dt.timedelta(days=n * 2 + 30), today)
        first = days[-n] if len(days) >= n else days[0] if len(days) else None
        starts.append(first.item() if first is not None else today)
    return min(starts)


def resolve_window(
    window: Window, *, today: dt.date, markets: tuple[str, ...], since: dt.date | None = None
) -> tuple[dt.date, dt.date]:
    """``(start, end)``, both inclusive, for a job running on ``today``.

    ``markets`` are the calendar markets of the job's selection; ``since`` is the oldest date
    its vendors serve (for ``since listing``).
    """
    if window.kind == "dates":
        assert window.start is not None
        return window.start, window.end or today
    if window.kind == "today":
        return today, today
    if window.kind == "year":
        return dt.date(today.year, 1, 1), dt.date(today.year, 12, 31)
    if window.kind == "days":
        return today - dt.timedelta(days=window.n - 1), today
    if window.kind == "periods":
        ends = _quarter_ends(today, window.n)
        return ends[0], ends[-1]
    if window.kind == "listing":
        return max(since or _OLDEST, _OLDEST), today
    return _session_start(markets, today, window.n), today

"""How an instant or a date is written in JSON, task records, manifests and messages.

Instants are UTC with a ``Z`` (``2024-06-28T12:00:00Z``), dates ``YYYY-MM-DD``. ``timespec``
is :meth:`datetime.isoformat`'s: ``"auto"`` writes microseconds only when there are some;
manifests use ``"microseconds"`` so that their strings sort as the instants do.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal, overload

__all__ = ["iso_utc"]

TimeSpec = Literal["auto", "seconds", "milliseconds", "microseconds"]


@overload
def iso_utc(value: dt.date, timespec: TimeSpec = "auto") -> str: ...
@overload
def iso_utc(value: None, timespec: TimeSpec = "auto") -> None: ...
@overload
def iso_utc(value: dt.date | None, timespec: TimeSpec = "auto") -> str | None: ...
def iso_utc(value: dt.date | None, timespec: TimeSpec = "auto") -> str | None:
    """``value`` as text: an instant (tz-aware; a naive one is taken as UTC) in UTC with
    ``Z``, a date as ``YYYY-MM-DD``, None as None."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        instant = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return instant.astimezone(dt.UTC).isoformat(timespec=timespec).replace("+00:00", "Z")
    return value.isoformat()

"""etl/timefmt.py: the one way instants and dates are written (issue 10, item 8)."""

from __future__ import annotations

import datetime as dt

import pytest

from etl.timefmt import iso_utc

SH = dt.timezone(dt.timedelta(hours=8))


@pytest.mark.parametrize(
    ("value", "timespec", "expected"),
    [
        (None, "auto", None),
        (dt.date(2024, 6, 28), "auto", "2024-06-28"),  # a date stays a date
        (dt.datetime(2024, 6, 28, 12, tzinfo=dt.UTC), "auto", "2024-06-28T12:00:00Z"),
        # another zone is converted, not relabelled
        (dt.datetime(2024, 6, 28, 9, 30, tzinfo=SH), "auto", "2024-06-28T01:30:00Z"),
        # auto writes microseconds only when there are some (task records)
        (dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC), "auto", "2024-01-02T03:04:05.000006Z"),
        # seconds drops them (detect-missing's gaps)
        (dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC), "seconds", "2024-01-02T03:04:05Z"),
        # microseconds always (manifests: strings sort as the instants do)
        (dt.datetime(2024, 1, 2, tzinfo=dt.UTC), "microseconds", "2024-01-02T00:00:00.000000Z"),
        # a naive instant is taken as UTC, never as the machine's zone
        (dt.datetime(2024, 1, 2, 3, 4), "auto", "2024-01-02T03:04:00Z"),
    ],
)
def test_iso_utc(value: dt.date | None, timespec: str, expected: str | None) -> None:
    assert iso_utc(value, timespec) == expected  # type: ignore[arg-type]

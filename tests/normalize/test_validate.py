"""Validation between vendor and lake: what is repaired, dropped or rejected, and why."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from etl.errors import SchemaError
from etl.normalize import validate, validate_klines
from tests.conftest import daily_ts

D1, D2, D3 = dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4)
NOW = dt.datetime(2024, 1, 4, 5, 0, tzinfo=dt.UTC)  # 13:00 Shanghai: the 01-04 session is open


def bar(symbol: str, day: dt.date, **kw: float) -> dict[str, object]:
    row: dict[str, object] = {
        "symbol": symbol,
        "freq": "1d",
        "ts": daily_ts(day),
        "trade_date": day,
        "open": 10.0,
        "high": 11.0,
        "low": 9.0,
        "close": 10.5,
        "volume": 100.0,
        "vendor": "v",
    }
    row.update(kw)
    return row


def issues(rows: list[dict[str, object]]) -> dict[tuple[str | None, str], tuple[int, str]]:
    frame = pl.DataFrame(rows, schema_overrides={"ts": pl.Datetime("us", "UTC")})
    checked = validate_klines(frame, freq="1d", start=D1, end=D3, now=NOW)
    return {(i.symbol, i.reason): (i.count, i.severity) for i in checked.issues}


# (rows, expected issue, (count, severity)): one line per rule
CASES = [
    ([bar("A.SH", D1, high=8.0)], ("A.SH", "high below low"), (1, "rejected")),
    ([bar("A.SH", D1, open=float("nan"))], ("A.SH", "NaN price"), (1, "rejected")),
    ([bar("A.SH", D1, low=-1.0)], ("A.SH", "price zero or negative"), (1, "rejected")),
    (
        [bar("A.SH", D1, close=12.0)],
        ("A.SH", "high/low do not enclose open and close"),
        (1, "rejected"),
    ),
    ([bar("A.SH", D1, volume=-5.0)], ("A.SH", "volume negative or NaN"), (1, "rejected")),
    (
        [bar("A.SH", dt.date(2023, 12, 29))],
        ("A.SH", "outside the requested range"),
        (1, "rejected"),
    ),
    (
        [{**bar("A.SH", D1), "ts": daily_ts(D1) + dt.timedelta(hours=1)}],
        ("A.SH", "trade_date does not match ts"),
        (1, "rejected"),
    ),
    ([bar("A.SH", D3)], ("A.SH", "bar still forming"), (1, "dropped")),  # closes 15:00 local
    ([bar("A.SH", D2), bar("A.SH", D1)], ("A.SH", "out of order (re-sorted)"), (1, "repaired")),
    (
        [bar("A.SH", D1), bar("A.SH", D1)],
        ("A.SH", "duplicate bar (identical copy dropped)"),
        (1, "repaired"),
    ),
    (
        [bar("A.SH", D1), bar("A.SH", D1, close=10.7)],
        ("A.SH", "conflicting duplicates (same key, other values)"),
        (2, "rejected"),
    ),
]


@pytest.mark.parametrize(("rows", "key", "want"), CASES)
def test_each_rule(
    rows: list[dict[str, object]], key: tuple[str, str], want: tuple[int, str]
) -> None:
    assert issues(rows)[key] == want


def test_the_daily_bar_is_final_after_the_close() -> None:
    frame = pl.DataFrame([bar("A.SH", D3)], schema_overrides={"ts": pl.Datetime("us", "UTC")})
    after_close = dt.datetime(2024, 1, 4, 7, 1, tzinfo=dt.UTC)  # 15:01 Shanghai
    checked = validate_klines(frame, freq="1d", start=D1, end=D3, now=after_close)
    assert checked.frame.height == 1 and checked.issues == []


def test_clean_rows_pass_sorted_and_typed() -> None:
    rows = [bar("B.SZ", D2), bar("A.SH", D1), bar("A.SH", D2)]
    frame = pl.DataFrame(rows, schema_overrides={"ts": pl.Datetime("us", "UTC")})
    checked = validate_klines(frame, freq="1d", start=D1, end=D3, now=NOW)
    assert checked.frame["symbol"].to_list() == ["A.SH", "A.SH", "B.SZ"]
    assert checked.frame.schema["amount"] == pl.Float64  # missing nullable column added
    assert checked.rejected == 0


def test_a_missing_required_column_is_a_schema_error() -> None:
    frame = pl.DataFrame([{"symbol": "A.SH", "freq": "1d"}])
    with pytest.raises(SchemaError, match="lack required columns"):
        validate("klines", frame)

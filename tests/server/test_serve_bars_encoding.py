"""The columnar bar encoder (:func:`api.encode_bars`, what ``etl serve`` answers with) gives
the same wire dicts, value for value and type for type, as :func:`api.encode_bar` row by row
(what the emulator answers with): stocks and futures, daily and minute, whole and fractional
volumes, missing values."""

from __future__ import annotations

import datetime as dt
import json
import math

import polars as pl
import pytest

from etl.server.routes_data import encode_frame
from etl.vendors.amazingdata import api

UTC = dt.UTC


def _frame(volumes: list[float | None]) -> pl.DataFrame:
    n = len(volumes)
    ts = [dt.datetime(2024, 1, 2, 1, 30, tzinfo=UTC) + dt.timedelta(minutes=i) for i in range(n)]
    return pl.DataFrame(
        {
            "ts": ts,
            "trade_date": [t.date() for t in ts],
            "open": [10.0 + i for i in range(n)],
            "high": [11.5] * n,
            "low": [9.25] * n,
            "close": [10.125] * n,
            "volume": volumes,
            "amount": [1e9 + 0.5, *([None] * (n - 1))],
            "settle": [3.5] * n,
            "open_interest": [v * 2 if v is not None else None for v in volumes],
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC"), "volume": pl.Float64},
    )


@pytest.mark.parametrize("future", [False, True])
@pytest.mark.parametrize("period", ["daily", "min1", "weekly"])
@pytest.mark.parametrize(
    "volumes",
    [[100.0, 2e10, 0.0], [100.0, 12.5, 3.0], [100.0, None, 3.0], [math.nan, 1.0, math.inf]],
)
def test_columns_encode_as_rows(future: bool, period: str, volumes: list[float | None]) -> None:
    frame = _frame(volumes)
    rows = [
        api.encode_bar(
            ts=r["ts"], trade_date=r["trade_date"], open=r["open"], high=r["high"],
            low=r["low"], close=r["close"], volume=r["volume"], amount=r["amount"],
            settle=r["settle"], open_interest=r["open_interest"], period=period, future=future,
        )
        for r in frame.iter_rows(named=True)
    ]  # fmt: skip
    columns = encode_frame(frame, period, future)
    assert columns == rows
    # the same types too (1 == 1.0 in Python; on the wire "1" and "1.0" differ)
    assert json.dumps(columns) == json.dumps(rows)


def test_minute_labels_are_shanghai_bar_starts() -> None:
    bars = encode_frame(_frame([1.0, 2.0]), "min1", False)
    assert [b["trade_date"] for b in bars] == ["2024-01-02 09:30:00", "2024-01-02 09:31:00"]

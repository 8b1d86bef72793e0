"""What ``etl serve`` answers bars with gives the wire form value for value and byte for byte:

- the columnar dict encoder (:func:`api.encode_bars`, the chart's source) gives the same dicts,
  type for type, as :func:`api.encode_bar` row by row (what the emulator answers with);
- the JSON encoder (:func:`api.bars_json` through ``frame_json``, what the kline endpoints
  answer with, from a polars frame or an Arrow table) gives the very bytes orjson writes for
  those dicts: stocks and futures, daily and minute, whole and fractional volumes, missing
  values (None, NaN, infinities), numbers of every magnitude.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import polars as pl
import pytest

from etl.server.routes_data import encode_frame, frame_json
from etl.vendors.amazingdata import api

UTC = dt.UTC
PERIODS = ["daily", "min1", "weekly"]
VOLUMES: list[list[float | None]] = [
    [100.0, 2e10, 0.0],
    [100.0, 12.5, 3.0],  # a fraction: kept as it is (the dict encoder's case)
    [100.0, None, 3.0],
    [math.nan, 1.0, math.inf],
    [-0.0, 9.2e18, 1.0],  # -0.0 is 0; 9.2e18 is still an int64
    [1.0, 1e19, 2.0],  # past int64 (2**63 ~ 9.22e18): still whole, from the dicts
]


def _frame(volumes: list[float | None], **columns: list[float | None]) -> pl.DataFrame:
    n = len(volumes)
    ts = [dt.datetime(2024, 1, 2, 1, 30, tzinfo=UTC) + dt.timedelta(minutes=i) for i in range(n)]
    data: dict[str, Any] = {
        "ts": ts,
        "trade_date": [t.date() for t in ts],
        "open": [10.0 + i for i in range(n)],
        "high": [11.5] * n,
        "low": [9.25] * n,
        "close": [10.125] * n,
        "volume": volumes,
        "amount": [1e9 + 0.5, *([None] * (n - 1))],
        "settle": [3.5] * n,
        "open_interest": [v + 1 if v is not None else None for v in volumes],
    }
    data.update(columns)
    return pl.DataFrame(
        data,
        schema_overrides={
            "ts": pl.Datetime("us", "UTC"),
            **{c: pl.Float64 for c in api.FUTURE_BAR_FIELDS if c != "trade_date"},
        },
    )


def _rows(frame: pl.DataFrame, period: str, future: bool) -> list[dict[str, Any]]:
    """The reference: :func:`api.encode_bar`, row by row, as the emulator answers."""
    return [
        api.encode_bar(
            ts=r["ts"], trade_date=r["trade_date"], open=r["open"], high=r["high"],
            low=r["low"], close=r["close"], volume=r["volume"], amount=r["amount"],
            settle=r["settle"], open_interest=r["open_interest"], period=period, future=future,
        )
        for r in frame.iter_rows(named=True)
    ]  # fmt: skip


def _json(frame: pl.DataFrame, period: str, future: bool) -> bytes:
    """The kline endpoints' bytes for one code's bars, as the envelope embeds them: from a
    polars frame (several codes) and from the read path's Arrow table (one code) alike."""
    wire = orjson.dumps(frame_json(frame, period, future))
    assert orjson.dumps(frame_json(frame.to_arrow(), period, future)) == wire
    return wire


@pytest.mark.parametrize("future", [False, True])
@pytest.mark.parametrize("period", PERIODS)
@pytest.mark.parametrize("volumes", VOLUMES)
def test_columns_encode_as_rows(future: bool, period: str, volumes: list[float | None]) -> None:
    frame = _frame(volumes)
    rows = _rows(frame, period, future)
    columns = encode_frame(frame, period, future)
    assert columns == rows
    # the same types too (1 == 1.0 in Python; on the wire "1" and "1.0" differ)
    assert json.dumps(columns) == json.dumps(rows)


@pytest.mark.parametrize("future", [False, True])
@pytest.mark.parametrize("period", PERIODS)
@pytest.mark.parametrize("volumes", VOLUMES)
def test_json_is_the_bytes_of_the_rows(
    future: bool, period: str, volumes: list[float | None]
) -> None:
    frame = _frame(volumes)
    rows = _rows(frame, period, future)
    wire = _json(frame, period, future)
    assert wire == orjson.dumps(rows)
    assert json.loads(wire) == json.loads(json.dumps(rows))  # NaN and inf: null


@pytest.mark.parametrize("future", [False, True])
def test_json_with_missing_values_in_every_column(future: bool) -> None:
    """None, NaN and infinities in prices, amount, settle and open interest: each ``null``
    where the dicts have None or a value orjson writes as null."""
    gaps: list[float | None] = [1.5, None, math.nan, -math.inf, 2.0, math.inf]
    frame = _frame(
        [1.0, 2.0, None, 4.0, math.nan, 6.0],
        open=gaps, high=gaps[::-1], low=gaps, close=gaps[::-1], amount=gaps,
        settle=gaps[::-1], open_interest=[None, 1.0, 2.0, math.nan, 4.0, -math.inf],
    )  # fmt: skip
    for period in PERIODS:
        assert _json(frame, period, future) == orjson.dumps(_rows(frame, period, future))
    assert b"NaN" not in _json(frame, "daily", future)


@pytest.mark.parametrize("future", [False, True])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_json_of_numbers_of_every_magnitude(future: bool, seed: int) -> None:
    """Random float64 bit patterns (every exponent, subnormals, NaNs, infinities) in the
    price columns, and whole volumes up to int64's edge: the same bytes as the dicts."""
    rng = np.random.default_rng(seed)
    n = 400

    def floats() -> list[float | None]:
        bits = rng.integers(0, 2**64, n, dtype=np.uint64).view(np.float64).tolist()
        return [None if i % 37 == 0 else v for i, v in enumerate(bits)]

    whole = rng.integers(-(2**62), 2**62, n).astype(np.float64).tolist()
    frame = _frame(
        whole, open=floats(), high=floats(), low=floats(), close=floats(), amount=floats(),
        settle=floats(), open_interest=rng.integers(0, 2**40, n).astype(np.float64).tolist(),
    )  # fmt: skip
    for period in PERIODS:
        assert _json(frame, period, future) == orjson.dumps(_rows(frame, period, future))


def test_the_usual_bars_take_the_columnar_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole volumes with gaps are written from the columns, not handed to the dict encoder
    (which would hide a broken fast path behind a right answer)."""

    def refused(**_: object) -> Callable[..., Any]:
        raise AssertionError("took the dict encoder")

    frame = _frame([100.0, None, 3.0, math.nan])
    expected = {(p, f): orjson.dumps(_rows(frame, p, f)) for p in PERIODS for f in (False, True)}
    monkeypatch.setattr(api, "encode_bars", refused)
    for (period, future), wire in expected.items():
        assert _json(frame, period, future) == wire


def test_no_bars_are_an_empty_list() -> None:
    frame = _frame([1.0]).clear()
    assert _json(frame, "daily", False) == _json(frame, "min1", True) == b"[]"


def test_minute_labels_are_shanghai_bar_starts() -> None:
    bars = encode_frame(_frame([1.0, 2.0]), "min1", False)
    assert [b["trade_date"] for b in bars] == ["2024-01-02 09:30:00", "2024-01-02 09:31:00"]
    labels = json.loads(_json(_frame([1.0, 2.0]), "min1", False))
    assert [b["trade_date"] for b in labels] == ["2024-01-02 09:30:00", "2024-01-02 09:31:00"]


def test_daily_labels_over_centuries() -> None:
    """Session dates are remembered once formatted; far ones too (and a fresh one still
    formats after the cache is full of others)."""
    days = [dt.date(1901, 3, 1), dt.date(1999, 12, 31), dt.date(2000, 2, 29), dt.date(2099, 1, 1)]
    ts = [dt.datetime(d.year, d.month, d.day, 7, tzinfo=UTC) for d in days]
    frame = _frame([1.0] * 4).with_columns(
        pl.Series("ts", ts, pl.Datetime("us", "UTC")), pl.Series("trade_date", days)
    )
    for _ in range(2):  # formatted, then remembered
        assert _json(frame, "daily", False) == orjson.dumps(_rows(frame, "daily", False))

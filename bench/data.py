"""Bench data: plausible OHLCV frames of any size, built fast with numpy."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from etl.calendars import bar_grid


def klines_frame(
    n_symbols: int, freq: str, start: dt.date, end: dt.date, seed: int = 7
) -> pl.DataFrame:
    grid = bar_grid("SH", freq, start, end)
    rng = np.random.default_rng(seed)
    n = len(grid)
    symbols = np.repeat(np.array([f"{600000 + i:06d}.SH" for i in range(n_symbols)]), n)
    ts = np.tile(grid.ts, n_symbols)
    days = np.tile(grid.trade_date, n_symbols)
    base = np.repeat(rng.uniform(5, 100, n_symbols), n)
    close = base * np.exp(np.cumsum(rng.normal(0, 0.01, n * n_symbols)) * 0.05)
    open_ = close * (1 + rng.normal(0, 0.002, close.size))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, close.size))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, close.size))
    volume = rng.integers(100, 1_000_000, close.size).astype(np.float64)
    return pl.DataFrame(
        {
            "symbol": symbols,
            "freq": freq,
            "ts": pl.Series(ts).cast(pl.Datetime("us", "UTC")),
            "trade_date": pl.Series(days.astype("datetime64[D]")).cast(pl.Date),
            "open": open_.round(2),
            "high": high.round(2),
            "low": low.round(2),
            "close": close.round(2),
            "volume": volume,
            "amount": (volume * close).round(2),
            "settle": pl.Series([None] * close.size, dtype=pl.Float64),
            "open_interest": pl.Series([None] * close.size, dtype=pl.Float64),
            "vendor": "bench",
            "request_id": pl.Series([None] * close.size, dtype=pl.String),
        }
    )


def best_of(fn, repeat: int = 5) -> float:  # type: ignore[no-untyped-def]
    import time

    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)

"""The lake as analysts read it: pandas, polars, pyarrow.dataset and DuckDB see the same rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow.dataset as ds

from etl.lake import Lake
from tests.conftest import NOW, kline_rows

COLUMNS = [
    "symbol",
    "freq",
    "ts",
    "trade_date",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "amount",
    "vendor",
    "ingested_at",
]


def _canon(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(
        pl.col("symbol").cast(pl.String),
        pl.col("freq").cast(pl.String),
        pl.col("ts").dt.convert_time_zone("UTC").dt.cast_time_unit("us"),
        pl.col("trade_date").cast(pl.Date),
        *[pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close", "volume", "amount")],
        pl.col("vendor").cast(pl.String),
        pl.col("ingested_at").dt.convert_time_zone("UTC").dt.cast_time_unit("us"),
    ).sort(["freq", "symbol", "ts"])


def test_four_readers_agree(data_root: Path) -> None:
    lake = Lake(data_root)
    days = [dt.date(2023, 12, 29), dt.date(2024, 1, 2), dt.date(2024, 1, 3)]
    lake.write("klines", kline_rows(["600000.SH", "000001.SZ"], days), now=NOW)
    lake.write("klines", kline_rows(["600000.SH"], days, freq="1w", close=12.0), now=NOW)
    base = data_root / "lake" / "klines"

    via_pandas = pl.from_pandas(pd.read_parquet(base)[COLUMNS])
    via_polars = pl.scan_parquet(base, hive_partitioning=True).select(COLUMNS).collect()
    via_arrow = pl.from_arrow(ds.dataset(base, partitioning="hive").to_table(columns=COLUMNS))
    assert isinstance(via_arrow, pl.DataFrame)
    via_duckdb = duckdb.sql(
        f"SELECT {', '.join(COLUMNS)} FROM read_parquet('{base}/*/*/*.parquet', "
        "hive_partitioning = true)"
    ).pl()

    reference = _canon(via_polars)
    assert reference.height == 9
    for other in (via_pandas, via_arrow, via_duckdb):
        assert _canon(other).equals(reference)
